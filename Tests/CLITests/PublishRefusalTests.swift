import Foundation
import Testing
import TestSupport

/// `ec2 publish` refuses, before anything is sent, an image that `doctor` says the target's loader cannot boot:
/// both take the verdict from `Diagnosis.bootVerdict`. The refusal comes before any AWS client exists, so an
/// endpoint nobody listens on shows that nothing was sent (a request would fail with a connection error instead).
@Suite("ec2 publish refuses what doctor says cannot boot")
struct PublishRefusalTests {
    static let environment = [
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    ]

    static func publish(_ image: URL, target: String, state: URL) throws -> ProcessResult {
        try ZLabelCLI.run(["ec2", "publish", image.path, "--name", "omnios \(target)", "--target", target,
                           "--state-dir", state.path, "--no-progress", "--attempt-timeout", "5"],
                          environment: environment)
    }

    @Test("ec2-xen-pv on a pool pv-grub cannot read: exit 3, and doctor's boot-fails reasons are the refusal's")
    func pvGrubVerdictRefusesPublish() throws {
        let scratch = try Fixture.scratchCopy("disk-vtoc.img")
        let run = try Self.publish(scratch.url, target: "ec2-xen-pv", state: scratch.directory.file("state"))
        #expect(run.status == 3, "\(run)")
        #expect(run.stderrText.contains("refused, nothing uploaded"), "\(run)")

        // doctor on the image as publish would edit it (the target's labels) finds the same reasons.
        let edited = scratch.directory.file("edited.img")
        #expect(try Run.run("/bin/cp", ["--sparse=always", scratch.url.path, edited.path]).succeeded)
        let set = try ZLabelCLI.run(["set", edited.path, "--target", "ec2-xen-pv", "--backup",
                                     scratch.directory.file("backup").path])
        #expect(set.status == 0, "\(set)")
        let doctor = try ZLabelCLI.run(["doctor", "--json", edited.path, "--target", "ec2-xen-pv"])
        #expect(doctor.status == 1, "\(doctor)")
        let json = try ExactJSON.parse(doctor.stdout)
        let reasons = (json["findings"]?.array ?? []).filter { $0["kind"]?.string == "boot-fails" }
            .compactMap { $0["message"]?.string }
            .map { String($0.dropFirst("pv-grub loader: ".count)) }
        #expect(!reasons.isEmpty, "\(doctor)")
        for reason in reasons { #expect(run.stderrText.contains(reason), "\(reason)\n\(run)") }
    }

    @Test("ec2-xen-hvm on the same image passes the verdict: publish gets as far as the network")
    func hvmVerdictLetsPublishTry() throws {
        let scratch = try Fixture.scratchCopy("disk-vtoc.img")
        let run = try Self.publish(scratch.url, target: "ec2-xen-hvm", state: scratch.directory.file("state"))
        #expect(run.status != 0 && run.status != 3, "\(run)")
        #expect(!run.stderrText.contains("refused, nothing uploaded"), "\(run)")
    }
}

import EC2TestSupport
import Foundation
import Testing
import TestSupport

/// Every `zlabel ec2 … --json` document against docs/json-output.md, from the command line against moto behind
/// the strict peer: the keys are the documented ones, snake_case, with `schema_version` 1.
@Suite("ec2 JSON output matches docs/json-output.md", .serialized, .enabled(if: TestEnv.motoTestsEnabled))
struct JSONSchemaEC2Tests {
    func check(_ name: String, _ run: ProcessResult, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(run.status == 0, "\(run)", sourceLocation: sourceLocation)
        let problems = try JSONSchemaDoc().mismatches(try ExactJSON.parse(run.stdout), document: name)
        #expect(problems.isEmpty, "\(name):\n\(problems.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }

    @Test func everyEC2DocumentIsCovered() throws {
        #expect(try JSONSchemaDoc().documents.filter { $0.hasPrefix("zlabel ec2 ") }
                == ["zlabel ec2 publish --json", "zlabel ec2 register --json", "zlabel ec2 upload --json"])
    }

    @Test("upload, register and publish print the documented keys")
    func uploadRegisterPublish() throws {
        let peer = try StrictPeer(["--kernels"])
        defer { peer.stop() }
        let env = PublishEndToEndTests.environment(peer)
        let dir = try TestEnv.tempDir("json-schema")
        let image = dir + "/fs.raw"
        try TestImage.make(image, size: 4 << 20, writes: [(0, TestImage.pattern(5))])

        let upload = try ZLabelCLI.run(["ec2", "upload", image, "--wait", "--state-dir", dir + "/state", "--no-progress",
                                        "--json"], environment: env)
        try check("zlabel ec2 upload --json", upload)
        let snapshot = try #require(try ExactJSON.parse(upload.stdout)["snapshot_id"]?.string)

        let register = try ZLabelCLI.run(
            ["ec2", "register", "--snapshot", snapshot, "--name", "json schema pv", "--virtualization", "paravirtual",
             "--kernel-id", "auto", "--share", "111122223333", "--json"], environment: env)
        try check("zlabel ec2 register --json", register)

        let scratch = try Fixture.scratchCopy("disk-gpt.img")
        let publish = try ZLabelCLI.run(
            ["ec2", "publish", scratch.url.path, "--name", "json schema hvm", "--target", "ec2-xen-hvm",
             "--state-dir", dir + "/publish-state", "--no-progress", "--workers", "4", "--json"], environment: env)
        try check("zlabel ec2 publish --json", publish)
        try peer.expectNoRejections()
    }
}

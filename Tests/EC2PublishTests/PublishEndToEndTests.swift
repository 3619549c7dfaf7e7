import AWSCore
import Crypto
import EC2TestSupport
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `zlabel ec2 publish` from the command line against moto behind the strict peer: what lands in the snapshot
/// is the input with the target's labels, as real ZFS and GRUB read it, and the input file never changes.
@Suite("ec2 publish end to end", .serialized, .enabled(if: TestEnv.motoTestsEnabled))
struct PublishEndToEndTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: String
        var target: String
        /// The target's strings, from the vbd formulas (HVM /dev/xvda is vbd 51712, PV /dev/sda is 2048) and the
        /// pool's slice s0 (minor a).
        var physPath: String
        var path: String
        var testDescription: String { "\(target) on \(fixture)" }
    }

    static let cases = [
        Case(fixture: "disk-gpt.img", target: "ec2-xen-hvm", physPath: "/xpvd/xdf@51712:a", path: "/dev/dsk/c1t0d0s0"),
        // No ec2-xen-pv case: pv-grub cannot read any fixture pool (written by OpenZFS 2.1), so publish refuses
        // them before uploading; `pvRefusedBeforeAnyRequest` pins that.
    ]

    /// GRUB 2 passes bootpath only for a leaf that also has a devid, so the publish sets one.
    static let devid = "id1,xdf@zlabel/a"

    static func sha256(_ url: URL) throws -> String {
        SHA256.hash(data: try Data(contentsOf: url)).map { String(format: "%02x", $0) }.joined()
    }

    static func environment(_ peer: StrictPeer) -> [String: String] {
        [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": peer.endpoint, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "",
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL_EC2": "", "AWS_ENDPOINT_URL_EBS": "",
        ]
    }

    @Test("publish: interrupted and resumed, read back equal to the edited input, zdb and GRUB see the target",
          .oracle(.zdbCheck, .grub), arguments: cases)
    func publish(_ c: Case) throws {
        let fixture = try Fixture.named(c.fixture)
        let partition = try #require(fixture.partition)
        let scratch = try Fixture.scratchCopy(c.fixture)
        let input = scratch.url
        let inputHash = try Self.sha256(input)
        let state = scratch.directory.file("state").path
        let peer = try StrictPeer(["--kernels", "--image-delay", "1.0", "--deny-register-times", "1"])
        defer { peer.stop() }
        let env = Self.environment(peer)
        let name = "omnios publish \(c.target)"
        let args = ["ec2", "publish", input.path, "--name", name, "--target", c.target, "--devid", Self.devid,
                    "--state-dir", state, "--wait", "--copy-to", "us-west-2", "--no-progress", "--workers", "4",
                    "--attempt-timeout", "20"]

        // 1: the upload finishes, RegisterImage is refused: the run fails after the snapshot exists.
        let first = try ZLabelCLI.run(args, environment: env)
        #expect(first.status != 0, "\(first)")
        #expect(first.stderrText.contains("UnauthorizedOperation"), "\(first)")
        #expect(try peer.requests("StartSnapshot") == 1)
        #expect(try peer.images().isEmpty)

        // 2: the same command continues with that snapshot (no second upload) and registers.
        let second = try ZLabelCLI.run(args + ["--json"], environment: env)
        #expect(second.status == 0, "\(second)")
        let doc = try #require(try JSONSerialization.jsonObject(with: second.stdout) as? [String: Any])
        let ami = try #require(doc["ami"] as? [String: Any])
        let snapshot = try #require(ami["snapshot_id"] as? String)
        let images = try #require(ami["images"] as? [[String: Any]])
        let ids = images.compactMap { $0["image_id"] as? String }
        #expect(images.compactMap { $0["region"] as? String } == ["us-east-1", "us-west-2"])
        #expect(images.allSatisfy { $0["state"] as? String == "available" })
        #expect(doc["upload"] == nil || doc["upload"] is NSNull, "the second run must not upload")
        #expect(try peer.requests("StartSnapshot") == 1)

        // 3: once more: nothing new; the AMI ids alone on stdout, one line per region.
        let third = try ZLabelCLI.run(args, environment: env)
        #expect(third.status == 0, "\(third)")
        #expect(third.stdoutText.split(separator: "\n").map(String.init) == ids)
        #expect(try peer.requests("StartSnapshot") == 1)
        #expect(try peer.requests("RegisterImage") == 2, "one refused, one registered")
        #expect(try peer.requests("CopyImage") == 1)

        // The AMI the peer holds: the target's kind, backed by the uploaded snapshot.
        let stored = try #require(try peer.images()[ids[0]])
        let pv = c.target == "ec2-xen-pv"
        #expect(stored["virtualization"] as? String == (pv ? "paravirtual" : "hvm"))
        #expect(stored["root"] as? String == (pv ? "/dev/sda" : "/dev/xvda"))
        #expect((stored["mappings"] as? [[String: Any]])?.first?["snapshot"] as? String == snapshot)
        if pv {  // a partitioned image boots through the hd00 PV-GRUB
            let kernel = try #require(stored["kernel"] as? String)
            let kernels = try #require((try peer.stats()["kernels"] as? [String: [[String: Any]]])?["us-east-1"])
            let name = kernels.first { $0["id"] as? String == kernel }?["name"] as? String
            #expect(name?.hasPrefix("pv-grub-hd00_") == true, "\(name ?? kernel)")
        }
        try peer.expectNoRejections()

        // The snapshot holds the input with the labels `zlabel set` writes for the target.
        let expected = scratch.directory.file("expected.img")
        #expect(TestEnv.run(["/bin/cp", "--sparse=always", input.path, expected.path]).status == 0)
        let set = try ZLabelCLI.run(["set", expected.path, "--target", c.target, "--devid", Self.devid,
                                     "--backup", scratch.directory.file("backup").path])
        #expect(set.status == 0, "\(set)")
        let readback = scratch.directory.file("readback.img")
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: snapshot, expectedImage: expected.path,
                                    writeTo: readback.path)
        #expect(rb.identical, "\(rb)")

        // Real ZFS and GRUB on what was read back.
        let device = Oracle.Device(readback, fixture: fixture)
        let check = try Oracle.zdbCheck([device], expect: ["phys_path": c.physPath, "path": c.path, "devid": Self.devid],
                                        fast: true)
        #expect(check.succeeded, "\(check)")
        let grubDevice = partition.grubPartition == nil ? device : Oracle.Device(readback)
        let view = try Oracle.grubBootpath([grubDevice], partition: partition.grubPartition)
        #expect(view.bootpath == c.physPath, "\(view.result)")
        #expect(view.diskdevid == Self.devid, "\(view.result)")

        // The input was only read.
        #expect(try Self.sha256(input) == inputHash)
    }

    @Test("ec2-xen-pv: an image pv-grub cannot read is refused (exit 3) before any request reaches EC2")
    func pvRefusedBeforeAnyRequest() throws {
        let scratch = try Fixture.scratchCopy("disk-vtoc.img")
        let inputHash = try Self.sha256(scratch.url)
        let peer = try StrictPeer(["--kernels"])
        defer { peer.stop() }
        let run = try ZLabelCLI.run(["ec2", "publish", scratch.url.path, "--name", "omnios pv", "--target", "ec2-xen-pv",
                                     "--state-dir", scratch.directory.file("state").path, "--no-progress"],
                                    environment: Self.environment(peer))
        #expect(run.status == 3, "\(run)")
        #expect(run.stderrText.contains("refused, nothing uploaded"), "\(run)")
        #expect(run.stderrText.contains("com.delphix:hole_birth"), "\(run)")
        #expect(try peer.requests("StartSnapshot") == 0)
        #expect(try peer.requests("RegisterImage") == 0)
        #expect(try Self.sha256(scratch.url) == inputHash)
    }

    @Test("publish killed in the middle of its upload: the rerun finishes the upload and registers once")
    func killedDuringUpload() async throws {
        let exe = try ZLabelCLI.executable().path
        let fixture = "disk-gpt.img"
        let scratch = try Fixture.scratchCopy(fixture)
        let input = scratch.url
        let inputHash = try Self.sha256(input)
        let peer = try StrictPeer(["--image-delay", "0.5", "--faults", "throttle=0.2", "--seed", "5"])
        defer { peer.stop() }
        let args = ["ec2", "publish", input.path, "--name", "omnios killed publish", "--target", "ec2-xen-hvm",
                    "--endpoint-url", peer.endpoint, "--state-dir", scratch.directory.file("state").path,
                    "--workers", "1", "--no-progress", "--attempt-timeout", "5", "--wait"]
        // SIGKILL once the third block is acknowledged and journaled: at a step, not at a moment, so that a busy
        // machine cannot let the run get past its registration before the kill lands.
        let crashed = try ZLabelCLI.run(
            args, environment: EC2Process.environment().merging(
                [CrashPoint.environmentVariable: CrashPoint.blockRecorded.rawValue + "@3"]) { $1 })
        #expect(crashed.status == 128 + 9, "killed at the third block: \(crashed)")
        #expect(try peer.images().isEmpty, "killed before RegisterImage")
        let (p2, out2, err2) = try EC2Process.launch(exe, args)
        let stdout = String(decoding: out2.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err2.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p2.waitUntilExit()
        #expect(p2.terminationStatus == 0, "\(stderr)")
        let ids = stdout.split(separator: "\n").map(String.init)
        try #require(ids.count == 1 && ids[0].hasPrefix("ami-"), "\(stdout)")
        let snaps = (try peer.stats()["snapshots"] as? [String: Any]) ?? [:]
        // Killed mid-upload, the rerun resumes the upload into the one snapshot.
        #expect(stderr.contains("resuming the interrupted upload"), "\(stderr)")
        #expect(snaps.count == 1, "one snapshot: \(stderr)")
        #expect(try peer.requests("RegisterImage") == 1)
        try peer.expectNoRejections()

        let stored = try #require(try peer.images()[ids[0]])
        let snapshot = try #require((stored["mappings"] as? [[String: Any]])?.first?["snapshot"] as? String)
        let expected = scratch.directory.file("expected.img")
        #expect(TestEnv.run(["/bin/cp", "--sparse=always", input.path, expected.path]).status == 0)
        let set = try ZLabelCLI.run(["set", expected.path, "--target", "ec2-xen-hvm",
                                     "--backup", scratch.directory.file("backup").path])
        #expect(set.status == 0, "\(set)")
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: snapshot, expectedImage: expected.path)
        #expect(rb.identical, "\(rb)")
        #expect(try Self.sha256(input) == inputHash)
    }

    @Test("ec2 upload, then ec2 register of a paravirtual AMI with --kernel-id auto, from the command line")
    func registerCommand() throws {
        let peer = try StrictPeer(["--kernels", "--image-delay", "0.5"])
        defer { peer.stop() }
        let dir = try TestEnv.tempDir("register-cli")
        let image = dir + "/fs.raw"
        try TestImage.make(image, size: 4 << 20, writes: [(0, TestImage.pattern(3))])
        let env = Self.environment(peer)
        let upload = try ZLabelCLI.run(["ec2", "upload", image, "--wait", "--state-dir", dir + "/state", "--no-progress"],
                                       environment: env)
        #expect(upload.status == 0, "\(upload)")
        let snapshot = upload.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(snapshot.hasPrefix("snap-"))
        let run = try ZLabelCLI.run(
            ["ec2", "register", "--snapshot", snapshot, "--name", "omnios pv [cli]", "--virtualization", "paravirtual",
             "--kernel-id", "auto", "--pv-grub", "hd0", "--volume-type", "standard", "--volume-size", "2",
             "--tag", "Name=omnios", "--share", "111122223333", "--copy-to", "eu-west-1", "--wait"],
            environment: env)
        #expect(run.status == 0, "\(run)")
        let ids = run.stdoutText.split(separator: "\n").map(String.init)
        try #require(ids.count == 2 && ids.allSatisfy { $0.hasPrefix("ami-") }, "\(run.stdoutText)")
        let images = try peer.images()
        let stored = try #require(images[ids[0]])
        #expect(stored["virtualization"] as? String == "paravirtual")
        #expect(stored["root"] as? String == "/dev/sda")
        let kernel = try #require(stored["kernel"] as? String)
        let kernels = try #require((try peer.stats()["kernels"] as? [String: [[String: Any]]])?["us-east-1"])
        let kernelName = kernels.first { $0["id"] as? String == kernel }?["name"] as? String
        #expect(kernelName?.hasPrefix("pv-grub-hd0_") == true, "\(kernelName ?? kernel)")
        let mapping = try #require((stored["mappings"] as? [[String: Any]])?.first)
        #expect(mapping["snapshot"] as? String == snapshot)
        #expect(mapping["size"] as? Int == 2)
        #expect(mapping["type"] as? String == "standard")
        #expect(stored["tags"] as? [String: String] == ["Name": "omnios"])
        for id in ids { #expect(images[id]?["launch_users"] as? [String] == ["111122223333"]) }
        #expect(images[ids[1]]?["region"] as? String == "eu-west-1")
        try peer.expectNoRejections()

        // A request EC2 would refuse never reaches it: exit 64.
        let bad = try ZLabelCLI.run(["ec2", "register", "--snapshot", snapshot, "--name", "hvm with kernel",
                                     "--virtualization", "hvm", "--kernel-id", "aki-12345678"], environment: env)
        #expect(bad.status == 64, "\(bad)")
        #expect(try peer.requests("RegisterImage") == 1)
    }

    @Test("cleanup-script prints a script that passes sh -n and shellcheck")
    func cleanupScript() throws {
        let run = try ZLabelCLI.run(["ec2", "cleanup-script"])
        #expect(run.status == 0, "\(run)")
        let dir = try TestEnv.tempDir("cleanup")
        let path = dir + "/cleanup.sh"
        try run.stdout.write(to: URL(fileURLWithPath: path))
        #expect(run.stdoutText.hasPrefix("#!/bin/sh\n"))
        for needed in ["ssh_host_", "beadm destroy", "/var/adm/messages", "/var/fm/fmd/", "authorized_keys",
                       "/root/.bash_history", "poweroff"] {
            #expect(run.stdoutText.contains(needed), "the script does not handle \(needed)")
        }
        let syntax = TestEnv.run(["/bin/sh", "-n", path])
        #expect(syntax.status == 0, "\(syntax.err)")
        if TestEnv.run(["/bin/sh", "-c", "command -v shellcheck"]).status == 0 {
            let lint = TestEnv.run(["/usr/bin/env", "shellcheck", "-s", "sh", path])
            #expect(lint.status == 0, "\(lint.out)")
        } else if TestEnv.isCI {
            Issue.record("shellcheck is not installed (CI requires it)")
        } else {
            print("note: shellcheck not installed; only sh -n checked the cleanup script")
        }
        // Without --yes it changes nothing and says so.
        let dry = TestEnv.run(["/bin/sh", path])
        #expect(dry.status == 0, "\(dry.err)")
        #expect(dry.out.contains("nothing was changed"))
    }
}

/// `publish` refuses an image whose labels are not all valid before it talks to AWS at all.
@Suite("ec2 publish refusals")
struct PublishRefusalTests {
    @Test("a label with a bad checksum: exit 3, the problem named, nothing sent, the image untouched")
    func damagedLabel() throws {
        let fixture = try Fixture.named("disk-gpt.img")
        let partition = try #require(fixture.partition)
        let scratch = try Fixture.scratchCopy("disk-gpt.img")
        // One byte inside label 1's nvlist area (labels are 256 KiB; the nvlist starts 16 KiB in).
        let offset = partition.offset + 256 * 1024 + 16 * 1024 + 100
        let handle = try FileHandle(forUpdating: scratch.url)
        try handle.seek(toOffset: offset)
        let old = try #require(try handle.read(upToCount: 1)).first ?? 0
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data([old ^ 0xFF]))
        try handle.close()
        let hash = try PublishEndToEndTests.sha256(scratch.url)

        // An endpoint nobody listens on: any request would fail with a connection error, not exit 3.
        let run = try ZLabelCLI.run(
            ["ec2", "publish", scratch.url.path, "--target", "ec2-xen-hvm", "--name", "refused image",
             "--state-dir", scratch.directory.file("state").path, "--max-attempts", "1"],
            environment: ["AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1",
                          "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                          "AWS_EC2_METADATA_DISABLED": "true"])
        #expect(run.status == 3, "\(run)")
        #expect(run.stderrText.contains("refused, nothing uploaded"), "\(run)")
        #expect(run.stderrText.contains("label 1"), "\(run)")
        #expect(run.stdout.isEmpty)
        #expect(try PublishEndToEndTests.sha256(scratch.url) == hash)
    }
}

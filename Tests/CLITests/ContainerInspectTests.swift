import Foundation
import Testing
import TestSupport

/// `zlabel inspect` and `verify` read an image inside a qcow2 file and name the container.
@Suite("zlabel on VM disk containers")
struct ContainerInspectTests {
    @Test("inspect names the container and prints the raw image's labels; verify agrees", .oracle(.qemuImg))
    func inspectQcow2() throws {
        try Oracle.require(.qemuImg)
        let raw = try Fixture.image("disk-gpt.img")
        let d = try TemporaryDirectory(prefix: "zlabel-cli-container")
        let packed = d.file("disk-gpt.qcow2")
        let r = try Run.run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw.path, packed.path])
        #expect(r.succeeded, "\(r)")

        let viaContainer = try ZLabelCLI.run("inspect", packed.path)
        let direct = try ZLabelCLI.run("inspect", raw.path)
        #expect(viaContainer.status == 0 && direct.status == 0, "\(viaContainer)")
        let lines = viaContainer.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first == "\(packed.path): qcow2 (version 3) image, virtual disk of 75645440 bytes")
        #expect(lines.dropFirst().joined(separator: "\n").replacingOccurrences(of: packed.path, with: "IMG")
                == direct.stdoutText.replacingOccurrences(of: raw.path, with: "IMG"))

        let json = try ZLabelCLI.run("inspect", "--json", packed.path)
        #expect(json.stdoutText.contains("\"container\""), "\(json)")
        let verify = try ZLabelCLI.run("verify", packed.path)
        let verifyRaw = try ZLabelCLI.run("verify", raw.path)
        #expect(verify.status == verifyRaw.status, "\(verify)")
    }

    /// `rpool-kvm.img` as qemu-img writes it into `format`, in a fresh directory.
    static func convert(_ fixture: String, to format: [String], name: String) throws -> (raw: URL, packed: URL, dir: TemporaryDirectory) {
        try Oracle.require(.qemuImg)
        let raw = try Fixture.image(fixture)
        let d = try TemporaryDirectory(prefix: "zlabel-cli-container")
        let packed = d.file(name)
        let r = try Run.run("qemu-img", ["convert", "-f", "raw", "-O"] + format + [raw.path, packed.path])
        guard r.succeeded else { throw OracleError.failed(r) }
        return (raw, packed, d)
    }

    @Test("doctor, boot-view and expect read through a VMDK exactly what they read in the raw image", .oracle(.qemuImg))
    func readOnlyCommandsOnVMDK() throws {
        let (raw, packed, dir) = try Self.convert("rpool-kvm.img", to: ["vmdk", "-o", "subformat=streamOptimized"],
                                                  name: "rpool-kvm.vmdk")
        _ = dir
        try Self.readOnlyCommandsAgree(raw: raw, packed: packed)
    }

    @Test("inspect, verify, doctor, boot-view and expect read a zstd-, xz- or gzip-compressed raw image as the raw image",
          .oracle(.compressors), arguments: ["zstd -q -c", "xz -0 -T1 -c", "gzip -1 -c"])
    func readOnlyCommandsOnCompressedRaw(_ compressor: String) throws {
        try Oracle.require(.compressors)
        let raw = try Fixture.image("rpool-kvm.img")
        let d = try TemporaryDirectory(prefix: "zlabel-cli-compressed")
        let name = compressor.split(separator: " ")[0]
        let packed = d.file("rpool-kvm.img.\(name)")
        let r = try Run.run("sh", ["-c", "\(compressor) < \"$1\" > \"$2\"", "sh", raw.path, packed.path])
        #expect(r.succeeded, "\(r)")
        let inspect = try ZLabelCLI.run("inspect", packed.path)
        #expect(inspect.status == 0, "\(inspect)")
        #expect(inspect.stdoutText.hasPrefix("\(packed.path): \(name)-compressed raw image, virtual disk of 67108864 bytes\n"),
                "\(inspect)")
        let verify = try ZLabelCLI.run("verify", packed.path)
        #expect(verify.status == 0 && verify.stdoutText.contains("all 4 labels valid"), "\(verify)")
        try Self.readOnlyCommandsAgree(raw: raw, packed: packed)
        // Editing needs random access: refused with exit 3, the file untouched, nothing written beside it.
        try ContainerEditTests.refused(packed, ["set", "IMG", "--phys-path", "/xpvd/xdf@51712:a"], reason: "compressed raw image")
        try ContainerEditTests.refused(packed, ["repair-checksums", "IMG"], reason: "compressed raw image")
    }

    @Test("a compressed raw image cut short: every command exits 2 naming the file and the compressed byte offset, nothing written",
          .oracle(.compressors), arguments: ["zstd -q -c", "xz -0 -T1 -c", "gzip -1 -c"])
    func compressedRawCutShort(_ compressor: String) throws {
        try Oracle.require(.compressors)
        let d = try TemporaryDirectory(prefix: "zlabel-cli-compressed")
        let name = compressor.split(separator: " ")[0]
        let whole = d.file("whole.\(name)")
        let r = try Run.run("sh", ["-c", "\(compressor) < \"$1\" > \"$2\"", "sh", try Fixture.image("disk-gpt.img").path, whole.path])
        #expect(r.succeeded, "\(r)")
        let bytes = try Data(contentsOf: whole)
        let cut = d.file("cut.img.\(name)")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        for command in [["inspect"], ["verify"], ["doctor"], ["boot-view"], ["expect", "labels=4"], ["ec2", "upload"],
                        ["ec2", "publish", "--name", "x", "--target", "ec2-xen-hvm"]] {
            let arguments = command.count > 1 && command[0] == "expect" ? ["expect", cut.path, command[1]]
                : command + [cut.path]
            let run = try ZLabelCLI.run(arguments, environment: ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                                                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"])
            #expect(run.status == 2, "\(command): \(run)")
            #expect(run.stderrText.contains(cut.path) && run.stderrText.contains("\(name) stream")
                    && run.stderrText.contains(" at byte "), "\(command): \(run)")
        }
        #expect(try Data(contentsOf: cut) == bytes.prefix(bytes.count / 2))
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.url.path).sorted() == ["cut.img.\(name)", "whole.\(name)"])
    }

    /// Runs the read-only commands on the raw image and on its packed copy and expects the same output.
    static func readOnlyCommandsAgree(raw: URL, packed: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        func same(_ arguments: [String], status expected: Int32) throws {
            let viaContainer = try ZLabelCLI.run(arguments.map { $0 == "IMG" ? packed.path : $0 })
            let direct = try ZLabelCLI.run(arguments.map { $0 == "IMG" ? raw.path : $0 })
            #expect(direct.status == expected, "\(direct)", sourceLocation: sourceLocation)
            #expect(viaContainer.status == direct.status, "\(viaContainer)", sourceLocation: sourceLocation)
            #expect(!direct.stdoutText.isEmpty, sourceLocation: sourceLocation)
            #expect(viaContainer.stdoutText.replacingOccurrences(of: packed.path, with: "IMG")
                    == direct.stdoutText.replacingOccurrences(of: raw.path, with: "IMG"), "\(arguments)",
                    sourceLocation: sourceLocation)
        }
        try same(["doctor", "--json", "IMG", "--target", "ec2-xen-hvm"], status: 1)
        try same(["doctor", "IMG"], status: 0)
        try same(["boot-view", "--json", "IMG"], status: 0)
        try same(["boot-view", "--loader", "pv-grub", "IMG"], status: 1)  // pv-grub lacks the pool's read features
        try same(["expect", "--json", "IMG", "state=exported", "labels=4", "checksums=valid"], status: 0)
        // Failures print what was found: the phys_path of the labels and the bootfs of the MOS.
        try same(["expect", "IMG", "phys_path=/xpvd/xdf@51712:a", "bootfs=rpool/no-such-dataset"], status: 1)
    }
}

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
        func same(_ arguments: [String], status expected: Int32) throws {
            let viaContainer = try ZLabelCLI.run(arguments.map { $0 == "IMG" ? packed.path : $0 })
            let direct = try ZLabelCLI.run(arguments.map { $0 == "IMG" ? raw.path : $0 })
            #expect(direct.status == expected, "\(direct)")
            #expect(viaContainer.status == direct.status, "\(viaContainer)")
            #expect(!direct.stdoutText.isEmpty)
            #expect(viaContainer.stdoutText.replacingOccurrences(of: packed.path, with: "IMG")
                    == direct.stdoutText.replacingOccurrences(of: raw.path, with: "IMG"), "\(arguments)")
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

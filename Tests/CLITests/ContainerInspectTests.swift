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
}

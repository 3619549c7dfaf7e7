import Foundation
import Testing
import TestSupport
import ZLabel
#if canImport(Glibc)
import Glibc
#endif

/// Block devices, through a loop device over a fixture copy: size from the kernel, positional I/O, flush, and
/// the refusal of a device someone else holds exclusively. Needs root and /dev/loop-control; in CI (root on
/// the same machine kind) a missing loop device fails the test instead of skipping it.
@Suite("block devices", .serialized)
struct BlockDeviceTests {
    /// Attaches `image` to a free loop device for the duration of `body`.
    static func withLoopDevice<T>(_ image: URL, _ body: (String) throws -> T) throws -> T {
        let attach = try Run.run("losetup", ["-f", "--show", image.path], timeout: 30)
        guard attach.succeeded else {
            if Oracle.isCI { Issue.record("no loop device in CI: \(attach)") }
            try Test.cancel("skipped: no loop device (needs root): \(attach)")
        }
        let device = attach.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Run.run("losetup", ["-d", device], timeout: 30) }
        return try body(device)
    }

    @Test("inspect, set and verify a pool on a block device; the backing file holds the edit")
    func editThroughALoopDevice() throws {
        let scratch = try Fixture.scratchCopy("disk-gpt.img")
        try Self.withLoopDevice(scratch.url) { device in
            let file = try ImageFile(path: device)
            #expect(file.isBlockDevice)
            #expect(file.size == (try Fixture.named("disk-gpt.img").size))
            let set = try ZLabelCLI.run(["set", device, "--target", "ec2-xen-hvm",
                                         "--backup", scratch.directory.file("backup").path])
            #expect(set.status == 0, "\(set)")
            let verify = try ZLabelCLI.run(["verify", device])
            #expect(verify.status == 0, "\(verify)")
        }
        // After detaching, the image file itself carries the new labels.
        let image = try ImageFile(path: scratch.url.path)
        let labels = try image.readLabels(in: try #require(try image.findVdevs().regions.first))
        #expect(labels.labels.allSatisfy { $0.config?.value(at: "vdev_tree.phys_path") == .string("/xpvd/xdf@51712:a") })
    }

    @Test("a device held exclusively by someone else is refused, zero bytes written")
    func exclusiveHolderIsRefused() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let before = try Data(contentsOf: scratch.url)
        try Self.withLoopDevice(scratch.url) { device in
            let holder = open(device, O_RDONLY | O_EXCL)
            #expect(holder >= 0, "could not claim \(device) exclusively")
            defer { close(holder) }
            let run = try ZLabelCLI.run(["set", device, "--phys-path", "/xpvd/xdf@51712:a",
                                         "--backup", scratch.directory.file("backup").path])
            #expect(run.status == 2, "\(run)")
            #expect(run.stderrText.contains(device) && run.stderrText.contains("exclusively"), "\(run)")
        }
        #expect(try Data(contentsOf: scratch.url) == before)
        #expect(!FileManager.default.fileExists(atPath: scratch.directory.file("backup").path))
    }
}

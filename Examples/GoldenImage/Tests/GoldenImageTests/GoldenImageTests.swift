import Foundation
import GoldenImage
import Testing
import ZLabel

/// A golden-image test as a zlabel user writes it: the image before, the edit, the image after, each stated
/// as expectations and checked with `ExpectationReport`. The image is zlabel's own fixture `rpool-kvm.img`
/// (an OmniOS root pool written by real ZFS on a KVM virtio disk); `rpool-kvm-to-xen.img` is the same pool
/// after real ZFS itself moved it to Xen, so the expectations of the shipped image must hold there too.
@Suite struct GoldenImageTests {
    /// The zlabel checkout this package sits in.
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// A writable, sparse copy of a fixture image in a fresh temporary directory.
    static func unpack(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appending(path: "golden-image-\(UUID().uuidString)", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = repository.appending(path: "Fixtures/\(name).xz").path
        let target = directory.appending(path: name).path
        let unxz = Process()
        unxz.executableURL = URL(fileURLWithPath: "/bin/sh")
        unxz.arguments = ["-c", "xz -dc -- \"$1\" | cp --sparse=always /dev/stdin \"$2\"", "sh", source, target]
        try unxz.run()
        unxz.waitUntilExit()
        try #require(unxz.terminationStatus == 0, "cannot unpack \(source)")
        return URL(fileURLWithPath: target)
    }

    @Test func kvmImageIsReadyForXenAfterTheRewrite() throws {
        let image = try Self.unpack("rpool-kvm.img")
        defer { try? FileManager.default.removeItem(at: image.deletingLastPathComponent()) }

        // Before: the KVM disk's strings, a hostid, four valid labels.
        let before = try ExpectationReport.check([
            "path=/dev/dsk/c1t0d0s0", "phys_path=/pci@0,0/pci1af4,2@4/blkdev@0,0:a", "hostid=0x0badc0de",
            "state=exported", "labels=4", "checksums=valid", "bootfs=rpool/ROOT/omnios",
        ], images: [image.path])
        #expect(before.holds, "\(before)")
        // What ships must not hold yet, and the report says where.
        let notYet = try ExpectationReport.check(XenRewrite.expectations, images: [image.path])
        #expect(!notYet.holds)
        #expect(notYet.failures.map(\.expectation.key) == Array(repeating: "phys_path", count: 4) + Array(repeating: "path", count: 4))

        // The edit, through the public API: planned, backed up, written, read back.
        let plan = try XenRewrite.apply(to: image.path, backup: image.path + ".backup")
        #expect(plan.summary.contains(XenRewrite.physPath))
        #expect(FileManager.default.fileExists(atPath: image.path + ".backup"))

        // After: everything the shipped image must hold, and the hostid gone.
        let after = try ExpectationReport.check(XenRewrite.expectations + ["hostid=absent"], images: [image.path])
        #expect(after.holds, "\(after)")
        // Real ZFS moved the same pool to Xen in rpool-kvm-to-xen.img: it meets the same expectations.
        let golden = try Self.unpack("rpool-kvm-to-xen.img")
        defer { try? FileManager.default.removeItem(at: golden.deletingLastPathComponent()) }
        let reference = try ExpectationReport.check(XenRewrite.expectations, images: [golden.path])
        #expect(reference.holds, "\(reference)")
    }

    @Test func anImageWithoutAPoolIsRefusedWithNothingWritten() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "golden-image-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = directory.appending(path: "empty.img").path
        #expect(FileManager.default.createFile(atPath: empty, contents: Data(count: 8 << 20)))
        let error = try #require(throws: LabelEditError.self) {
            try XenRewrite.apply(to: empty, backup: empty + ".backup")
        }
        #expect(error.code == .noValidLabel)
        #expect(!FileManager.default.fileExists(atPath: empty + ".backup"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: empty)) == Data(count: 8 << 20))
    }
}

import Foundation
import Synchronization
import Testing
import ZFSChecksum
import ZFSImage
import ZFSLabel

/// Counts the reads and writes that reach an image.
final class CountingImage: ImageStorage {
    let base: any ImageStorage
    let counters = Mutex((reads: 0, bytesRead: 0, writes: 0, bytesWritten: 0))
    init(_ base: any ImageStorage) { self.base = base }
    var path: String { base.path }
    var size: UInt64 { base.size }
    var isWritable: Bool { base.isWritable }
    func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        counters.withLock { $0.reads += 1; $0.bytesRead += count }
        return try base.read(at: offset, count: count)
    }
    func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        counters.withLock { $0.writes += 1; $0.bytesWritten += bytes.count }
        try base.write(bytes, at: offset)
    }
    func synchronize() throws(ImageError) { try base.synchronize() }
}

/// A 1 TiB sparse image costs what a 64 MiB one does: only label areas and partition sectors are read or written.
@Suite struct SparseImageTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/rpool-kvm.img.xz")

    /// Makes a sparse image of `size` bytes holding the fixture's four labels where a vdev of that size keeps them.
    static func makeSparse(size: UInt64, in dir: URL) throws -> (small: String, big: String) {
        let small = dir.appendingPathComponent("small.img").path
        let decompress = Process()
        decompress.executableURL = URL(fileURLWithPath: "/bin/sh")
        decompress.arguments = ["-c", "xz -dc '\(fixture.path)' | cp --sparse=always /dev/stdin '\(small)'"]
        try decompress.run()
        decompress.waitUntilExit()
        try #require(decompress.terminationStatus == 0, "xz is needed to unpack the fixture")
        let big = dir.appendingPathComponent("big.img").path
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: big))
        try handle.truncate(atOffset: size)
        try handle.close()
        let src = try ImageFile(path: small), dst = try ImageFile(path: big, mode: .readWrite)
        for i in 0..<LabelLayout.labelCount {
            var label = try src.read(at: LabelLayout.labelOffset(i, vdevSize: src.size), count: LabelLayout.labelSize)
            // L2 and L3 move: their config checksums are seeded with the new offset.
            let newOffset = LabelLayout.labelOffset(i, vdevSize: size)
            var area = Array(label[LabelLayout.configOffset..<(LabelLayout.configOffset + LabelLayout.configSize)])
            EmbeddedChecksum.seal(&area, offset: newOffset + UInt64(LabelLayout.configOffset), order: .little)
            label.replaceSubrange(LabelLayout.configOffset..<(LabelLayout.configOffset + LabelLayout.configSize), with: area)
            try dst.write(label, at: newOffset)
        }
        return (small, big)
    }

    @Test func inspectingOneTebibyteReadsWhatSixtyFourMebibytesDo() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zlabel-sparse-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (small, big) = try Self.makeSparse(size: 1 << 40, in: dir)

        let smallImage = CountingImage(try ImageFile(path: small))
        let bigImage = CountingImage(try ImageFile(path: big))
        let a = try ImageReport(image: smallImage)
        let b = try ImageReport(image: bigImage)
        #expect(a.vdevs.count == 1 && b.vdevs.count == 1)
        #expect(b.vdevs[0].labels.labels.allSatisfy { $0.status == .valid })
        #expect(b.vdevs[0].labels.labels[3].offset == (1 << 40) - 262_144)
        #expect(a.vdevs[0].labels.config == b.vdevs[0].labels.config)
        let ca = smallImage.counters.withLock { $0 }, cb = bigImage.counters.withLock { $0 }
        #expect(ca.reads == cb.reads)
        #expect(ca.bytesRead == cb.bytesRead)
        #expect(cb.bytesRead < 2 << 20, "read \(cb.bytesRead) bytes of a 1 TiB image")
    }

    @Test func editingOneTebibyteWritesOnlyTheConfigAreas() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zlabel-sparse-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, big) = try Self.makeSparse(size: 1 << 40, in: dir)
        let image = CountingImage(try ImageFile(path: big, mode: .readWrite))
        let target = EditTarget(image: image, region: image.wholeImage)
        var edit = LeafEdit()
        edit.physPath = .set("/xpvd/xdf@51712:a")
        let plan = try LabelWriter.plan([target], edit: edit)
        _ = try LabelWriter.apply(plan, to: [target], backupPath: dir.appendingPathComponent("backup").path)
        let c = image.counters.withLock { $0 }
        // Only the changed blocks of the four config areas (at least one write per label).
        #expect(c.writes >= 4)
        #expect(c.bytesWritten > 0 && c.bytesWritten <= 4 * LabelLayout.configSize)
        var st = stat()
        #expect(stat(big, &st) == 0)
        #expect(st.st_blocks * 512 < 8 << 20, "the image now allocates \(st.st_blocks * 512) bytes")
        let after = try ImageReport(image: try ImageFile(path: big))
        #expect(after.vdevs[0].labels.labels.allSatisfy { $0.config?.value(at: "vdev_tree.phys_path") == .string("/xpvd/xdf@51712:a") })
    }
}

import Foundation
@testable import RawIO
import Testing

/// A directory of its own under the system's temporary directory, removed at the end of the test.
final class Scratch {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "/rawio-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A sparse file of `size` bytes holding `writes` (nothing else is ever written, so the rest is holes).
    func sparseFile(_ name: String, size: UInt64, writes: [(offset: UInt64, bytes: [UInt8])]) throws -> String {
        let file = path + "/" + name
        #expect(FileManager.default.createFile(atPath: file, contents: nil))
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        defer { try? handle.close() }
        try handle.truncate(atOffset: size)
        for w in writes {
            try handle.seek(toOffset: w.offset)
            try handle.write(contentsOf: w.bytes)
        }
        return file
    }
}

/// `count` bytes that differ from their neighbours and from every other run (a run's bytes depend on `seed`).
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7 &+ 1) }
}

@Suite("RawIO.ImageFile")
struct ImageFileTests {
    static let mib: UInt64 = 1 << 20

    @Test("positional reads return the bytes written at every offset, inside and across writes and holes")
    func positionalReads() throws {
        let scratch = try Scratch()
        let a = pattern(10_000, seed: 1), b = pattern(70_000, seed: 2)
        let size = 8 * Self.mib
        let path = try scratch.sparseFile("p.raw", size: size, writes: [(4096, a), (5 * Self.mib + 17, b)])
        var expected = [UInt8](repeating: 0, count: Int(size))
        expected.replaceSubrange(4096..<(4096 + a.count), with: a)
        expected.replaceSubrange(Int(5 * Self.mib + 17)..<Int(5 * Self.mib + 17) + b.count, with: b)

        let file = try ImageFile(path: path)
        #expect(file.path == path && !file.isWritable && !file.isBlockDevice)
        let probes: [(UInt64, Int)] = [
            (0, 0), (0, 1), (4095, 2), (4096, a.count), (4100, 9_000), (13_000, 3_000), (1 << 20, 4096),
            (5 * Self.mib, 100_000), (5 * Self.mib + 17 + 69_999, 1), (size - 1, 1), (size - 65_536, 65_536),
        ]
        for (offset, count) in probes {
            let got = try file.read(at: offset, count: count)
            #expect(got == Array(expected[Int(offset)..<Int(offset) + count]), "read of \(count) at \(offset)")
            var buffer = [UInt8](repeating: 0xEE, count: count)
            try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            #expect(buffer == got, "read(into:) of \(count) at \(offset)")
        }
    }

    @Test("reads of 64 KiB and more fill holes with zeros themselves: every mix of holes and data, at any alignment")
    func holeAwareReads() throws {
        let scratch = try Scratch()
        let size = 4 * Self.mib
        // Data runs of several sizes, aligned and not, separated by holes of several sizes; a trailing hole.
        let runs: [(UInt64, [UInt8])] = [
            (0, pattern(5_000, seed: 11)), (65_536, pattern(4_096, seed: 12)), (200_001, pattern(130_000, seed: 13)),
            (1 << 20, pattern(1, seed: 14)), (2 * Self.mib - 3, pattern(70_000, seed: 15)),
        ]
        let path = try scratch.sparseFile("h.raw", size: size, writes: runs)
        var expected = [UInt8](repeating: 0, count: Int(size))
        for (offset, bytes) in runs { expected.replaceSubrange(Int(offset)..<Int(offset) + bytes.count, with: bytes) }
        let file = try ImageFile(path: path)
        #expect(try file.dataExtents().count > 1, "the file system keeps this file sparse")
        var probes: [(UInt64, Int)] = [
            (0, 65_536), (0, 262_144), (4_096, 65_536), (65_536, 65_536), (100_000, 300_000), (1 << 20, 65_536),
            ((1 << 20) - 65_535, 65_536), (3 * Self.mib, Int(Self.mib)), (size - 65_536, 65_536), (0, Int(size)),
        ]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<40 {
            let count = Int.random(in: 65_536...400_000, using: &rng)
            probes.append((UInt64.random(in: 0...(size - UInt64(count)), using: &rng), count))
        }
        for (offset, count) in probes {
            var buffer = [UInt8](repeating: 0xEE, count: count)  // stale bytes where a hole is must not survive
            try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            #expect(buffer == Array(expected[Int(offset)..<Int(offset) + count]), "read of \(count) at \(offset)")
        }
    }

    @Test("clearing a range leaves every byte zero, whatever page of it held one non-zero byte, at any alignment")
    func clearLeavesOnlyZeros() {
        let size = 5 * 4096 + 100
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        // One non-zero byte at each kind of place: a page's first, last and middle byte, the range's edges.
        let spots = [0, 1, 7, 8, 4095, 4096, 4097, 6000, 8191, 12_288, 16_383, 20_479, size - 1]
        for (lo, hi) in [(0, size), (3, size - 5), (4096, 8192), (4000, 4200), (17, 18), (9, 9)] {
            for spot in spots {
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                buffer[spot] = 0xA5
                ImageFile.clear(UnsafeMutableRawBufferPointer(rebasing: buffer[lo..<hi]))
                let inside = lo..<hi
                #expect(buffer[spot] == (inside.contains(spot) ? 0 : 0xA5), "byte \(spot), range \(lo)..<\(hi)")
                #expect(buffer.enumerated().allSatisfy { $0.offset == spot || $0.element == 0 })
            }
        }
    }

    @Test("a sparse file's size is its length, not what it occupies; its identity records it")
    func sparseSize() throws {
        let scratch = try Scratch()
        let size: UInt64 = 3 << 30 + 12_345  // 3 GiB and a bit: larger than Int32, mostly holes
        let path = try scratch.sparseFile("s.raw", size: size, writes: [(size - 5, [1, 2, 3, 4, 5])])
        let file = try ImageFile(path: path)
        #expect(file.size == size)
        #expect(file.identity.size == size)
        #expect(try file.read(at: size - 5, count: 5) == [1, 2, 3, 4, 5])
        let again = try ImageFile(path: path)
        #expect(again.identity == file.identity)

        let empty = try ImageFile(path: try scratch.sparseFile("e.raw", size: 0, writes: []))
        #expect(empty.size == 0)
        #expect(try empty.dataExtents() == [])
        #expect(try empty.read(at: 0, count: 0) == [])
    }

    @Test("the hole map covers every byte written, reports the rest as holes, and the holes read as zeros")
    func holeMap() throws {
        let scratch = try Scratch()
        let size = 64 * Self.mib
        let writes: [(offset: UInt64, bytes: [UInt8])] = [
            (0, pattern(3, seed: 3)), (9 * Self.mib + 100, pattern(8192, seed: 4)),
            (40 * Self.mib, pattern(200_000, seed: 5)), (size - 1, [0xAB]),
        ]
        let path = try scratch.sparseFile("h.raw", size: size, writes: writes)
        let file = try ImageFile(path: path)
        let extents = try file.dataExtents()

        // Sorted, disjoint, merged, inside the file.
        for (x, y) in zip(extents, extents.dropFirst()) { #expect(x.upperBound < y.lowerBound, "\(extents)") }
        #expect(extents.allSatisfy { !$0.isEmpty && $0.upperBound <= size }, "\(extents)")
        // Every written byte lies in an extent.
        for w in writes {
            let range = w.offset..<(w.offset + UInt64(w.bytes.count))
            #expect(extents.contains { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound },
                    "write \(range) not inside \(extents)")
        }
        // Holes are holes: the extents hold little more than the writes (file system blocks round them up).
        let dataBytes = extents.reduce(0) { $0 + UInt64($1.count) }
        #expect(dataBytes < 2 * Self.mib, "\(extents)")
        #expect(extents.count >= 3, "\(extents)")
        // Everything outside the extents reads as zeros.
        var cursor: UInt64 = 0
        for gap in (extents.map { ($0.lowerBound, $0.upperBound) } + [(size, size)]) {
            var at = cursor
            while at < gap.0 {
                let n = Int(min(gap.0 - at, 4 * Self.mib))
                #expect(try file.read(at: at, count: n).allSatisfy { $0 == 0 }, "hole at \(at)")
                at += UInt64(n)
            }
            cursor = gap.1
        }
    }

    @Test("a read past the end throws a range error naming the file and the offset, and never traps")
    func readPastEnd() throws {
        let scratch = try Scratch()
        let path = try scratch.sparseFile("e.raw", size: 10_000, writes: [(0, pattern(10_000, seed: 6))])
        let file = try ImageFile(path: path)
        for (offset, count) in [(9_996, 8), (10_000, 1), (20_000, 0), (UInt64.max - 2, 4), (0, 10_001)] as [(UInt64, Int)] {
            let error = try #require(throws: ImageError.self) { _ = try file.read(at: offset, count: count) }
            #expect(error.code == .range && error.offset == offset, "\(error)")
            #expect("\(error)".contains(path) && "\(error)".contains("at byte \(offset)"), "\(error)")
            var buffer = [UInt8](repeating: 0, count: count)
            let intoError = try #require(throws: ImageError.self) {
                try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            }
            #expect(intoError == error)
        }
        #expect(try file.read(at: 9_992, count: 8) == Array(pattern(10_000, seed: 6)[9_992...]))
    }

    @Test("a file that shrinks after it was opened: the read fails at the offset where the file ends")
    func shortRead() throws {
        let scratch = try Scratch()
        let path = try scratch.sparseFile("t.raw", size: 1 << 20, writes: [(0, pattern(1 << 20, seed: 7))])
        let file = try ImageFile(path: path)
        #expect(truncate(path, 300_000) == 0)
        let error = try #require(throws: ImageError.self) { _ = try file.read(at: 200_000, count: 200_000) }
        #expect(error.code == .read && error.offset == 300_000, "\(error)")
        #expect("\(error)".contains(path) && "\(error)".contains("unexpected end of file at byte 300000"), "\(error)")
    }

    @Test("writes go exactly where asked; read-only images and writes past the end are refused untouched")
    func writes() throws {
        let scratch = try Scratch()
        let original = pattern(65_536, seed: 8)
        let path = try scratch.sparseFile("w.raw", size: 65_536, writes: [(0, original)])

        let readOnly = try ImageFile(path: path)
        let refused = try #require(throws: ImageError.self) { try readOnly.write([1], at: 0) }
        #expect(refused.code == .write && "\(refused)".contains(path), "\(refused)")

        let file = try ImageFile(path: path, mode: .readWrite)
        #expect(file.isWritable)
        let patch = pattern(5_000, seed: 9)
        try file.write(patch, at: 30_000)
        let pastEnd = try #require(throws: ImageError.self) { try file.write(patch, at: 65_536 - 4_999) }
        #expect(pastEnd.code == .range && pastEnd.offset == 65_536 - 4_999, "\(pastEnd)")
        try file.synchronize()

        var expected = original
        expected.replaceSubrange(30_000..<35_000, with: patch)
        #expect(try ImageFile(path: path).read(at: 0, count: 65_536) == expected)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(expected))
    }

    @Test("what cannot be opened is refused with the path: a missing file, a directory")
    func openFailures() throws {
        let scratch = try Scratch()
        let missing = try #require(throws: ImageError.self) { _ = try ImageFile(path: scratch.path + "/missing") }
        #expect(missing.code == .open && missing.errno == ENOENT && "\(missing)".contains(scratch.path + "/missing"))
        let directory = try #require(throws: ImageError.self) { _ = try ImageFile(path: scratch.path) }
        #expect(directory.code == .open && "\(directory)".contains("neither a regular file nor a block device"))
    }
}

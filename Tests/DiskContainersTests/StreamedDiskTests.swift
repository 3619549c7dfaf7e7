import DiskContainers
import Foundation
import Testing
import TestSupport

/// A compressed raw image as a random-access disk: every read equals the raw image's bytes, whatever the order,
/// the data map never leaves out a non-zero block, and the reads the uploader and the label side make cost the
/// passes the type promises.
@Suite("compressed raw images as virtual disks")
struct StreamedDiskTests {
    static let block = 512 * 1024

    /// The raw fixture and its packing by `packing`, opened as a disk.
    static func open(_ packing: Packing, useDeclaredSize: Bool = true, cacheBytes: Int = 8 << 20, lookbehind: Int = 4 << 20)
        throws -> (raw: [UInt8], disk: StreamedDisk)
    {
        try Oracle.require(.compressors)
        let raw = try readAll(try Fixture.image("disk-gpt.img"))
        let disk = try StreamedDisk(try FileReader(try Converted.file("disk-gpt.img", packing)),
                                    compression: try #require(StreamCompression(rawValue: packing.name)),
                                    useDeclaredSize: useDeclaredSize, cacheBytes: cacheBytes, lookbehind: lookbehind)
        return (raw, disk)
    }

    @Test("reads in any order equal the raw image; the data map is exactly its non-zero 512 KiB blocks",
          .oracle(.compressors), arguments: Packing.compressors)
    func readsAndMap(_ packing: Packing) throws {
        let (raw, disk) = try Self.open(packing, useDeclaredSize: false)
        #expect(disk.virtualSize == UInt64(raw.count) && disk.isMeasured)
        #expect(disk.format.description == "\(packing.name)-compressed raw")
        #expect(disk.passes == 1)

        // The data map: the non-zero blocks, merged; nothing outside it is non-zero.
        var expected: [Range<UInt64>] = []
        for start in stride(from: 0, to: raw.count, by: Self.block) where firstNonZero(raw, start..<min(start + Self.block, raw.count)) != nil {
            let r = UInt64(start)..<UInt64(min(start + Self.block, raw.count))
            if let last = expected.last, last.upperBound == r.lowerBound { expected[expected.count - 1] = last.lowerBound..<r.upperBound } else { expected.append(r) }
        }
        #expect(try disk.dataExtents() == expected)
        #expect(!expected.isEmpty && expected.reduce(0) { $0 + $1.count } < raw.count)

        // The end of the disk (backup GPT, the end labels 8 MiB before it) is still cached from the measuring pass.
        let endLabels = UInt64(raw.count) - (8 << 20) - (1 << 20)
        #expect(sameBytes(try disk.read(at: endLabels, count: 1 << 20)[...], raw[Int(endLabels)..<(Int(endLabels) + (1 << 20))]))
        #expect(disk.passes == 1, "the end of the disk was read from the cache")
        // The start (partition tables, the first labels) stays cached from the measuring pass too: backwards,
        // across chunk boundaries, odd sizes, no new pass.
        let probes: [(UInt64, Int)] = [(1, 511), (16_383, 300_001), (131_072 + 7, 2 << 20), (1 << 20, 13), (UInt64(raw.count) - 4099, 4099)]
        for (offset, count) in probes {
            #expect(sameBytes(try disk.read(at: offset, count: count)[...], raw[Int(offset)..<(Int(offset) + count)]), "at \(offset), \(count) bytes")
        }
        #expect(disk.passes == 1, "the start and the end of the disk were read from the cache")
        #expect(throws: ContainerError.self) { try disk.read(at: disk.virtualSize - 1, count: 2) }

        // With a cache of four chunks: a pass to get to the middle, the look-behind kept on the way, and a new
        // pass only behind what the cache still holds.
        let (_, small) = try Self.open(packing, useDeclaredSize: false, cacheBytes: 256 << 10, lookbehind: 1 << 20)
        for (offset, passes) in [(40 << 20, 2), (40 << 20 - 100_000, 2), (20 << 20, 3), (20 << 20, 3), (1 << 20, 3)] as [(Int, Int)] {
            #expect(sameBytes(try small.read(at: UInt64(offset), count: 100_000)[...], raw[offset..<(offset + 100_000)]), "at \(offset)")
            #expect(small.passes == passes, "after reading at \(offset)")
        }
    }

    @Test("the uploader's reads (blocks a little out of order, from several threads) cost one pass",
          .oracle(.compressors), arguments: Packing.compressors)
    func uploadOrder(_ packing: Packing) throws {
        let (raw, disk) = try Self.open(packing)
        let blocks = (raw.count + Self.block - 1) / Self.block
        // As the upload driver does with eight workers: at most eight blocks in flight, read from several
        // threads in whatever order they come, so that requests arrive around the decoder, not in order.
        let mismatches = ManagedCounter()
        for batch in stride(from: 0, to: blocks, by: 8) {
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let b = batch + (7 - i) % 8
                guard b < blocks else { return }
                let start = b * Self.block
                let count = min(Self.block, raw.count - start)
                let got = (try? disk.read(at: UInt64(start), count: count)) ?? []
                if !sameBytes(got[...], raw[start..<(start + count)]) { mismatches.add() }
            }
        }
        #expect(mismatches.value == 0)
        #expect(disk.passes <= 2, "measuring, then one pass for the reads: \(disk.passes)")
    }

    @Test("the size zstd frames and xz indexes declare, concatenated files too; none from gzip or a zstd frame without its size",
          .oracle(.compressors))
    func declaredSizes() throws {
        try Oracle.require(.compressors)
        let raw = try Fixture.image("disk-gpt.img")
        let other = try Fixture.image("rpool-kvm.img")
        let rawSize = try FileReader(raw).size, otherSize = try FileReader(other).size
        let d = try TemporaryDirectory(prefix: "zlabel-declared")
        func packed(_ name: String, _ command: String) throws -> FileReader {
            let url = d.file(name)
            let r = try Run.run("sh", ["-c", command, "sh", raw.path, other.path, url.path])
            #expect(r.succeeded, "\(r)")
            return try FileReader(url)
        }
        let cases: [(String, String, StreamCompression, UInt64?)] = [
            ("a.zst", "zstd -q -c \"$1\" > \"$3\"", .zstd, rawSize),
            ("stdin.zst", "zstd -q -c < \"$1\" > \"$3\"", .zstd, nil),
            ("ab.zst", "{ zstd -q -c \"$1\"; zstd -q -c \"$2\"; } > \"$3\"", .zstd, rawSize + otherSize),
            ("a.xz", "xz -0 -T1 -c \"$1\" > \"$3\"", .xz, rawSize),
            ("ab.xz", "{ xz -0 -T2 -c \"$1\"; xz -0 -c \"$2\"; } > \"$3\"", .xz, rawSize + otherSize),
            ("a.gz", "gzip -1 -c \"$1\" > \"$3\"", .gzip, nil),
        ]
        for (name, command, compression, expected) in cases {
            let reader = try packed(name, command)
            #expect(StreamedDisk.declaredSize(reader, compression: compression) == expected, "\(name)")
            let disk = try StreamedDisk(reader, compression: compression)
            #expect(disk.isMeasured == (expected == nil), "\(name)")
            #expect(disk.virtualSize == (expected ?? rawSize), "\(name)")
            // The last bytes: the decoder runs to the end and finds the stream ending exactly there.
            let tail = try disk.read(at: disk.virtualSize - 4096, count: 4096)
            let source = expected == rawSize + otherSize ? other : raw
            #expect(tail == Array(try Data(contentsOf: source).suffix(4096)), "\(name)")
        }
        // A cut stream declares nothing (its frames or index do not add up) and is then refused by the measuring pass.
        let whole = try readAll(d.file("a.zst"))
        #expect(StreamedDisk.declaredSize(MemoryReader(Array(whole.prefix(whole.count - 100))), compression: .zstd) == nil)
        let xz = try readAll(d.file("a.xz"))
        #expect(StreamedDisk.declaredSize(MemoryReader(Array(xz.prefix(xz.count - 4))), compression: .xz) == nil)
    }

    @Test("a stream cut short is refused when opened, naming the compressed offset", .oracle(.compressors),
          arguments: Packing.compressors)
    func cutShort(_ packing: Packing) throws {
        try Oracle.require(.compressors)
        let whole = try readAll(try Converted.file("disk-gpt.img", packing))
        let cut = Array(whole[0..<(whole.count * 2 / 3)])
        let compression = try #require(StreamCompression(rawValue: packing.name))
        do throws(ContainerError) {
            _ = try StreamedDisk(MemoryReader(cut), compression: compression)
            Issue.record("a stream cut to \(cut.count) of \(whole.count) bytes was accepted")
        } catch {
            #expect(error.kind == .truncated || error.kind == .malformed, "\(error)")
            #expect(error.offset.map { $0 <= UInt64(cut.count) } == true, "\(error)")
            #expect(error.description.contains("\(packing.name) stream"), "\(error)")
        }
    }

    @Test("a second open of a measured file skips the measuring pass and sees the same disk", .oracle(.compressors))
    func measuredOnce() throws {
        try Oracle.require(.compressors)
        let url = try Converted.file("disk-gpt.img", .zstd)
        let key = "test-\(UUID())"
        let first = try StreamedDisk(try FileReader(url), compression: .zstd, measurementKey: key)
        // A reader that fails every read: the second open must not read at all before its first read.
        let second = try StreamedDisk(FailingReader(size: try FileReader(url).size), compression: .zstd, measurementKey: key)
        #expect(second.virtualSize == first.virtualSize)
        #expect(try second.dataExtents() == first.dataExtents())
        #expect(throws: ContainerError.self) { try second.read(at: 0, count: 512) }
    }
}

/// A reader whose every read fails.
struct FailingReader: ContainerReader {
    let size: UInt64
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        throw ContainerTestError("read at \(offset) refused")
    }
}

/// A counter the concurrent readers share.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

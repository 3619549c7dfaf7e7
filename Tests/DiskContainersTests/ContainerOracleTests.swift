import DiskContainers
import Foundation
import Testing
import TestSupport

/// qemu-img packs real fixture images into every container (and converts them back to raw); zlabel's reading
/// of the container must give the same bytes, and its data map must cover every non-zero byte.
@Suite("Containers against qemu-img")
struct ContainerOracleTests {
    struct Case: Sendable, CustomStringConvertible {
        let fixture: String
        let packing: Packing
        var description: String { "\(fixture) as \(packing)" }
    }

    static let cases: [Case] =
        Packing.allContainers.map { Case(fixture: "rpool-kvm.img", packing: $0) }
        + ["disk-gpt.img", "disk-vtoc.img"].flatMap { f in Packing.someContainers.map { Case(fixture: f, packing: $0) } }

    @Test("virtual bytes equal qemu-img's raw conversion and the raw image; the data map misses no non-zero byte",
          .oracle(.qemuImg), arguments: cases)
    func matchesQemu(_ c: Case) throws {
        try Oracle.require(.qemuImg)
        let packed = try Converted.file(c.fixture, c.packing)
        #expect(try DiskContainer.detect(FileReader(packed)) == c.packing.kind)
        let disk = try openDisk(packed)
        let oracle = try readAll(try Converted.rawBack(c.fixture, c.packing))
        let raw = try readAll(try Fixture.image(c.fixture))

        #expect(disk.virtualSize == UInt64(oracle.count))
        let bytes = try disk.read(at: 0, count: Int(disk.virtualSize))
        // (Comparisons outside #expect: it would print whole images.)
        let sameAsOracle = sameBytes(bytes[...], oracle[...])
        #expect(sameAsOracle, "virtual bytes differ from qemu-img convert -O raw")
        // qemu-img may round a VHD up to its CHS geometry: the raw image, then zeros.
        let sameAsRaw = bytes.count >= raw.count && sameBytes(bytes[..<raw.count], raw[...])
        let tailZero = bytes.count < raw.count || firstNonZero(bytes, raw.count..<bytes.count) == nil
        #expect(sameAsRaw, "virtual bytes differ from the raw image")
        #expect(tailZero, "bytes past the raw image's size are not zero")

        let extents = try disk.dataExtents()
        var previous: UInt64 = 0
        for (i, e) in extents.enumerated() {
            #expect(!e.isEmpty && e.upperBound <= disk.virtualSize)
            #expect(i == 0 || e.lowerBound > previous, "extents are sorted, disjoint and not adjacent")
            previous = e.upperBound
        }
        // Everything outside the data map is zero, so no non-zero 512 KiB block (or byte) is missed.
        var pos: UInt64 = 0
        for gap in extents.map({ $0.lowerBound }) + [disk.virtualSize] {
            if gap > pos, let at = firstNonZero(bytes, Int(pos)..<Int(gap)) {
                Issue.record("non-zero byte at \(at) (block \(at / (512 * 1024)) of 512 KiB) lies outside the data map")
                break
            }
            if let e = extents.first(where: { $0.lowerBound == gap }) { pos = e.upperBound }
        }
        // A sparse container with small clusters maps less than the disk (the fixtures are mostly empty);
        // qemu-img's VHDX blocks are 32 MiB, and fixed VHD and flat VMDK are all data.
        if ![Packing.vhdFixed, .vmdkFlat, .vhdxFixed, .vhdxDynamic].contains(c.packing) {
            #expect(extents.reduce(0) { $0 + $1.count } < disk.virtualSize / 2)
        }
        #expect(disk.format.description.isEmpty == false)
    }

    @Test("reads at odd offsets and lengths equal the raw bytes", .oracle(.qemuImg),
          arguments: [Packing.qcow2Compressed, .qcow2ExtendedL2, .vmdkStream, .vhdDynamic, .vhdxDynamic])
    func unalignedReads(_ packing: Packing) throws {
        try Oracle.require(.qemuImg)
        let disk = try openDisk(try Converted.file("rpool-kvm.img", packing))
        let raw = try readAll(try Fixture.image("rpool-kvm.img"))
        // Label 0's neighbourhood, a range across cluster/grain/block boundaries, and the last bytes.
        let probes: [(UInt64, Int)] = [(1, 511), (16_383, 300_001), (1 << 20 - 7, 2 << 20 + 13), (UInt64(raw.count) - 4099, 4099)]
        for (offset, count) in probes {
            let got = try disk.read(at: offset, count: count)
            let same = sameBytes(got[...], raw[Int(offset)..<(Int(offset) + count)])
            #expect(same, "at \(offset), \(count) bytes")
        }
        #expect(throws: ContainerError.self) { try disk.read(at: disk.virtualSize - 1, count: 2) }
    }

    @Test("a compressed raw image streams to the raw bytes; the non-zero blocks are exactly the raw's",
          .oracle(.compressors), arguments: Packing.compressors)
    func compressedStream(_ packing: Packing) throws {
        try Oracle.require(.compressors)
        let packed = try Converted.file("rpool-kvm.img", packing)
        let reader = try FileReader(packed)
        #expect(try DiskContainer.detect(reader) == packing.kind)
        guard case .stream(let compression) = try DiskContainer.open(reader) else {
            Issue.record("not opened as a stream")
            return
        }
        let raw = try readAll(try Fixture.image("rpool-kvm.img"))
        let block = 512 * 1024
        var rebuilt = [UInt8](repeating: 0, count: raw.count)
        var seen: [UInt64] = []
        let stream = try CompressedRawStream(reader, compression: compression, chunk: 64 * 1024)
        let size = try stream.forEachNonZeroBlock(blockSize: block) { offset, bytes in
            seen.append(offset)
            rebuilt.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: Int(offset)).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        }
        #expect(size == UInt64(raw.count))
        #expect(stream.inputPosition == reader.size)
        let same = sameBytes(rebuilt[...], raw[...])
        #expect(same, "decompressed bytes differ from the raw image")
        let expected = stride(from: 0, to: raw.count, by: block).filter { firstNonZero(raw, $0..<min($0 + block, raw.count)) != nil }
        let sameBlocks = seen == expected.map(UInt64.init)
        #expect(sameBlocks, "non-zero blocks: \(seen.count) yielded, \(expected.count) expected")
        #expect(!seen.isEmpty && seen.count < raw.count / block)
    }

    @Test("a raw image is detected as raw") func rawIsRaw() throws {
        for name in ["rpool-kvm.img", "disk-gpt.img", "disk-vtoc.img"] {
            #expect(try DiskContainer.detect(FileReader(try Fixture.image(name))) == .raw, "\(name)")
        }
    }
}

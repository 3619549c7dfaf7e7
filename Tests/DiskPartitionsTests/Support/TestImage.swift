import DiskPartitions
import Synchronization

/// Records every read a parser makes, to prove it reads only table sectors.
final class ReadLog: Sendable {
    private let reads = Mutex<[(offset: UInt64, count: Int)]>([])

    func record(_ offset: UInt64, _ count: Int) {
        reads.withLock { $0.append((offset, count)) }
    }

    var totalBytes: Int { reads.withLock { $0.reduce(0) { $0 + $1.count } } }
    var count: Int { reads.withLock { $0.count } }
    var offsets: [UInt64] { reads.withLock { $0.map(\.offset) } }
}

/// A sparse in-memory disk: a size plus the byte runs written into it; everything else reads as zero.
struct TestDisk {
    var size: UInt64
    private(set) var runs: [(offset: UInt64, bytes: [UInt8])] = []

    init(size: UInt64) {
        self.size = size
    }

    mutating func write(_ bytes: [UInt8], at offset: UInt64) {
        runs.append((offset, bytes))
    }

    /// Flips bits of one byte (after all writes so far).
    mutating func corrupt(at offset: UInt64, xor mask: UInt8 = 0xFF) {
        let current = read(at: offset, count: 1)[0]
        write([current ^ mask], at: offset)
    }

    func read(at offset: UInt64, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let end = offset + UInt64(count)
        for run in runs {
            let runEnd = run.offset + UInt64(run.bytes.count)
            let lo = max(offset, run.offset)
            let hi = min(end, runEnd)
            guard lo < hi else { continue }
            let source = Int(lo - run.offset)..<Int(hi - run.offset)
            out.replaceSubrange(Int(lo - offset)..<Int(hi - offset), with: run.bytes[source])
        }
        return out
    }

    func source(log: ReadLog? = nil) -> SparseSource { SparseSource(disk: self, log: log) }

    /// The whole image as one array (small images only).
    func flattened() -> [UInt8] { read(at: 0, count: Int(size)) }
}

struct SparseSource: ByteSource {
    let disk: TestDisk
    let log: ReadLog?

    var size: UInt64 { disk.size }

    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        log?.record(offset, count)
        guard offset <= size, UInt64(count) <= size - offset else {
            throw PartitionTableError(.outOfBounds, at: offset, "test source read past end")
        }
        return disk.read(at: offset, count: count)
    }
}

extension TestDisk: @unchecked Sendable {}

// MARK: - Table builders (written from the format descriptions, independently of the parser)

func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }
func le64(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8((value >> (8 * UInt64($0))) & 0xFF) } }

struct MBRPart {
    var status: UInt8 = 0
    var type: UInt8
    var first: UInt32
    var count: UInt32
}

func mbrSector(_ parts: [MBRPart?], diskSignature: UInt32 = 0x1234_5678) -> [UInt8] {
    var sector = [UInt8](repeating: 0, count: 512)
    sector.replaceSubrange(440..<444, with: le32(diskSignature))
    for (slot, part) in parts.enumerated() {
        guard let part else { continue }
        let at = 446 + 16 * slot
        sector[at] = part.status
        sector[at + 4] = part.type
        sector.replaceSubrange((at + 8)..<(at + 12), with: le32(part.first))
        sector.replaceSubrange((at + 12)..<(at + 16), with: le32(part.count))
    }
    sector[510] = 0x55
    sector[511] = 0xAA
    return sector
}

struct GPTPart {
    var slot: Int
    var type: GUID
    var first: UInt64
    var last: UInt64
    var name: String = ""
}

/// Writes a protective MBR, primary and backup GPT, like `make-disk-image.py` does.
func writeGPT(
    into disk: inout TestDisk, sectorSize: Int = 512, parts: [GPTPart], entryCount: UInt32 = 128,
    entrySize: UInt32 = 128, tweakHeader: ((inout [UInt8]) -> Void)? = nil
) {
    let ss = UInt64(sectorSize)
    let sectors = disk.size / ss
    let arraySectors = (UInt64(entryCount) * UInt64(entrySize) + ss - 1) / ss
    var array = [UInt8](repeating: 0, count: Int(entryCount) * Int(entrySize))
    for part in parts {
        var entry = part.type.bytes
        entry += (0..<16).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ part.slot) }
        entry += le64(part.first) + le64(part.last) + le64(0)
        var name = [UInt8](repeating: 0, count: 72)
        for (index, unit) in part.name.utf16.prefix(36).enumerated() {
            name[2 * index] = UInt8(unit & 0xFF)
            name[2 * index + 1] = UInt8(unit >> 8)
        }
        entry += name
        array.replaceSubrange((part.slot * Int(entrySize))..<(part.slot * Int(entrySize) + 128), with: entry)
    }
    let arrayCRC = gptCRC32(array)
    let firstUsable = 2 + arraySectors
    let lastUsable = sectors - 2 - arraySectors
    func header(my: UInt64, alternate: UInt64, entriesLBA: UInt64) -> [UInt8] {
        var h = Array("EFI PART".utf8) + le32(0x0001_0000) + le32(92) + le32(0) + le32(0)
        h += le64(my) + le64(alternate) + le64(firstUsable) + le64(lastUsable)
        h += GUID("11111111-2222-3333-4444-555555555555")!.bytes
        h += le64(entriesLBA) + le32(entryCount) + le32(entrySize) + le32(arrayCRC)
        tweakHeader?(&h)
        h.replaceSubrange(16..<20, with: le32(gptCRC32(h)))
        return h + [UInt8](repeating: 0, count: sectorSize - 92)
    }
    let protective = min(sectors - 1, UInt64(UInt32.max))
    disk.write(mbrSector([MBRPart(type: 0xEE, first: 1, count: UInt32(protective))], diskSignature: 0), at: 0)
    disk.write(header(my: 1, alternate: sectors - 1, entriesLBA: 2), at: ss)
    disk.write(array, at: 2 * ss)
    let backupArrayLBA = sectors - 1 - arraySectors
    disk.write(array, at: backupArrayLBA * ss)
    disk.write(header(my: sectors - 1, alternate: 1, entriesLBA: backupArrayLBA), at: (sectors - 1) * ss)
}

struct SMISlice {
    var tag: UInt16
    var flag: UInt16 = 0
    var start: UInt32
    var size: UInt32
}

/// A VTOC16 `dk_label` with a correct XOR checksum unless told otherwise.
func smiLabel(_ slices: [Int: SMISlice], sanity: UInt32 = 0x600D_DEEE, nparts: UInt16 = 16, fixChecksum: Bool = true)
    -> [UInt8]
{
    var label = [UInt8](repeating: 0, count: 512)
    label.replaceSubrange(12..<16, with: le32(sanity))
    label.replaceSubrange(16..<20, with: le32(1))
    label.replaceSubrange(28..<30, with: le16(512))
    label.replaceSubrange(30..<32, with: le16(nparts))
    for (index, slice) in slices {
        let at = 72 + 12 * index
        label.replaceSubrange(at..<(at + 2), with: le16(slice.tag))
        label.replaceSubrange((at + 2)..<(at + 4), with: le16(slice.flag))
        label.replaceSubrange((at + 4)..<(at + 8), with: le32(slice.start))
        label.replaceSubrange((at + 8)..<(at + 12), with: le32(slice.size))
    }
    label.replaceSubrange(508..<510, with: le16(0xDABE))
    if fixChecksum {
        var xor: UInt16 = 0
        for word in stride(from: 0, to: 510, by: 2) { xor ^= UInt16(label[word]) | UInt16(label[word + 1]) << 8 }
        label.replaceSubrange(510..<512, with: le16(xor))
    }
    return label
}

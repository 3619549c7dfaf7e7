// Fuzzes partition-table detection (MBR and EBR chains, GPT with backup recovery, SMI/VTOC).
//
// Byte 0 of the input picks how the rest becomes a disk:
//   even  the rest *is* the disk, parsed by the in-memory entry `DiskLayout.parse(bytes:)`;
//   odd   the rest describes a sparse disk, so that seeds taken from real partitioned images keep their real
//         geometry (a GPT backup header in the last sector of a 64 MiB disk, an SMI label a megabyte in):
//           bytes 0-7  disk size (little-endian; at most 2 TiB)
//           then extents, each: offset (8 bytes, little-endian), length (2 bytes), that many bytes;
//           extents outside the disk are clipped, everything else reads as zero.
//         This form goes through `DiskLayout.detect(in:)` with a `ByteSource` of our own.
// Both must return a layout or throw `PartitionTableError`; a layout must be self-consistent.

import FuzzSupport
import ZLabel

struct SparseDisk: ByteSource {
    let size: UInt64
    /// Non-overlapping after construction is not required: later extents win, as they are applied in order.
    let extents: [(offset: UInt64, bytes: [UInt8])]

    init(_ reader: inout FuzzReader) {
        size = min(reader.u64(), 1 << 41)
        var extents: [(UInt64, [UInt8])] = []
        while reader.remaining > 0 {
            let offset = reader.u64()
            let length = Int(reader.u16())
            extents.append((offset, Array(reader.take(length))))
        }
        self.extents = extents
    }

    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw PartitionTableError(.outOfBounds, at: offset, "read outside the fuzz disk")
        }
        var out = [UInt8](repeating: 0, count: count)
        let end = offset + UInt64(count)
        for (start, bytes) in extents where !bytes.isEmpty {
            let (stop, overflow) = start.addingReportingOverflow(UInt64(bytes.count))
            let extentEnd = overflow ? UInt64.max : stop
            let lo = max(start, offset), hi = min(extentEnd, end)
            guard lo < hi else { continue }
            for i in lo..<hi { out[Int(i - offset)] = bytes[Int(i - start)] }
        }
        return out
    }
}

func fuzzOne(_ input: [UInt8]) {
    guard let mode = input.first else { return }
    let layout: DiskLayout
    let diskSize: UInt64
    if mode & 1 == 0 {
        let disk = Array(input.dropFirst())
        diskSize = UInt64(disk.count)
        do { layout = try DiskLayout.parse(bytes: disk) } catch { return }
    } else {
        var reader = FuzzReader(Array(input.dropFirst()))
        let disk = SparseDisk(&reader)
        diskSize = disk.size
        do { layout = try DiskLayout.detect(in: disk) } catch { return }
    }
    fuzzRequire(layout.diskSize == diskSize, "layout of a \(diskSize)-byte disk says \(layout.diskSize)")
    for region in layout.regions {
        fuzzRequire(region.start <= region.end && region.end <= diskSize,
                    "region \(region.name) (\(region.start)+\(region.size)) is not inside the \(diskSize)-byte disk")
        _ = region.description
    }
    for candidate in layout.candidates { _ = layout.region(named: candidate.name) }
}

fuzzMain { data, size in
    fuzzOne(fuzzBytes(data, size))
    return 0
}

// What the container fuzz targets share: the sparse input format and the checks on an opened disk.
//
// Input format (little-endian), so that a seed of a real container stays small though its file is mostly zeros:
//   bytes 0-3    the container file's size (taken modulo 64 MiB + 1)
//   then pieces  u32 offset, u16 length, `length` bytes: placed at `offset` (later pieces win; parts past the
//                size are dropped); everything not covered reads as zeros.
// `make-container-seeds.py` writes real qemu-img and compressor output in this format.

public import DiskContainers
public import FuzzSupport

/// A container file made of a few pieces over zeros.
public struct SparseFile: ContainerReader {
    public let size: UInt64
    let pieces: [(offset: UInt64, bytes: [UInt8])]

    public init(_ input: [UInt8]) {
        var r = FuzzReader(input)
        size = UInt64(r.u32()) % ((64 << 20) + 1)
        var pieces: [(UInt64, [UInt8])] = []
        while r.remaining >= 6 {
            let offset = UInt64(r.u32())
            let length = Int(r.u16())
            let bytes = Array(r.take(length))
            if offset < size { pieces.append((offset, Array(bytes.prefix(Int(min(UInt64(bytes.count), size - offset)))))) }
        }
        self.pieces = pieces
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !overflow, end <= size else { throw ContainerError(.truncated, "fuzz file", at: offset, "past the end") }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        for p in pieces {
            let lo = max(p.offset, offset)
            let hi = min(p.offset + UInt64(p.bytes.count), end)
            guard lo < hi else { continue }
            for i in lo..<hi { buffer[Int(i - offset)] = p.bytes[Int(i - p.offset)] }
        }
    }
}

/// Checks an opened disk: its data map is sorted, disjoint and inside the disk; reads are repeatable; a range
/// outside the map reads as zeros. Work is bounded so that a huge virtual size cannot make a hang.
public func checkDisk(_ disk: any VirtualDisk) {
    let size = disk.virtualSize
    _ = disk.format.description
    var extents: [Range<UInt64>] = []
    // Mapping walks every cluster of an allocated table; bound it as a real caller's time would be.
    if size <= 1 << 28 {
        do { extents = try disk.dataExtents() } catch { return }
        var previous: UInt64?
        for e in extents {
            fuzzRequire(!e.isEmpty && e.upperBound <= size, "extent \(e) outside a \(size)-byte disk")
            if let previous { fuzzRequire(e.lowerBound > previous, "extents not sorted, disjoint, non-adjacent") }
            previous = e.upperBound
        }
    }
    var probes: [Range<UInt64>] = [0..<min(size, 65536)]
    for e in extents.prefix(4) { probes.append(e.lowerBound..<min(e.upperBound, e.lowerBound + 65536)) }
    var pos: UInt64 = 0
    for e in extents.prefix(4) {
        if e.lowerBound > pos { probes.append(pos..<min(e.lowerBound, pos + 65536)) }
        pos = e.upperBound
    }
    if size > 4096 { probes.append((size - 4096)..<size) }
    for probe in probes where !probe.isEmpty {
        guard let a = try? disk.read(at: probe.lowerBound, count: probe.count) else { continue }
        let b = try? disk.read(at: probe.lowerBound, count: probe.count)
        fuzzRequire(b == a, "two reads of \(probe) differ")
        if size <= 1 << 28, !extents.contains(where: { $0.overlaps(probe) }) {
            fuzzRequire(a.allSatisfy { $0 == 0 }, "bytes outside the data map at \(probe) are not zero")
        }
    }
    // A read past the end must throw.
    fuzzRequire((try? disk.read(at: size, count: 1)) == nil, "a read past the end succeeded")
}

/// Checks the in-place write mapping of a disk stored in `file` alone: for the start of the disk and of its
/// first data extents, a mapping that is not refused covers the range exactly, in order, and names file bytes
/// inside the file that hold exactly the virtual bytes.
public func checkInPlace(_ disk: any VirtualDisk, in file: SparseFile) {
    guard !(disk is VMDKFlatDisk), let writable = try? DiskContainer.writableInPlace(disk) else { return }
    let size = disk.virtualSize
    var probes: [Range<UInt64>] = [0..<min(size, 65536)]
    if size <= 1 << 28, let extents = try? disk.dataExtents() {
        for e in extents.prefix(4) { probes.append(e.lowerBound..<min(e.upperBound, e.lowerBound + 65536)) }
    }
    for probe in probes where !probe.isEmpty {
        guard let ranges = try? writable.hostRanges(forWriting: probe) else { continue }
        fuzzRequire(ranges.first?.virtual.lowerBound == probe.lowerBound && ranges.last?.virtual.upperBound == probe.upperBound,
                    "host ranges do not cover \(probe)")
        var pos = probe.lowerBound
        for r in ranges {
            fuzzRequire(r.file == 0 && r.virtual.lowerBound == pos && !r.virtual.isEmpty, "host range \(r) out of order")
            pos = r.virtual.upperBound
            let (end, overflow) = r.offset.addingReportingOverflow(UInt64(r.virtual.count))
            fuzzRequire(!overflow && end <= file.size, "host range \(r) passes the end of the file")
            var host = [UInt8](repeating: 0, count: r.virtual.count)
            let hostRead: Void? = host.withUnsafeMutableBytes { try? file.read(into: $0, at: r.offset) }
            guard hostRead != nil, let virtual = try? disk.read(at: r.virtual.lowerBound, count: r.virtual.count) else { continue }
            fuzzRequire(host == virtual, "file bytes at \(r.offset) are not the virtual bytes \(r.virtual)")
        }
    }
}

/// Runs `open` on the input's sparse file and checks the disk it returns; errors are fine.
public func fuzzDisk(_ input: [UInt8], _ open: (SparseFile) throws -> any VirtualDisk) {
    let file = SparseFile(input)
    guard let disk = try? open(file) else { return }
    checkDisk(disk)
    checkInPlace(disk, in: file)
}

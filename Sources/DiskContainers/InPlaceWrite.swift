// Writing virtual bytes in place: where in the container's files they live, or why they cannot be written there.
//
// A write in place overwrites data bytes the container already stores, and nothing else: no table, bitmap,
// refcount or header changes, so the container's metadata stays exactly as it was and every reader (QEMU,
// VMware, Hyper-V, this module) sees the new bytes through the same mapping. A range is writable in place
// when every byte of it is stored plainly in a file:
//   raw, VHD fixed      always (the file is the disk)
//   VMDK flat extents   a FLAT or VMFS extent opened RW (a ZERO extent stores nothing)
//   qcow2 v2, v3        an allocated, uncompressed data cluster (subcluster allocated, with extended L2) whose
//                       L2 entry has QCOW_OFLAG_COPIED (refcount exactly one), in an image with no internal
//                       snapshots, not marked dirty, and with no autoclear feature (persistent dirty bitmaps
//                       would not record the write)
//   VMDK monolithicSparse  an allocated grain (not a zeroed-grain entry), in an extent closed cleanly
//   VHD dynamic         an allocated block whose sector bitmap marks every sector of the range present
// Never: VMDK streamOptimized (compressed grains), VHDX (its header's DataWriteGuid must change before the
// first write, a header update this module does not make), compressed raw streams.

/// A run of virtual bytes and where a file holds them.
public struct HostRange: Sendable, Hashable {
    /// Which file: 0 is the container file; for a ``VMDKFlatDisk``, the extent's index in its descriptor.
    public var file: Int
    /// Byte offset in that file of the first byte of ``virtual``.
    public var offset: UInt64
    /// The virtual bytes stored there.
    public var virtual: Range<UInt64>

    public init(file: Int, offset: UInt64, virtual: Range<UInt64>) {
        self.file = file
        self.offset = offset
        self.virtual = virtual
    }
}

/// Why virtual bytes cannot be written in place, at which virtual offset, in a sentence.
public struct InPlaceWriteRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// The container format is never written in place (VMDK streamOptimized, VHDX).
        case format
        /// The container's header says it is in a state a plain data write must not touch (qcow2 dirty or with
        /// autoclear features, VMDK unclean shutdown).
        case state
        /// qcow2 internal snapshots, or a cluster whose refcount is not exactly one: it may be shared.
        case shared
        /// The bytes are not stored in the file: an unallocated cluster, grain or block, a zero cluster, a VHD
        /// sector its bitmap marks absent, a ZERO extent. Storing them would change the container's tables.
        case notAllocated
        /// The bytes are stored compressed.
        case compressed
        /// The extent is not writable (a VMDK extent marked RDONLY or NOACCESS).
        case readOnly
        /// The container's tables could not be read.
        case unreadable
    }

    public var reason: Reason
    /// The first virtual byte concerned, when there is one.
    public var virtualOffset: UInt64?
    public var message: String

    public init(_ reason: Reason, at virtualOffset: UInt64?, _ message: String) {
        self.reason = reason
        self.virtualOffset = virtualOffset
        self.message = message
    }

    init(_ error: ContainerError) {
        self.init(.unreadable, at: nil, error.description)
    }

    public var description: String {
        message + (virtualOffset.map { " (virtual byte \($0))" } ?? "")
    }
}

/// A virtual disk some of whose bytes can be overwritten in place in its files.
public protocol InPlaceWritable: VirtualDisk {
    /// Throws unless the container as a whole allows writes in place (its header state, snapshots, format).
    func checkWritableInPlace() throws(InPlaceWriteRefusal)

    /// The file ranges holding the virtual bytes `range`, in virtual order and covering it exactly.
    ///
    /// - Throws: ``InPlaceWriteRefusal`` unless every byte of `range` is stored plainly in a file, so that
    ///   overwriting those file bytes changes exactly those virtual bytes and no metadata needs to change.
    func hostRanges(forWriting range: Range<UInt64>) throws(InPlaceWriteRefusal) -> [HostRange]
}

extension DiskContainer {
    /// `disk` as a disk writable in place, after the container-wide checks.
    ///
    /// - Throws: ``InPlaceWriteRefusal`` when the format is never written in place, or the container's state
    ///   forbids it.
    public static func writableInPlace(_ disk: any VirtualDisk) throws(InPlaceWriteRefusal) -> any InPlaceWritable {
        guard let writable = disk as? any InPlaceWritable else {
            let why: String
            switch disk.format {
            case .vhdx: why = "a VHDX file's header must get a new DataWriteGuid before its data is changed, which zlabel does not do"
            default: why = "zlabel does not write into this container"
            }
            throw InPlaceWriteRefusal(.format, at: nil, "a \(disk.format) image is not written in place: \(why)")
        }
        try writable.checkWritableInPlace()
        return writable
    }
}

extension InPlaceWritable {
    /// Checks a write request against the virtual size.
    func checkWriteRange(_ range: Range<UInt64>) throws(InPlaceWriteRefusal) {
        guard range.upperBound <= virtualSize else {
            throw InPlaceWriteRefusal(.unreadable, at: range.lowerBound, "a write of \(range.count) bytes passes the end of the \(virtualSize)-byte virtual disk")
        }
    }
}

/// Appends `host` to `out`, merging it with the last range when both are contiguous in file and disk.
func appendHost(_ out: inout [HostRange], _ host: HostRange) {
    if let last = out.last, last.file == host.file, last.virtual.upperBound == host.virtual.lowerBound,
        last.offset + UInt64(last.virtual.count) == host.offset
    {
        out[out.count - 1].virtual = last.virtual.lowerBound..<host.virtual.upperBound
    } else {
        out.append(host)
    }
}

extension RawDisk: InPlaceWritable {
    public func checkWritableInPlace() throws(InPlaceWriteRefusal) {}
    public func hostRanges(forWriting range: Range<UInt64>) throws(InPlaceWriteRefusal) -> [HostRange] {
        try checkWriteRange(range)
        return range.isEmpty ? [] : [HostRange(file: 0, offset: range.lowerBound, virtual: range)]
    }
}

extension QCOW2Disk: InPlaceWritable {
    public func checkWritableInPlace() throws(InPlaceWriteRefusal) {
        if snapshotCount != 0 {
            throw InPlaceWriteRefusal(.shared, at: nil, "the qcow2 image has \(snapshotCount) internal snapshot(s), which may share its clusters")
        }
        if dirty {
            throw InPlaceWriteRefusal(.state, at: nil, "the qcow2 image is marked dirty (not closed cleanly; its refcounts may be out of date): run qemu-img check -r all first")
        }
        if autoclearFeatures != 0 {
            throw InPlaceWriteRefusal(.state, at: nil, "the qcow2 image has autoclear features 0x\(String(autoclearFeatures, radix: 16)) (persistent dirty bitmaps) that a write by zlabel would leave stale")
        }
    }

    public func hostRanges(forWriting range: Range<UInt64>) throws(InPlaceWriteRefusal) -> [HostRange] {
        try checkWritableInPlace()
        try checkWriteRange(range)
        var out: [HostRange] = []
        var pos = range.lowerBound
        while pos < range.upperBound {
            let cluster = pos / clusterSize
            let within = pos % clusterSize
            let end = min(range.upperBound, (cluster + 1) * clusterSize)
            let found: Mapping
            let entry: UInt64
            do throws(ContainerError) {
                found = try mapping(cluster)
                entry = try l2Table(Int(cluster / l2Entries))?[Int(cluster % l2Entries) * (extendedL2 ? 2 : 1)] ?? 0
            } catch { throw InPlaceWriteRefusal(error) }
            switch found {
            case .unallocated:
                throw InPlaceWriteRefusal(.notAllocated, at: pos, "qcow2 cluster \(cluster) is not allocated")
            case .zero:
                throw InPlaceWriteRefusal(.notAllocated, at: pos, "qcow2 cluster \(cluster) is a zero cluster (no data stored)")
            case .compressed:
                throw InPlaceWriteRefusal(.compressed, at: pos, "qcow2 cluster \(cluster) is compressed")
            case .data(let host, let mask):
                guard entry & Self.copiedFlag != 0 else {
                    throw InPlaceWriteRefusal(.shared, at: pos, "qcow2 cluster \(cluster) has a refcount other than one (no COPIED flag): it may be shared")
                }
                if let mask {
                    let sub = clusterSize / 32
                    for s in (within / sub)...((end - 1 - cluster * clusterSize) / sub) where mask & (1 << UInt32(s)) == 0 {
                        throw InPlaceWriteRefusal(.notAllocated, at: max(pos, cluster * clusterSize + s * sub), "subcluster \(s) of qcow2 cluster \(cluster) is not allocated")
                    }
                }
                appendHost(&out, HostRange(file: 0, offset: host + within, virtual: pos..<end))
            }
            pos = end
        }
        return out
    }
}

extension VMDKSparseDisk: InPlaceWritable {
    public func checkWritableInPlace() throws(InPlaceWriteRefusal) {
        if streamOptimized {
            throw InPlaceWriteRefusal(.format, at: nil, "a VMDK streamOptimized image stores every grain compressed, so nothing can be written in place")
        }
        if uncleanShutdown {
            throw InPlaceWriteRefusal(.state, at: nil, "the VMDK extent's header says it was not closed cleanly (uncleanShutdown)")
        }
    }

    public func hostRanges(forWriting range: Range<UInt64>) throws(InPlaceWriteRefusal) -> [HostRange] {
        try checkWritableInPlace()
        try checkWriteRange(range)
        var out: [HostRange] = []
        var pos = range.lowerBound
        while pos < range.upperBound {
            let grain = pos / grainSize
            let within = pos % grainSize
            let end = min(range.upperBound, (grain + 1) * grainSize)
            let found: (sector: UInt64, entryAt: UInt64)?
            do throws(ContainerError) { found = try grainSector(grain) } catch { throw InPlaceWriteRefusal(error) }
            guard let found else {
                throw InPlaceWriteRefusal(.notAllocated, at: pos, "VMDK grain \(grain) is not allocated")
            }
            let host = found.sector * 512 + within
            do throws(ContainerError) {
                try reader.checkInside("VMDK grain \(grain) (grain table entry at byte \(found.entryAt))", at: host, count: end - pos)
            } catch { throw InPlaceWriteRefusal(error) }
            appendHost(&out, HostRange(file: 0, offset: host, virtual: pos..<end))
            pos = end
        }
        return out
    }
}

extension VHDDisk: InPlaceWritable {
    public func checkWritableInPlace() throws(InPlaceWriteRefusal) {}

    public func hostRanges(forWriting range: Range<UInt64>) throws(InPlaceWriteRefusal) -> [HostRange] {
        try checkWriteRange(range)
        guard !range.isEmpty else { return [] }
        guard dynamic else { return [HostRange(file: 0, offset: range.lowerBound, virtual: range)] }
        var out: [HostRange] = []
        var pos = range.lowerBound
        while pos < range.upperBound {
            let block = Int(pos / blockSize)
            let blockStart = UInt64(block) * blockSize
            let end = min(range.upperBound, blockStart + blockSize)
            guard bat[block] != Self.unallocated else {
                throw InPlaceWriteRefusal(.notAllocated, at: pos, "VHD block \(block) is not allocated")
            }
            let map: [UInt8]
            do throws(ContainerError) { map = try bitmap(block) } catch { throw InPlaceWriteRefusal(error) }
            for sector in ((pos - blockStart) / 512)...((end - 1 - blockStart) / 512)
            where map[Int(sector / 8)] & (0x80 >> UInt8(sector % 8)) == 0 {
                throw InPlaceWriteRefusal(.notAllocated, at: max(pos, blockStart + sector * 512), "sector \(sector) of VHD block \(block) is absent from the block's sector bitmap")
            }
            appendHost(&out, HostRange(file: 0, offset: UInt64(bat[block]) * 512 + bitmapBytes + (pos - blockStart), virtual: pos..<end))
            pos = end
        }
        return out
    }
}

extension VMDKFlatDisk: InPlaceWritable {
    public func checkWritableInPlace() throws(InPlaceWriteRefusal) {}

    public func hostRanges(forWriting range: Range<UInt64>) throws(InPlaceWriteRefusal) -> [HostRange] {
        try checkWriteRange(range)
        var out: [HostRange] = []
        var pos = range.lowerBound
        for (index, p) in pieces.enumerated() where pos < range.upperBound && p.range.contains(pos) {
            let end = min(range.upperBound, p.range.upperBound)
            guard p.reader != nil else {
                throw InPlaceWriteRefusal(.notAllocated, at: pos, "the bytes lie in a ZERO extent of the VMDK descriptor")
            }
            guard p.extent.access == "RW" else {
                throw InPlaceWriteRefusal(.readOnly, at: pos, "VMDK extent \"\(p.extent.fileName)\" is \(p.extent.access)")
            }
            appendHost(&out, HostRange(file: index, offset: p.extent.offset + (pos - p.range.lowerBound), virtual: pos..<end))
            pos = end
        }
        return out
    }
}

// qcow2 versions 2 and 3 (QEMU's docs/interop/qcow2.txt): big-endian header, a two-level cluster map
// (L1 table -> L2 tables -> host clusters), uncompressed, deflate- or zstd-compressed clusters, v3 zero
// clusters and extended L2 entries (32 subclusters per cluster).

import Synchronization

/// A qcow2 image read through its active L1 table (snapshots are ignored; they are not the disk's state).
public final class QCOW2Disk: VirtualDisk {
    public var format: ContainerFormat { .qcow2(version: version) }
    public let virtualSize: UInt64
    /// 2 or 3.
    public let version: UInt32
    /// Cluster size in bytes (512 B to 2 MiB).
    public let clusterSize: UInt64
    /// Whether L2 entries carry a subcluster bitmap (incompatible feature bit 4).
    public let extendedL2: Bool
    /// The algorithm of compressed clusters.
    public let compression: Compression
    /// Internal snapshots in the image (`nb_snapshots`): their clusters may be shared with the active image.
    public let snapshotCount: UInt32
    /// Incompatible feature bit 0: QEMU did not close the image cleanly, and refcounts may be out of date.
    public let dirty: Bool
    /// Autoclear feature bits (v3), e.g. bit 0 for persistent dirty bitmaps that record every write.
    public let autoclearFeatures: UInt64
    public enum Compression: Sendable { case deflate, zstd }

    let reader: any ContainerReader
    let clusterBits: UInt64
    let l1: [UInt64]
    let l1Offset: UInt64
    /// L2 entries per table.
    let l2Entries: UInt64
    /// Bytes that hold metadata no L2 table or data cluster may share: the header cluster and the L1 table.
    let reserved: [Range<UInt64>]
    private let cache = Mutex<[Int: [UInt64]]>([:])

    static let magic: UInt32 = 0x5146_49FB  // "QFI\xfb"
    static let offsetMask: UInt64 = 0x00FF_FFFF_FFFF_FE00
    static let compressedFlag: UInt64 = 1 << 62
    /// `QCOW_OFLAG_COPIED`: the cluster's refcount is exactly one.
    static let copiedFlag: UInt64 = 1 << 63

    public init(_ reader: any ContainerReader) throws(ContainerError) {
        self.reader = reader
        let h = "qcow2 header"
        let f = Fields(try reader.bytes(h, at: 0, count: 72))
        guard f.be32(0) == Self.magic else { throw ContainerError(.malformed, h, at: 0, "no qcow2 magic") }
        version = f.be32(4)
        guard version == 2 || version == 3 else {
            throw ContainerError(.unsupported, h, at: 4, "qcow2 version \(version) (2 and 3 are read)")
        }
        let backingOffset = f.be64(8)
        let backingLength = f.be32(16)
        if backingOffset != 0 {
            var name = ""
            if backingLength > 0, backingLength <= 1023,
                let b = try? reader.bytes("qcow2 backing file name", at: backingOffset, count: Int(backingLength))
            {
                name = " \"" + String(decoding: b, as: UTF8.self) + "\""
            }
            throw ContainerError(
                .unsupported, h, at: 8,
                "the image has a backing file\(name): only its differences are in this file; convert it to a standalone image first (qemu-img convert)")
        }
        clusterBits = UInt64(f.be32(20))
        guard (9...21).contains(clusterBits) else {
            throw ContainerError(.malformed, h, at: 20, "cluster_bits \(clusterBits) is outside 9...21")
        }
        clusterSize = 1 << clusterBits
        virtualSize = f.be64(24)
        guard virtualSize <= 1 << 62 else {
            throw ContainerError(.malformed, h, at: 24, "virtual size \(virtualSize) is impossible")
        }
        let crypt = f.be32(32)
        guard crypt == 0 else {
            throw ContainerError(.unsupported, h, at: 32, "the image is encrypted (method \(crypt)); zlabel reads only unencrypted images")
        }
        let l1Size = UInt64(f.be32(36))
        l1Offset = f.be64(40)
        snapshotCount = f.be32(60)
        var dirty = false
        var autoclear: UInt64 = 0
        var extended = false
        var compression = Compression.deflate
        var headerLength: UInt64 = 72
        if version == 3 {
            let v3 = Fields(try reader.bytes(h, at: 0, count: 104))
            let incompatible = v3.be64(72)
            dirty = incompatible & 1 != 0
            autoclear = v3.be64(88)
            headerLength = UInt64(v3.be32(100))
            guard headerLength >= 104, headerLength <= clusterSize else {
                throw ContainerError(.malformed, h, at: 100, "header_length \(headerLength) is outside 104...\(clusterSize)")
            }
            if incompatible & 0b10 != 0 {
                throw ContainerError(.unsupported, h, at: 72, "the image is marked corrupt by QEMU (incompatible feature bit 1); repair it with qemu-img check -r all")
            }
            if incompatible & 0b100 != 0 {
                throw ContainerError(.unsupported, h, at: 72, "the image keeps its data in an external data file (incompatible feature bit 2)")
            }
            if incompatible & 0b1000 != 0 {
                guard headerLength >= 105 else {
                    throw ContainerError(.malformed, h, at: 100, "compression type is set but the header has no compression_type field")
                }
                let type = try reader.bytes(h, at: 104, count: 1)[0]
                switch type {
                case 0: compression = .deflate
                case 1: compression = .zstd
                default: throw ContainerError(.unsupported, h, at: 104, "compression type \(type) (0 deflate and 1 zstd are read)")
                }
            }
            extended = incompatible & 0b1_0000 != 0
            let unknown = incompatible & ~UInt64(0b1_1111)
            guard unknown == 0 else {
                throw ContainerError(.unsupported, h, at: 72, "unknown incompatible features 0x\(String(unknown, radix: 16))")
            }
        }
        self.extendedL2 = extended
        self.dirty = dirty
        self.autoclearFeatures = autoclear
        self.compression = compression
        l2Entries = clusterSize / (extended ? 16 : 8)
        // Enough L1 entries to map the virtual size, no more than QEMU allows (32 MiB of table).
        let perL1 = clusterSize * l2Entries
        let needed = ceilDiv(virtualSize, perL1)
        guard l1Size >= needed else {
            throw ContainerError(.malformed, h, at: 36, "l1_size \(l1Size) maps less than the virtual size (needs \(needed))")
        }
        guard l1Size <= 4 << 20 else {
            throw ContainerError(.malformed, h, at: 36, "l1_size \(l1Size) is larger than QEMU allows (4 Mi entries)")
        }
        let usedL1 = Int(needed)
        guard l1Offset % clusterSize == 0, l1Offset != 0 || usedL1 == 0 else {
            throw ContainerError(.malformed, h, at: 40, "L1 table offset \(l1Offset) is not a non-zero multiple of the cluster size")
        }
        let l1Bytes = try reader.bytes("qcow2 L1 table", at: l1Offset, count: usedL1 * 8)
        let lf = Fields(l1Bytes)
        l1 = (0..<usedL1).map { lf.be64($0 * 8) }
        let l1End = add(l1Offset, l1Size * 8) ?? UInt64.max
        reserved = [0..<max(clusterSize, headerLength), l1Offset..<l1End]
        for (i, entry) in l1.enumerated() {
            let at = l1Offset + UInt64(i) * 8
            let l2 = entry & Self.offsetMask
            guard entry & ~(Self.offsetMask | 1 << 63) == 0 else {
                throw ContainerError(.malformed, "qcow2 L1 table", at: at, "L1 entry \(i) 0x\(String(entry, radix: 16)) has reserved bits set")
            }
            guard l2 != 0 else { continue }
            guard l2 % clusterSize == 0 else {
                throw ContainerError(.malformed, "qcow2 L1 table", at: at, "L1 entry \(i) points to \(l2), not a cluster boundary")
            }
            try reader.checkInside("qcow2 L2 table (L1 entry \(i) at byte \(at))", at: l2, count: clusterSize)
            if reserved.contains(where: { overlaps($0, l2..<(l2 + clusterSize)) }) {
                throw ContainerError(.loop, "qcow2 L1 table", at: at, "L1 entry \(i) points its L2 table at byte \(l2), into the header or the L1 table")
            }
        }
    }

    /// One cluster's mapping.
    enum Mapping {
        case unallocated
        case zero
        /// Host offset of an uncompressed cluster, with a subcluster mask for extended L2 (bit i: subcluster i
        /// holds data; nil: the whole cluster).
        case data(host: UInt64, subclusters: UInt32?)
        case compressed(host: UInt64, length: UInt64)
    }

    /// The L2 table behind L1 entry `index`, as raw 64-bit words (two per entry with extended L2).
    func l2Table(_ index: Int) throws(ContainerError) -> [UInt64]? {
        let l2 = l1[index] & Self.offsetMask
        if l2 == 0 { return nil }
        if let cached = cache.withLock({ $0[index] }) { return cached }
        let b = try reader.bytes("qcow2 L2 table", at: l2, count: Int(clusterSize))
        let f = Fields(b)
        let table = (0..<Int(clusterSize / 8)).map { f.be64($0 * 8) }
        cache.withLock { c in
            if c.count >= 256 { c.removeAll(keepingCapacity: true) }
            c[index] = table
        }
        return table
    }

    /// The mapping of virtual cluster `cluster`.
    func mapping(_ cluster: UInt64) throws(ContainerError) -> Mapping {
        let l1Index = Int(cluster / l2Entries)
        let l2Index = Int(cluster % l2Entries)
        guard let table = try l2Table(l1Index) else { return .unallocated }
        let l2Base = l1[l1Index] & Self.offsetMask
        let width = extendedL2 ? 2 : 1
        let entry = table[l2Index * width]
        let at = l2Base + UInt64(l2Index * width * 8)
        if entry & Self.compressedFlag != 0 {
            let shift = 62 - (clusterBits - 8)
            let host = entry & ((1 << shift) - 1)
            let sectors = ((entry >> shift) & ((1 << (clusterBits - 8)) - 1)) + 1
            let length = sectors * 512 - (host & 511)
            guard host >= reserved[0].upperBound, host < reader.size else {
                throw ContainerError(.malformed, "qcow2 L2 table", at: at, "compressed cluster \(cluster) at byte \(host) lies outside the file's data")
            }
            return .compressed(host: host, length: min(length, reader.size - host))
        }
        let host = entry & Self.offsetMask
        let bitmap: UInt64? = extendedL2 ? table[l2Index * 2 + 1] : nil
        if let bitmap {
            let allocated = UInt32(truncatingIfNeeded: bitmap)
            let zero = UInt32(truncatingIfNeeded: bitmap >> 32)
            guard allocated & zero == 0 else {
                throw ContainerError(.malformed, "qcow2 L2 table", at: at + 8, "cluster \(cluster): a subcluster is both allocated and zero")
            }
            if allocated == 0 { return zero == 0 ? .unallocated : .zero }
            guard host != 0 else {
                throw ContainerError(.malformed, "qcow2 L2 table", at: at, "cluster \(cluster) has allocated subclusters but no host offset")
            }
            try checkHost(host, cluster, at)
            return .data(host: host, subclusters: allocated)
        }
        if entry & 1 != 0 && version == 3 { return .zero }
        if host == 0 { return .unallocated }
        try checkHost(host, cluster, at)
        return .data(host: host, subclusters: nil)
    }

    private func checkHost(_ host: UInt64, _ cluster: UInt64, _ at: UInt64) throws(ContainerError) {
        guard host % clusterSize == 0 else {
            throw ContainerError(.malformed, "qcow2 L2 table", at: at, "cluster \(cluster) points to \(host), not a cluster boundary")
        }
        if reserved.contains(where: { overlaps($0, host..<(host + clusterSize)) }) {
            throw ContainerError(.loop, "qcow2 L2 table", at: at, "cluster \(cluster) points its data at byte \(host), into the header or the L1 table")
        }
        // The last cluster of an image may be cut at the end of the virtual disk; demand what is read.
        let start = cluster * clusterSize
        let need = min(clusterSize, virtualSize - start)
        try reader.checkInside("qcow2 data cluster \(cluster) (L2 entry at byte \(at))", at: host, count: need)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        var done = 0
        var scratch: [UInt8] = []
        while done < buffer.count {
            let pos = offset + UInt64(done)
            let cluster = pos / clusterSize
            let within = pos % clusterSize
            let n = Int(min(UInt64(buffer.count - done), clusterSize - within))
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            switch try mapping(cluster) {
            case .unallocated, .zero:
                out.initializeMemory(as: UInt8.self, repeating: 0)
            case .data(let host, nil):
                try reader.fill(out, "qcow2 data cluster \(cluster)", at: host + within)
            case .data(let host, let mask?):
                // Subcluster by subcluster: allocated ones from the file, the others zero.
                let sub = clusterSize / 32
                var i = 0
                while i < n {
                    let w = within + UInt64(i)
                    let s = w / sub
                    let m = Int(min(UInt64(n - i), sub - w % sub))
                    let part = UnsafeMutableRawBufferPointer(rebasing: out[i..<(i + m)])
                    if mask & (1 << UInt32(s)) != 0 {
                        try reader.fill(part, "qcow2 data cluster \(cluster)", at: host + w)
                    } else {
                        part.initializeMemory(as: UInt8.self, repeating: 0)
                    }
                    i += m
                }
            case .compressed(let host, let length):
                if scratch.count != Int(clusterSize) { scratch = [UInt8](repeating: 0, count: Int(clusterSize)) }
                let input = try reader.bytes("qcow2 compressed cluster \(cluster)", at: host, count: Int(length))
                try scratch.withMutableBytes { (s) throws(ContainerError) in
                    switch compression {
                    case .deflate:
                        try Inflate.exact(input, into: s, wrapper: .raw, structure: "qcow2 compressed cluster \(cluster)", at: host)
                    case .zstd:
                        try Unzstd.exact(input, into: s, structure: "qcow2 compressed cluster \(cluster)", at: host)
                    }
                }
                scratch.withUnsafeBytes { s in
                    out.copyMemory(from: UnsafeRawBufferPointer(rebasing: s[Int(within)..<(Int(within) + n)]))
                }
            }
            done += n
        }
    }

    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        let clusters = ceilDiv(virtualSize, clusterSize)
        for (l1Index, entry) in l1.enumerated() where entry & Self.offsetMask != 0 {
            let first = UInt64(l1Index) * l2Entries
            let last = min(first + l2Entries, clusters)
            guard first < last else { continue }
            for cluster in first..<last {
                let start = cluster * clusterSize
                let end = min(start + clusterSize, virtualSize)
                switch try mapping(cluster) {
                case .unallocated, .zero: continue
                case .data(_, nil), .compressed: appendExtent(&out, start..<end)
                case .data(_, let mask?):
                    let sub = clusterSize / 32
                    for s in 0..<UInt64(32) where mask & (1 << UInt32(s)) != 0 {
                        appendExtent(&out, min(start + s * sub, end)..<min(start + (s + 1) * sub, end))
                    }
                }
            }
        }
        return out
    }
}

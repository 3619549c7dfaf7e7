// VMDK (VMware's Virtual Disk Format 5.0 specification): hosted sparse extents, little-endian, in 512-byte
// sectors: a header, a grain directory (GD) of grain-table (GT) sector numbers, grain tables of grain sector
// numbers. monolithicSparse keeps its descriptor inside the extent; streamOptimized compresses each grain
// (deflate behind a 12-byte grain marker) and writes its GD at the end, behind a footer that repeats the
// header with the real GD offset. monolithicFlat is a text descriptor naming a raw extent file.

import Synchronization

/// A hosted sparse VMDK extent that is the whole disk: monolithicSparse or streamOptimized.
public final class VMDKSparseDisk: VirtualDisk {
    public var format: ContainerFormat { streamOptimized ? .vmdkStreamOptimized : .vmdkMonolithicSparse }
    public let virtualSize: UInt64
    /// Whether grains are compressed (streamOptimized).
    public let streamOptimized: Bool
    /// Grain size in bytes.
    public let grainSize: UInt64
    /// The embedded descriptor, when the extent has one.
    public let descriptor: VMDKDescriptor?
    /// The header's `uncleanShutdown` byte: the extent was not closed cleanly.
    public let uncleanShutdown: Bool

    let reader: any ContainerReader
    let gtEntries: UInt64
    let gd: [UInt32]
    let gdOffset: UInt64
    let reserved: [Range<UInt64>]
    private let cache = Mutex<[Int: [UInt32]]>([:])

    static let magic: UInt32 = 0x564D_444B  // "KDMV" little-endian
    static let gdAtEnd: UInt64 = .max
    static let zeroedGrain: UInt32 = 1

    struct Header {
        let version: UInt32, flags: UInt32, capacity: UInt64, grainSectors: UInt64
        let descriptorOffset: UInt64, descriptorSize: UInt64, gtEntries: UInt32, gdOffset: UInt64
        let compressAlgorithm: UInt16
        let uncleanShutdown: Bool

        init(_ b: [UInt8], at offset: UInt64, structure h: String) throws(ContainerError) {
            let f = Fields(b)
            guard f.le32(0) == VMDKSparseDisk.magic else {
                throw ContainerError(.malformed, h, at: offset, "no VMDK sparse magic (KDMV)")
            }
            version = f.le32(4)
            guard (1...3).contains(version) else {
                throw ContainerError(.unsupported, h, at: offset + 4, "VMDK sparse version \(version) (1 to 3 are read)")
            }
            flags = f.le32(8)
            capacity = f.le64(12)
            grainSectors = f.le64(20)
            descriptorOffset = f.le64(28)
            descriptorSize = f.le64(36)
            gtEntries = f.le32(44)
            gdOffset = f.le64(56)
            compressAlgorithm = f.le16(77)
            uncleanShutdown = f.u8(72) != 0
            guard grainSectors >= 1, grainSectors <= 2048, grainSectors & (grainSectors - 1) == 0 else {
                throw ContainerError(.malformed, h, at: offset + 20, "grain size \(grainSectors) sectors is not a power of two up to 1 MiB")
            }
            guard gtEntries >= 1, gtEntries <= 1 << 16 else {
                throw ContainerError(.malformed, h, at: offset + 44, "\(gtEntries) entries per grain table is outside 1...65536")
            }
            guard capacity <= 1 << 53 else {
                throw ContainerError(.malformed, h, at: offset + 12, "capacity of \(capacity) sectors is impossible")
            }
        }
    }

    public init(_ reader: any ContainerReader) throws(ContainerError) {
        self.reader = reader
        let h = "VMDK sparse header"
        var header = try Header(try reader.bytes(h, at: 0, count: 512), at: 0, structure: h)
        let markers = header.flags & (1 << 17) != 0
        if header.gdOffset == Self.gdAtEnd {
            // The footer: a footer marker, the header again with the real GD offset, an end-of-stream marker.
            guard reader.size >= 2048 else {
                throw ContainerError(.truncated, h, at: 56, "the grain directory is at the end, but the file (\(reader.size) bytes) has no room for a footer")
            }
            let footerAt = reader.size - 1024
            if markers {
                let m = Fields(try reader.bytes("VMDK footer marker", at: footerAt - 512, count: 16))
                guard m.le32(8) == 0, m.le32(12) == 3 else {
                    throw ContainerError(.truncated, "VMDK footer marker", at: footerAt - 512, "no footer marker before the footer: the stream is cut short or damaged")
                }
            }
            header = try Header(try reader.bytes("VMDK footer", at: footerAt, count: 512), at: footerAt, structure: "VMDK footer")
            guard header.gdOffset != Self.gdAtEnd else {
                throw ContainerError(.malformed, "VMDK footer", at: footerAt + 56, "the footer too says the grain directory is at the end")
            }
        }
        uncleanShutdown = header.uncleanShutdown
        let compressed = header.flags & (1 << 16) != 0
        if compressed {
            guard header.compressAlgorithm == 1 else {
                throw ContainerError(.unsupported, h, at: 77, "compression algorithm \(header.compressAlgorithm) (1, deflate, is read)")
            }
            guard markers else {
                throw ContainerError(.unsupported, h, at: 8, "compressed grains without grain markers")
            }
        }
        grainSize = header.grainSectors * 512
        gtEntries = UInt64(header.gtEntries)
        guard let size = mul(header.capacity, 512) else {
            throw ContainerError(.malformed, h, at: 12, "capacity overflows")
        }
        virtualSize = size

        // The embedded descriptor names the subformat; refuse one this reader does not know.
        var descriptor: VMDKDescriptor?
        if header.descriptorOffset != 0 && header.descriptorSize != 0 {
            guard header.descriptorSize <= 2048, let at = mul(header.descriptorOffset, 512) else {
                throw ContainerError(.malformed, h, at: 28, "embedded descriptor of \(header.descriptorSize) sectors at sector \(header.descriptorOffset) is impossible")
            }
            let text = try reader.bytes("VMDK embedded descriptor", at: at, count: Int(header.descriptorSize * 512))
            let d = try VMDKDescriptor(text.prefix { $0 != 0 }.map { $0 }, baseOffset: at)
            switch d.createType.lowercased() {
            case "monolithicsparse", "streamoptimized": break
            case "twogbmaxextentsparse", "vmfssparse":
                throw ContainerError(.unsupported, "VMDK embedded descriptor", at: at, "subformat \(d.createType) spans several files; convert it to monolithicSparse first")
            default:
                throw ContainerError(.unsupported, "VMDK embedded descriptor", at: at, "unknown VMDK subformat (createType) \"\(d.createType)\"")
            }
            descriptor = d
        }
        self.descriptor = descriptor
        streamOptimized = compressed || descriptor?.createType.lowercased() == "streamoptimized"
        if streamOptimized && !compressed {
            throw ContainerError(.malformed, h, at: 8, "a streamOptimized descriptor but no compressed-grain flag")
        }

        guard let perGT = mul(gtEntries, header.grainSectors) else {
            throw ContainerError(.malformed, h, at: 44, "grain table span overflows")
        }
        let gdCount = ceilDiv(header.capacity, perGT)
        guard gdCount <= 1 << 24, let gdAt = mul(header.gdOffset, 512), header.gdOffset != 0 || gdCount == 0 else {
            throw ContainerError(.malformed, h, at: 56, "grain directory of \(gdCount) entries at sector \(header.gdOffset) is impossible")
        }
        gdOffset = gdAt
        let gdBytes = try reader.bytes("VMDK grain directory", at: gdAt, count: Int(gdCount) * 4)
        let g = Fields(gdBytes)
        gd = (0..<Int(gdCount)).map { g.le32($0 * 4) }
        reserved = [0..<512, gdAt..<(gdAt + gdCount * 4)]
        let gtBytes = gtEntries * 4
        for (i, sector) in gd.enumerated() where sector != 0 {
            let at = gdAt + UInt64(i) * 4
            let gt = UInt64(sector) * 512
            try reader.checkInside("VMDK grain table (directory entry at byte \(at))", at: gt, count: gtBytes)
            if reserved.contains(where: { overlaps($0, gt..<(gt + gtBytes)) }) {
                throw ContainerError(.loop, "VMDK grain directory", at: at, "entry \(i) points its grain table at byte \(gt), into the header or the grain directory")
            }
        }
    }

    func grainTable(_ index: Int) throws(ContainerError) -> [UInt32]? {
        guard gd[index] != 0 else { return nil }
        if let t = cache.withLock({ $0[index] }) { return t }
        let at = UInt64(gd[index]) * 512
        let f = Fields(try reader.bytes("VMDK grain table", at: at, count: Int(gtEntries) * 4))
        let table = (0..<Int(gtEntries)).map { f.le32($0 * 4) }
        cache.withLock { c in
            if c.count >= 1024 { c.removeAll(keepingCapacity: true) }
            c[index] = table
        }
        return table
    }

    /// The grain's sector in the file; nil for a grain that reads as zeros.
    func grainSector(_ grain: UInt64) throws(ContainerError) -> (sector: UInt64, entryAt: UInt64)? {
        let gi = Int(grain / gtEntries)
        let ti = Int(grain % gtEntries)
        guard let table = try grainTable(gi) else { return nil }
        let entry = table[ti]
        if entry == 0 || entry == Self.zeroedGrain { return nil }
        let entryAt = UInt64(gd[gi]) * 512 + UInt64(ti) * 4
        let at = UInt64(entry) * 512
        if reserved.contains(where: { overlaps($0, at..<(at + 512)) }) {
            throw ContainerError(.loop, "VMDK grain table", at: entryAt, "grain \(grain) points at byte \(at), into the header or the grain directory")
        }
        return (UInt64(entry), entryAt)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        var done = 0
        var scratch: [UInt8] = []
        while done < buffer.count {
            let pos = offset + UInt64(done)
            let grain = pos / grainSize
            let within = pos % grainSize
            let n = Int(min(UInt64(buffer.count - done), grainSize - within))
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            defer { done += n }
            guard let (sector, entryAt) = try grainSector(grain) else {
                out.initializeMemory(as: UInt8.self, repeating: 0)
                continue
            }
            let at = sector * 512
            if !streamOptimized {
                try reader.fill(out, "VMDK grain \(grain) (grain table entry at byte \(entryAt))", at: at + within)
                continue
            }
            let s = "VMDK compressed grain \(grain)"
            let marker = Fields(try reader.bytes(s, at: at, count: 12))
            let lba = marker.le64(0)
            let length = UInt64(marker.le32(8))
            guard lba == grain * (grainSize / 512) else {
                throw ContainerError(.malformed, s, at: at, "grain marker says sector \(lba), the grain table says \(grain * (grainSize / 512))")
            }
            guard length > 0, length <= 2 * grainSize + 4096 else {
                throw ContainerError(.malformed, s, at: at + 8, "compressed length \(length) is impossible for a \(grainSize)-byte grain")
            }
            let input = try reader.bytes(s, at: at + 12, count: Int(length))
            let grainBytes = Int(min(grainSize, virtualSize - grain * grainSize))
            if scratch.count != grainBytes { scratch = [UInt8](repeating: 0, count: grainBytes) }
            try scratch.withMutableBytes { (b) throws(ContainerError) in
                try Inflate.exact(input, into: b, wrapper: .zlibOrGzip, structure: s, at: at + 12)
            }
            scratch.withUnsafeBytes { b in
                out.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[Int(within)..<(Int(within) + n)]))
            }
        }
    }

    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        let grains = ceilDiv(virtualSize, grainSize)
        for gi in gd.indices where gd[gi] != 0 {
            let first = UInt64(gi) * gtEntries
            let last = min(first + gtEntries, grains)
            guard first < last else { continue }
            for grain in first..<last where try grainSector(grain) != nil {
                appendExtent(&out, (grain * grainSize)..<min((grain + 1) * grainSize, virtualSize))
            }
        }
        return out
    }
}

/// A VMDK text descriptor: `key=value` lines and extent lines (`RW 2048 FLAT "disk-flat.vmdk" 0`).
public struct VMDKDescriptor: Sendable, Hashable {
    public struct Extent: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable { case flat = "FLAT", zero = "ZERO", sparse = "SPARSE", vmfs = "VMFS", other }
        /// RW, RDONLY or NOACCESS.
        public let access: String
        /// Size in bytes.
        public let size: UInt64
        public let kind: Kind
        /// The type as written (for `other`).
        public let typeName: String
        /// The extent file's name, relative to the descriptor's folder (empty for ZERO).
        public let fileName: String
        /// Byte offset of the extent's data inside its file.
        public let offset: UInt64
    }

    public let createType: String
    /// Byte offset of the `createType` line in the file, for messages.
    public let createTypeOffset: UInt64?
    public let parentCID: String?
    public let parentFileNameHint: String?
    public let extents: [Extent]
    /// Every `key=value` line, keys as written.
    public let values: [String: String]

    /// Parses descriptor text; `baseOffset` is its position in the file, for error offsets.
    public init(_ text: [UInt8], baseOffset: UInt64 = 0) throws(ContainerError) {
        let s = "VMDK descriptor"
        guard text.count <= 1 << 20 else { throw ContainerError(.malformed, s, at: baseOffset, "a descriptor of \(text.count) bytes is too large") }
        var values: [String: String] = [:]
        var extents: [Extent] = []
        var lineStart = 0
        var createTypeAt: UInt64?
        for raw in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            defer { lineStart += raw.count + 1 }
            let line = String(decoding: raw, as: UTF8.self).trimmingSpaces
            let at = baseOffset + UInt64(lineStart)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let first = line.prefix { $0 != " " && $0 != "\t" }
            if ["RW", "RDONLY", "NOACCESS"].contains(first) {
                extents.append(try Self.extent(line, at: at))
            } else if let eq = line.firstIndex(of: "=") {
                let key = String(line[..<eq]).trimmingSpaces
                var value = String(line[line.index(after: eq)...]).trimmingSpaces
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                values[key] = value
                if key == "createType" { createTypeAt = at }
            } else {
                throw ContainerError(.malformed, s, at: at, "line \"\(line.prefix(80))\" is neither a setting nor an extent")
            }
        }
        guard let createType = values["createType"] else {
            throw ContainerError(.malformed, s, at: baseOffset, "no createType")
        }
        self.createType = createType
        self.createTypeOffset = createTypeAt
        self.values = values
        self.extents = extents
        parentCID = values["parentCID"]
        parentFileNameHint = values["parentFileNameHint"]
    }

    private static func extent(_ line: String, at: UInt64) throws(ContainerError) -> Extent {
        let s = "VMDK descriptor extent"
        // access, size in sectors, type, then a quoted file name and an optional sector offset.
        let parts = line.split(maxSplits: 3, whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count >= 3, let sectors = UInt64(parts[1]), let size = mul(sectors, 512) else {
            throw ContainerError(.malformed, s, at: at, "cannot read extent line \"\(line.prefix(80))\"")
        }
        let typeName = parts[2]
        let kind = Extent.Kind(rawValue: typeName) ?? .other
        var name = ""
        var offset: UInt64 = 0
        if parts.count == 4 {
            let rest = parts[3]
            guard rest.hasPrefix("\""), let close = rest.dropFirst().firstIndex(of: "\"") else {
                throw ContainerError(.malformed, s, at: at, "extent file name is not quoted in \"\(line.prefix(80))\"")
            }
            name = String(rest[rest.index(after: rest.startIndex)..<close])
            let tail = rest[rest.index(after: close)...].trimmingSpaces
            if !tail.isEmpty {
                let first = tail.split(separator: " ").first.map(String.init) ?? ""
                guard let o = UInt64(first), let b = mul(o, 512) else {
                    throw ContainerError(.malformed, s, at: at, "extent offset \"\(first)\" is not a sector number")
                }
                offset = b
            }
        } else if kind != .zero {
            throw ContainerError(.malformed, s, at: at, "extent of type \(typeName) names no file")
        }
        return Extent(access: parts[0], size: size, kind: kind, typeName: typeName, fileName: name, offset: offset)
    }

    /// True when the descriptor names a parent (a delta disk).
    public var hasParent: Bool {
        if let p = parentCID?.lowercased(), p != "ffffffff" { return true }
        return parentFileNameHint != nil
    }
}

/// A disk described by a VMDK text descriptor whose extents are FLAT (raw) files or ZERO: monolithicFlat
/// and twoGbMaxExtentFlat. The caller opens each FLAT extent's file (named relative to the descriptor).
public final class VMDKFlatDisk: VirtualDisk {
    public var format: ContainerFormat { .vmdkDescriptor(createType: descriptor.createType) }
    public let virtualSize: UInt64
    public let descriptor: VMDKDescriptor
    let pieces: [(range: Range<UInt64>, extent: VMDKDescriptor.Extent, reader: (any ContainerReader)?)]

    /// Checks that the descriptor is a flat one. Call before opening the extent files.
    public static func check(_ descriptor: VMDKDescriptor) throws(ContainerError) {
        let s = "VMDK descriptor"
        switch descriptor.createType.lowercased() {
        case "monolithicflat", "twogbmaxextentflat", "vmfs": break
        case "monolithicsparse", "streamoptimized", "twogbmaxextentsparse", "vmfssparse":
            throw ContainerError(.unsupported, s, at: descriptor.createTypeOffset, "a separate descriptor for sparse extents (\(descriptor.createType)): open the extent file itself")
        default:
            throw ContainerError(.unsupported, s, at: descriptor.createTypeOffset, "unknown VMDK subformat (createType) \"\(descriptor.createType)\"")
        }
        if descriptor.hasParent {
            throw ContainerError(.unsupported, s, at: nil, "the disk has a parent (\(descriptor.parentFileNameHint ?? "parentCID \(descriptor.parentCID ?? "")")): only its differences are here")
        }
        guard !descriptor.extents.isEmpty else { throw ContainerError(.malformed, s, at: nil, "no extents") }
        for e in descriptor.extents where e.kind != .flat && e.kind != .zero && e.kind != .vmfs {
            throw ContainerError(.unsupported, s, at: nil, "extent type \(e.typeName) of \"\(e.fileName)\" (FLAT, VMFS and ZERO are read)")
        }
    }

    /// Builds the disk; `readers` holds one reader per extent in descriptor order (nil for ZERO extents).
    public init(_ descriptor: VMDKDescriptor, extentReaders readers: [(any ContainerReader)?]) throws(ContainerError) {
        try Self.check(descriptor)
        guard readers.count == descriptor.extents.count else {
            throw ContainerError(.malformed, "VMDK descriptor", at: nil, "\(descriptor.extents.count) extents but \(readers.count) readers")
        }
        self.descriptor = descriptor
        var pos: UInt64 = 0
        var pieces: [(range: Range<UInt64>, extent: VMDKDescriptor.Extent, reader: (any ContainerReader)?)] = []
        for (e, r) in zip(descriptor.extents, readers) {
            guard let end = add(pos, e.size) else {
                throw ContainerError(.malformed, "VMDK descriptor", at: nil, "extents add up past 2^64 bytes")
            }
            if e.kind != .zero {
                guard let r else { throw ContainerError(.malformed, "VMDK descriptor", at: nil, "no reader for extent \"\(e.fileName)\"") }
                try r.checkInside("VMDK flat extent \"\(e.fileName)\"", at: e.offset, count: e.size)
            }
            pieces.append((pos..<end, e, e.kind == .zero ? nil : r))
            pos = end
        }
        self.pieces = pieces
        virtualSize = pos
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        var done = 0
        for p in pieces where done < buffer.count {
            let pos = offset + UInt64(done)
            guard p.range.contains(pos) else { continue }
            let n = Int(min(UInt64(buffer.count - done), p.range.upperBound - pos))
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            if let r = p.reader {
                try r.fill(out, "VMDK flat extent \"\(p.extent.fileName)\"", at: p.extent.offset + (pos - p.range.lowerBound))
            } else {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            }
            done += n
        }
    }

    /// Every FLAT extent counts as data (the extent file's own holes are the caller's to find).
    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for p in pieces where p.reader != nil { appendExtent(&out, p.range) }
        return out
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\0" }
        return String(drop(while: blank).reversed().drop(while: blank).reversed())
    }
}

// VHDX (Microsoft's [MS-VHDX] specification 2.0): little-endian. The first MiB holds the file identifier,
// two headers (64 KiB and 128 KiB; the valid one with the higher sequence number is current) and two copies
// of the region table (192 KiB, 256 KiB), each CRC-32C-protected. The region table locates the BAT and the
// metadata region; the metadata region holds the virtual size, block size and logical sector size. The BAT
// interleaves one sector-bitmap entry after every `chunk ratio` payload-block entries.

/// A fixed or dynamic VHDX. Differencing disks and files whose log must be replayed are refused.
public final class VHDXDisk: VirtualDisk {
    public var format: ContainerFormat { .vhdx }
    public let virtualSize: UInt64
    public let blockSize: UInt64
    public let logicalSectorSize: UInt32
    let reader: any ContainerReader
    let bat: [UInt64]
    let batOffset: UInt64
    let chunkRatio: UInt64
    let reserved: [Range<UInt64>]

    static let batGUID = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
    static let metadataGUID = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    static let fileParametersGUID = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
    static let virtualDiskSizeGUID = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
    static let logicalSectorSizeGUID = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
    static let mib: UInt64 = 1 << 20

    /// A GUID's on-disk bytes: the first three groups little-endian, the last two as written.
    static func guid(_ text: String) -> [UInt8] {
        let hex = text.filter { $0 != "-" }
        let bytes = stride(from: 0, to: 32, by: 2).map { i -> UInt8 in
            let a = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[a..<hex.index(a, offsetBy: 2)], radix: 16)!
        }
        return [bytes[3], bytes[2], bytes[1], bytes[0], bytes[5], bytes[4], bytes[7], bytes[6]] + bytes[8...]
    }

    /// Verifies the CRC-32C stored at `at` (computed with that field zeroed).
    static func crcMatches(_ b: [UInt8], checksumAt at: Int) -> Bool {
        var copy = b
        let stored = Fields(b).le32(at)
        copy.replaceSubrange(at..<(at + 4), with: [0, 0, 0, 0])
        return CRC32C.checksum(copy) == stored
    }

    public init(_ reader: any ContainerReader) throws(ContainerError) {
        self.reader = reader
        let id = try reader.bytes("VHDX file identifier", at: 0, count: 8)
        guard id == Array("vhdxfile".utf8) else {
            throw ContainerError(.malformed, "VHDX file identifier", at: 0, "no signature \"vhdxfile\"")
        }
        // The current header: the valid one with the higher sequence number.
        var best: (seq: UInt64, f: Fields, at: UInt64)?
        var why: [String] = []
        for at in [64 * 1024, 128 * 1024] as [UInt64] {
            let b = try reader.bytes("VHDX header", at: at, count: 4096)
            let f = Fields(b)
            guard f.le32(0) == 0x6461_6568 else { why.append("no \"head\" at \(at)"); continue }
            guard Self.crcMatches(b, checksumAt: 4) else { why.append("bad CRC-32C at \(at)"); continue }
            if best == nil || f.le64(8) > best!.seq { best = (f.le64(8), f, at) }
        }
        guard let header = best else {
            throw ContainerError(.malformed, "VHDX header", at: 64 * 1024, "neither header is valid (\(why.joined(separator: ", ")))")
        }
        let version = header.f.le16(66)
        guard version == 1 else {
            throw ContainerError(.unsupported, "VHDX header", at: header.at + 66, "version \(version) (1 is read)")
        }
        if header.f.b[48..<64].contains(where: { $0 != 0 }) {
            throw ContainerError(
                .unsupported, "VHDX header", at: header.at + 48,
                "the log holds writes not yet applied (non-zero LogGuid): open the disk once in Hyper-V or qemu-img check -r all to replay it")
        }

        // Region table: the first copy that is valid.
        var regions: Fields?
        var regionAt: UInt64 = 0
        for at in [192 * 1024, 256 * 1024] as [UInt64] {
            let b = try reader.bytes("VHDX region table", at: at, count: 64 * 1024)
            let f = Fields(b)
            if f.le32(0) == 0x6967_6572 && Self.crcMatches(b, checksumAt: 4) {
                regions = f
                regionAt = at
                break
            }
        }
        guard let regions else {
            throw ContainerError(.malformed, "VHDX region table", at: 192 * 1024, "neither copy has signature \"regi\" and a good CRC-32C")
        }
        let count = Int(regions.le32(8))
        guard count <= 2047 else {
            throw ContainerError(.malformed, "VHDX region table", at: regionAt + 8, "\(count) entries (at most 2047)")
        }
        var batFound: Range<UInt64>?
        var meta: Range<UInt64>?
        for i in 0..<count {
            let o = 16 + i * 32
            let at = regionAt + UInt64(o)
            let g = Array(regions.b[o..<(o + 16)])
            let start = regions.le64(o + 16)
            let length = UInt64(regions.le32(o + 24))
            let required = regions.le32(o + 28) & 1 != 0
            guard start % Self.mib == 0, start >= Self.mib, length % Self.mib == 0 else {
                throw ContainerError(.malformed, "VHDX region table", at: at, "region at \(start), \(length) bytes, is not MiB-aligned after the first MiB")
            }
            try reader.checkInside("VHDX region (entry at byte \(at))", at: start, count: length)
            if g == Self.batGUID { batFound = start..<(start + length) }
            else if g == Self.metadataGUID { meta = start..<(start + length) }
            else if required {
                throw ContainerError(.unsupported, "VHDX region table", at: at, "an unknown required region")
            }
        }
        guard let batRegion = batFound, let metaRegion = meta else {
            throw ContainerError(.malformed, "VHDX region table", at: regionAt, "no BAT or no metadata region")
        }
        guard !overlaps(batRegion, metaRegion) else {
            throw ContainerError(.loop, "VHDX region table", at: regionAt, "the BAT and metadata regions overlap")
        }

        // Metadata: block size, virtual size, logical sector size.
        let ms = "VHDX metadata table"
        let mt = Fields(try reader.bytes(ms, at: metaRegion.lowerBound, count: 64 * 1024))
        guard mt.ascii(0, 8) == "metadata" else {
            throw ContainerError(.malformed, ms, at: metaRegion.lowerBound, "no signature \"metadata\"")
        }
        let items = Int(mt.le16(10))
        guard items <= 2047 else { throw ContainerError(.malformed, ms, at: metaRegion.lowerBound + 10, "\(items) entries (at most 2047)") }
        var blockSize: UInt64?
        var size: UInt64?
        var sector: UInt32?
        for i in 0..<items {
            let o = 32 + i * 32
            let at = metaRegion.lowerBound + UInt64(o)
            let g = Array(mt.b[o..<(o + 16)])
            let offset = UInt64(mt.le32(o + 16))
            let length = UInt64(mt.le32(o + 20))
            let required = mt.le32(o + 24) & 4 != 0
            func value(_ n: Int) throws(ContainerError) -> Fields {
                guard length >= UInt64(n), offset >= 64 * 1024, offset + length <= UInt64(metaRegion.count) else {
                    throw ContainerError(.malformed, ms, at: at, "item of \(length) bytes at \(offset) lies outside the metadata region")
                }
                return Fields(try reader.bytes("VHDX metadata item", at: metaRegion.lowerBound + offset, count: n))
            }
            if g == Self.fileParametersGUID {
                let v = try value(8)
                if v.le32(4) & 2 != 0 {
                    throw ContainerError(.unsupported, "VHDX file parameters", at: metaRegion.lowerBound + offset + 4, "a differencing VHDX (HasParent): its data lives partly in the parent disk")
                }
                blockSize = UInt64(v.le32(0))
            } else if g == Self.virtualDiskSizeGUID {
                size = try value(8).le64(0)
            } else if g == Self.logicalSectorSizeGUID {
                sector = try value(4).le32(0)
            } else if required, !Self.knownOptional(g) {
                throw ContainerError(.unsupported, ms, at: at, "an unknown required metadata item")
            }
        }
        guard let blockSize, let size, let sector else {
            throw ContainerError(.malformed, ms, at: metaRegion.lowerBound, "file parameters, virtual disk size or logical sector size is missing")
        }
        guard blockSize >= Self.mib, blockSize <= 256 * Self.mib, blockSize & (blockSize - 1) == 0 else {
            throw ContainerError(.malformed, "VHDX file parameters", at: metaRegion.lowerBound, "block size \(blockSize) is not a power of two from 1 MiB to 256 MiB")
        }
        guard sector == 512 || sector == 4096 else {
            throw ContainerError(.malformed, "VHDX logical sector size", at: metaRegion.lowerBound, "\(sector) (512 or 4096)")
        }
        guard size <= 64 << 40, size % UInt64(sector) == 0 else {
            throw ContainerError(.malformed, "VHDX virtual disk size", at: metaRegion.lowerBound, "\(size) is not a multiple of the sector size up to 64 TiB")
        }
        self.blockSize = blockSize
        self.virtualSize = size
        self.logicalSectorSize = sector
        let ratio = Int(((1 << 23) * UInt64(sector)) / blockSize)
        chunkRatio = UInt64(ratio)

        let blocks = ceilDiv(size, blockSize)
        let entries = blocks == 0 ? 0 : blocks + (blocks - 1) / UInt64(ratio)
        guard entries * 8 <= UInt64(batRegion.count) else {
            throw ContainerError(.truncated, "VHDX BAT", at: batRegion.lowerBound, "\(entries) entries do not fit the \(batRegion.count)-byte BAT region")
        }
        batOffset = batRegion.lowerBound
        let bf = Fields(try reader.bytes("VHDX BAT", at: batRegion.lowerBound, count: Int(entries) * 8))
        let all = (0..<Int(entries)).map { bf.le64($0 * 8) }
        reserved = [0..<Self.mib, batRegion, metaRegion]
        // Payload entries only: skip the sector-bitmap entry after every chunkRatio of them.
        let payload = (0..<Int(blocks)).map { all[$0 + $0 / ratio] }
        self.bat = payload
        for (i, e) in payload.enumerated() {
            let at = batRegion.lowerBound + UInt64(i + i / ratio) * 8
            switch e & 7 {
            case 0, 1, 2, 3: continue
            case 6:
                guard let start = mul(e >> 20, Self.mib) else {
                    throw ContainerError(.malformed, "VHDX BAT", at: at, "block \(i) has an impossible file offset")
                }
                let length = min(blockSize, size - UInt64(i) * blockSize)
                try reader.checkInside("VHDX payload block \(i) (BAT entry at byte \(at))", at: start, count: length)
                if reserved.contains(where: { overlaps($0, start..<(start + length)) }) {
                    throw ContainerError(.loop, "VHDX BAT", at: at, "block \(i) at byte \(start) overlaps the headers, the BAT or the metadata")
                }
            case 7:
                throw ContainerError(.unsupported, "VHDX BAT", at: at, "block \(i) is partially present, which only a differencing disk may be")
            default:
                throw ContainerError(.malformed, "VHDX BAT", at: at, "block \(i) has the invalid state \(e & 7)")
            }
        }
    }

    /// Items that are flagged required yet need nothing from a reader: disk ID and physical sector size.
    static func knownOptional(_ g: [UInt8]) -> Bool {
        g == guid("BECA12AB-B2E6-4523-93EF-C309E000C746") || g == guid("CDA348C7-445D-4471-9CC9-E9885251C556")
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        var done = 0
        while done < buffer.count {
            let pos = offset + UInt64(done)
            let block = Int(pos / blockSize)
            let within = pos % blockSize
            let n = Int(min(UInt64(buffer.count - done), blockSize - within))
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            let e = bat[block]
            if e & 7 == 6 {
                try reader.fill(out, "VHDX payload block \(block)", at: (e >> 20) * Self.mib + within)
            } else {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            }
            done += n
        }
    }

    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for (i, e) in bat.enumerated() where e & 7 == 6 {
            appendExtent(&out, (UInt64(i) * blockSize)..<min(UInt64(i + 1) * blockSize, virtualSize))
        }
        return out
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX checksums its headers and tables.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}

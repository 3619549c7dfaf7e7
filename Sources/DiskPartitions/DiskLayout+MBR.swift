// DOS/MBR partition tables.
//
// Sector 0: 446 bytes of boot code, four 16-byte entries at 446 (status 0x00/0x80, CHS start, type, CHS end,
// u32 LE first LBA, u32 LE sector count), signature 0x55 0xAA at 510. An extended partition (type 0x05, 0x0F or
// 0x85) holds a chain of EBRs: each EBR's entry 0 is a logical partition relative to that EBR, entry 1 points to
// the next EBR relative to the start of the extended partition. Logical partitions are numbered from 5.

/// Names of the MBR partition types that matter here.
enum MBRType {
    static let protectiveGPT: UInt8 = 0xEE
    /// `SUNIXOS`: the old Solaris type, shared with Linux swap.
    static let solarisLegacy: UInt8 = 0x82
    /// `SUNIXOS2`: the Solaris 2 type illumos uses.
    static let solaris2: UInt8 = 0xBF
    static let extendedTypes: Set<UInt8> = [0x05, 0x0F, 0x85]

    static func name(of type: UInt8) -> String? {
        switch type {
        case 0x05, 0x0F, 0x85: "extended"
        case 0x07: "NTFS/exFAT"
        case 0x0B, 0x0C: "FAT32"
        case 0x0E, 0x06, 0x04, 0x01: "FAT"
        case 0x82: "Solaris (legacy) / Linux swap"
        case 0x83: "Linux"
        case 0x8E: "Linux LVM"
        case 0xA5: "FreeBSD"
        case 0xBF: "Solaris 2"
        case 0xEE: "GPT protective"
        case 0xEF: "EFI System"
        case 0xFD: "Linux RAID"
        default: nil
        }
    }
}

/// One 16-byte entry of an MBR or EBR.
struct MBREntry {
    /// 0-based slot in the table.
    let slot: Int
    let status: UInt8
    let type: UInt8
    let firstLBA: UInt32
    let sectorCount: UInt32
    /// Byte offset of the entry in the image.
    let offset: UInt64

    var isEmpty: Bool { type == 0 || sectorCount == 0 }
}

/// A sector holding an MBR-style table (the MBR itself or an EBR).
struct MBRSector {
    let hasSignature: Bool
    let entries: [MBREntry]
    let diskSignature: UInt32

    init(bytes: [UInt8], lba: UInt64, sectorSize: Int) {
        let base = lba &* UInt64(sectorSize)
        hasSignature = bytes.count >= 512 && bytes[510] == 0x55 && bytes[511] == 0xAA
        var entries: [MBREntry] = []
        if bytes.count >= 512 {
            for slot in 0..<4 {
                let at = 446 + 16 * slot
                func le32(_ offset: Int) -> UInt32 {
                    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + offset + $1]) << (8 * UInt32($1)) }
                }
                entries.append(
                    MBREntry(
                        slot: slot, status: bytes[at], type: bytes[at + 4], firstLBA: le32(8), sectorCount: le32(12),
                        offset: base &+ UInt64(at)))
            }
        }
        self.entries = entries
        diskSignature =
            bytes.count >= 512 ? (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[440 + $1]) << (8 * UInt32($1)) } : 0
    }
}

extension LayoutParser {
    /// Parses sector 0 as an MBR. Returns `nil` (with a warning) when it does not look like a partition table.
    mutating func parseMBR(_ mbr: MBRSector) throws -> DiskLayout? {
        let used = mbr.entries.filter { !$0.isEmpty }
        for entry in mbr.entries where entry.type != 0 && entry.sectorCount == 0 {
            warn(entry.offset, "MBR entry \(entry.slot + 1) has type \(entry.type.hex2) but 0 sectors; ignored")
        }
        if let odd = used.first(where: { $0.status != 0x00 && $0.status != 0x80 }) {
            warn(
                odd.offset,
                "sector 0 ends in 0x55AA but MBR entry \(odd.slot + 1) has boot flag \(odd.status.hex2) "
                    + "(not 0x00 or 0x80); not treated as a partition table")
            return nil
        }
        guard !used.isEmpty else {
            warn(510, "sector 0 ends in 0x55AA but its MBR has no partitions; not treated as a partition table")
            return nil
        }

        let sectorSize = options.sectorSize ?? 512
        let ss = UInt64(sectorSize)
        let diskSize = source.size
        var regions: [DiskRegion] = []
        var topLevel: [DiskRegion] = []
        var logicals: [DiskRegion] = []
        var schemes: [PartitionScheme] = [.mbr]
        var walkedExtended = false
        var namedSolaris = false

        for entry in used {
            let name = "p\(entry.slot + 1)"
            guard entry.firstLBA != 0 else {
                throw PartitionTableError(
                    .badEntry, at: entry.offset, "MBR partition \(name) starts at LBA 0, on top of the MBR")
            }
            let region = try makeRegion(
                name: name, firstLBA: UInt64(entry.firstLBA), sectors: UInt64(entry.sectorCount), sectorSize: ss,
                entryOffset: entry.offset, parentName: "the image", parentEnd: diskSize, type: entry.type,
                bootable: entry.status == 0x80)
            topLevel.append(region)

            if MBRType.extendedTypes.contains(entry.type) {
                var container = region
                container.isContainer = true
                regions.append(container)
                if walkedExtended {
                    warn(entry.offset, "more than one extended partition; the chain of \(name) is not followed")
                    continue
                }
                walkedExtended = true
                let chain = try walkEBRChain(extended: container, firstLogicalNumber: 5, sectorSize: ss)
                logicals += chain
                regions += chain
            } else if entry.type == MBRType.solaris2 || entry.type == MBRType.solarisLegacy {
                if let slices = try parseVTOC(in: region, fdiskType: entry.type, sectorSize: ss, primary: !namedSolaris)
                {
                    namedSolaris = true
                    var container = region
                    container.isContainer = true
                    regions.append(container)
                    regions += slices
                    if !schemes.contains(.vtoc) { schemes.append(.vtoc) }
                } else {
                    regions.append(region)
                }
            } else {
                regions.append(region)
            }
        }
        try checkNoOverlap(topLevel, what: "MBR partition")
        try checkNoOverlap(logicals, what: "logical partition")

        return DiskLayout(
            diskSize: diskSize, sectorSize: sectorSize, schemes: schemes, mbrDiskSignature: mbr.diskSignature,
            regions: regions, warnings: warnings)
    }

    /// Follows the EBR chain of an extended partition; every EBR and logical partition must lie inside it.
    mutating func walkEBRChain(extended: DiskRegion, firstLogicalNumber: Int, sectorSize ss: UInt64) throws
        -> [DiskRegion]
    {
        let extStartLBA = extended.start / ss
        let extEndLBA = extended.end / ss
        var ebrLBA = extStartLBA
        var visited: Set<UInt64> = []
        var number = firstLogicalNumber
        var logicals: [DiskRegion] = []
        while true {
            let ebrOffset = try Checked.multiply(ebrLBA, ss, at: extended.start, "EBR byte offset")
            guard visited.insert(ebrLBA).inserted else {
                throw PartitionTableError(
                    .loop, at: ebrOffset, "the EBR chain of \(extended.name) loops back to LBA \(ebrLBA)")
            }
            guard visited.count <= options.maxLogicalPartitions else {
                throw PartitionTableError(
                    .loop, at: ebrOffset,
                    "the EBR chain of \(extended.name) has more than \(options.maxLogicalPartitions) entries")
            }
            let bytes = try source.read(at: ebrOffset, count: 512, what: "EBR at LBA \(ebrLBA)")
            let ebr = MBRSector(bytes: bytes, lba: ebrLBA, sectorSize: Int(ss))
            guard ebr.hasSignature else {
                throw PartitionTableError(
                    .badSignature, at: ebrOffset + 510,
                    "EBR at LBA \(ebrLBA) in \(extended.name) lacks the 0x55AA signature")
            }
            let logical = ebr.entries[0]
            if !logical.isEmpty {
                guard logical.firstLBA != 0 else {
                    throw PartitionTableError(
                        .badEntry, at: logical.offset, "logical partition p\(number) starts on its own EBR")
                }
                let first = try Checked.add(ebrLBA, UInt64(logical.firstLBA), at: logical.offset, "logical start")
                var region = try makeRegion(
                    name: "p\(number)", firstLBA: first, sectors: UInt64(logical.sectorCount), sectorSize: ss,
                    entryOffset: logical.offset, parentName: "its extended partition \(extended.name)",
                    parentEnd: extended.end, type: logical.type, bootable: logical.status == 0x80)
                region.parent = extended.name
                logicals.append(region)
                number += 1
            }
            let link = ebr.entries[1]
            guard !link.isEmpty, MBRType.extendedTypes.contains(link.type) else { break }
            let next = try Checked.add(extStartLBA, UInt64(link.firstLBA), at: link.offset, "next EBR LBA")
            guard next < extEndLBA else {
                throw PartitionTableError(
                    .outOfBounds, at: link.offset,
                    "EBR link to LBA \(next) points past the end of the extended partition \(extended.name) "
                        + "(last LBA \(extEndLBA - 1))")
            }
            ebrLBA = next
        }
        return logicals
    }

    /// Makes a region from an LBA range and checks it against its parent's end.
    func makeRegion(
        name: String, firstLBA: UInt64, sectors: UInt64, sectorSize ss: UInt64, entryOffset: UInt64,
        parentName: String, parentEnd: UInt64, type: UInt8, bootable: Bool
    ) throws -> DiskRegion {
        let start = try Checked.multiply(firstLBA, ss, at: entryOffset, "start of \(name)")
        let size = try Checked.multiply(sectors, ss, at: entryOffset, "size of \(name)")
        let end = try Checked.add(start, size, at: entryOffset, "end of \(name)")
        guard end <= parentEnd else {
            throw PartitionTableError(
                .outOfBounds, at: entryOffset,
                "partition \(name) (bytes \(start)–\(end - 1)) ends past the end of \(parentName) "
                    + "(\(parentEnd) bytes)")
        }
        return DiskRegion(
            name: name, scheme: .mbr, start: start, size: size, type: .mbr(type), isBootable: bootable)
    }
}

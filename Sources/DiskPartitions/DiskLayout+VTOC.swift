// SMI labels (x86 `_SUNOS_VTOC_16`, `struct dk_label` in illumos `sys/dklabel.h`) inside a Solaris fdisk
// partition. The 512-byte label sits in sector 1 of the partition (`DK_LABEL_LOC`), little-endian:
//
//   12  u32 v_sanity   0x600DDEEE (VTOC_SANE)      72  16 × { u16 tag, u16 flag, u32 start, u32 size }
//   16  u32 v_version  1 (V_VERSION)               508 u16 dkl_magic 0xDABE
//   28  u16 v_sectorsz                             510 u16 dkl_cksum: the XOR of all 256 words is 0
//   30  u16 v_nparts   16
//
// Slice start and size count sectors from the start of the fdisk partition. The backup slice (tag 5, usually
// s2) covers the whole partition, so slices may overlap it; other overlaps only draw a warning, as illumos
// `format` allows them.

/// Names of VTOC slice tags (`V_*` in illumos `sys/vtoc.h`).
enum VTOCTag {
    static let backup: UInt16 = 0x05

    static func name(of tag: UInt16) -> String? {
        switch tag {
        case 0x00: "unassigned"
        case 0x01: "boot"
        case 0x02: "root"
        case 0x03: "swap"
        case 0x04: "usr"
        case 0x05: "backup"
        case 0x06: "stand"
        case 0x07: "var"
        case 0x08: "home"
        case 0x09: "alternates"
        case 0x0A: "cache"
        case 0x0B: "reserved"
        case 0x0C: "system"
        case 0x18: "BIOS boot"
        default: nil
        }
    }
}

/// The illumos block minor name of a VTOC16 slice: `a` for s0 through `p` for s15 (cmlb `dk_minor_data`).
func vtocMinorName(slice: Int) -> String? {
    guard (0..<16).contains(slice) else { return nil }
    return String(UnicodeScalar(UInt8(ascii: "a") + UInt8(slice)))
}

/// The illumos block minor name of an EFI-label slice (cmlb `dk_minor_data_efi` on x86): `a`–`g` for s0–s6,
/// none for s7 (minor 7 is the whole disk, `wd`), `i`–`p` for s8–s15.
func efiMinorName(slice: Int) -> String? {
    guard (0..<16).contains(slice), slice != 7 else { return nil }
    return vtocMinorName(slice: slice)
}

enum SMILabel {
    static let sanity: UInt32 = 0x600D_DEEE  // VTOC_SANE
    static let magic: UInt16 = 0xDABE  // DKL_MAGIC
    static let size = 512
    static let maxSlices = 16  // V_NUMPAR on x86
}

extension LayoutParser {
    /// Reads the SMI label in sector 1 of a Solaris fdisk partition and returns its slices.
    ///
    /// Returns `nil` for a type 0x82 partition without a label (Linux swap shares the type). A 0xBF partition
    /// without a valid label, a bad sanity word or checksum, or a slice past the end of the partition throws.
    mutating func parseVTOC(in partition: DiskRegion, fdiskType: UInt8, sectorSize ss: UInt64, primary: Bool)
        throws -> [DiskRegion]?
    {
        let partitionSectors = partition.size / ss
        guard partitionSectors >= 2 else {
            if fdiskType == MBRType.solarisLegacy { return nil }
            throw PartitionTableError(
                .outOfBounds, at: partition.start,
                "Solaris partition \(partition.name) has \(partitionSectors) sector(s), too small for an SMI label "
                    + "in its sector 1")
        }
        let labelOffset = try Checked.add(partition.start, ss, at: partition.start, "SMI label offset")
        let label = LittleEndianBytes(
            bytes: try source.read(at: labelOffset, count: SMILabel.size, what: "SMI label of \(partition.name)"),
            base: labelOffset, what: "SMI label of \(partition.name)")

        let magic = try label.u16(508)
        guard magic == SMILabel.magic else {
            if fdiskType == MBRType.solarisLegacy { return nil }
            throw PartitionTableError(
                .badSignature, at: label.at(508),
                "Solaris partition \(partition.name) has no SMI label in its sector 1: dkl_magic is \(magic.hex), "
                    + "expected 0xdabe")
        }
        let sanity = try label.u32(12)
        guard sanity == SMILabel.sanity else {
            throw PartitionTableError(
                .badSignature, at: label.at(12),
                "SMI label of \(partition.name): v_sanity is \(sanity.hex), expected 0x600ddeee")
        }
        var xor: UInt16 = 0
        for word in stride(from: 0, to: SMILabel.size, by: 2) { xor ^= try label.u16(word) }
        guard xor == 0 else {
            let stored = try label.u16(510)
            throw PartitionTableError(
                .badChecksum, at: label.at(510),
                "SMI label of \(partition.name): checksum mismatch (dkl_cksum \(stored.hex), the XOR of all words "
                    + "is \(xor.hex) instead of 0)")
        }
        let version = try label.u32(16)
        if version != 1 {
            warn(label.at(16), "SMI label of \(partition.name): v_version is \(version), expected 1")
        }
        let labelSectorSize = try label.u16(28)
        if labelSectorSize != 0, UInt64(labelSectorSize) != ss {
            warn(
                label.at(28),
                "SMI label of \(partition.name): v_sectorsz is \(labelSectorSize), the disk is read with \(ss)")
        }
        let count = Int(try label.u16(30))
        guard count <= SMILabel.maxSlices else {
            throw PartitionTableError(
                .badHeader, at: label.at(30),
                "SMI label of \(partition.name): v_nparts is \(count), more than \(SMILabel.maxSlices)")
        }
        if !primary {
            warn(
                partition.start,
                "more than one Solaris fdisk partition; illumos uses one, the slices of \(partition.name) are named "
                    + "\(partition.name)s0…")
        }

        var slices: [DiskRegion] = []
        for index in 0..<count {
            let entry = 72 + 12 * index
            let tag = try label.u16(entry)
            let flag = try label.u16(entry + 2)
            let first = UInt64(try label.u32(entry + 4))
            let sectors = UInt64(try label.u32(entry + 8))
            guard sectors > 0 else { continue }
            let name = primary ? "s\(index)" : "\(partition.name)s\(index)"
            let endSector = first + sectors  // both < 2^32, cannot overflow
            guard endSector <= partitionSectors else {
                throw PartitionTableError(
                    .outOfBounds, at: label.at(entry),
                    "slice \(name) (sectors \(first)–\(endSector - 1) of \(partition.name)) ends past the end of "
                        + "its fdisk partition \(partition.name) (\(partitionSectors) sectors)")
            }
            let offset = try Checked.multiply(first, ss, at: label.at(entry), "start of slice \(name)")
            let start = try Checked.add(partition.start, offset, at: label.at(entry), "start of slice \(name)")
            let size = try Checked.multiply(sectors, ss, at: label.at(entry), "size of slice \(name)")
            slices.append(
                DiskRegion(
                    name: name, scheme: .vtoc, start: start, size: size, type: .vtoc(tag: tag, flag: flag),
                    illumosSlice: index, illumosMinor: vtocMinorName(slice: index), parent: partition.name))
        }

        let checked = slices.filter { region in
            if case .vtoc(let tag, _) = region.type, tag == VTOCTag.backup { return false }
            return true
        }
        do {
            try checkNoOverlap(checked, what: "slice")
        } catch let error as PartitionTableError {
            warn(error.offset, error.message + " (illumos allows overlapping slices; both are listed)")
        }
        return slices
    }
}

// GUID partition tables (UEFI spec, chapter 5).
//
// Header (LBA 1, backup in the last LBA), little-endian:
//    0 "EFI PART"       24 u64 my LBA            56 disk GUID (16)          84 u32 entry size (128 · 2^n)
//    8 u32 revision     32 u64 alternate LBA     72 u64 entry array LBA     88 u32 entry array CRC32
//   12 u32 header size  40 u64 first usable LBA  80 u32 number of entries
//   16 u32 header CRC32 (computed with this field zero over `header size` bytes)
//   48 u64 last usable LBA
// Entry: type GUID (16), unique GUID (16), u64 first LBA, u64 last LBA (inclusive), u64 attributes,
// name (72 bytes UTF-16LE).
//
// The primary is used when its header and entry array check out. Otherwise the backup is used, with a warning;
// when both are damaged the primary's error is thrown.

/// Upper bounds that keep a damaged header from making us read megabytes.
enum GPTLimits {
    static let maxEntrySize: UInt32 = 4096
    static let maxArrayBytes: UInt64 = 4 << 20
}

struct GPTHeader {
    let role: String
    let lba: UInt64
    let offset: UInt64
    let alternateLBA: UInt64
    let firstUsableLBA: UInt64
    let lastUsableLBA: UInt64
    let diskGUID: GUID
    let entriesLBA: UInt64
    let entryCount: UInt32
    let entrySize: UInt32
    let entriesCRC: UInt32
}

extension LayoutParser {
    mutating func parseGPT(sectorSize: Int, primaryFound: Bool, sector0 mbr: MBRSector) throws -> DiskLayout {
        let ss = UInt64(sectorSize)
        let diskSize = source.size
        let diskSectors = diskSize / ss
        let lastLBA = diskSectors - 1  // diskSectors >= 2 here

        var primary: Result<GPTHeader, PartitionTableError>
        if primaryFound {
            primary = try attempt { try readGPTHeader(lba: 1, sectorSize: ss, role: "primary") }
        } else {
            primary = .failure(
                PartitionTableError(.badSignature, at: ss, "no primary GPT header (\"EFI PART\") at LBA 1"))
        }
        var primaryEntries: Result<[UInt8], PartitionTableError>?
        if case .success(let header) = primary {
            primaryEntries = try attempt { try readGPTEntries(header, sectorSize: ss) }
        }

        // The backup: where the primary says, or the last LBA of the image.
        var backupLBAs: [UInt64] = []
        if case .success(let header) = primary, header.alternateLBA != 1, header.alternateLBA < diskSectors {
            backupLBAs.append(header.alternateLBA)
        }
        if lastLBA > 1, !backupLBAs.contains(lastLBA) { backupLBAs.append(lastLBA) }
        var backup: Result<(GPTHeader, [UInt8]), PartitionTableError> = .failure(
            PartitionTableError(.badSignature, at: lastLBA * ss, "no backup GPT header"))
        for lba in backupLBAs {
            backup = try attempt {
                let header = try readGPTHeader(lba: lba, sectorSize: ss, role: "backup")
                return (header, try readGPTEntries(header, sectorSize: ss))
            }
            if case .success = backup { break }
        }

        let used: GPTHeader
        let entries: [UInt8]
        var usedBackup = false
        var backupIntact = false
        switch (primary, primaryEntries, backup) {
        case (.success(let header), .success(let array)?, _):
            used = header
            entries = array
            switch backup {
            case .success(let (backupHeader, _)):
                backupIntact = true
                if backupHeader.entriesCRC != header.entriesCRC {
                    warn(
                        backupHeader.offset,
                        "the backup GPT entry array (CRC32 \(backupHeader.entriesCRC.hex)) differs from the "
                            + "primary's (\(header.entriesCRC.hex)); the primary is used")
                }
                if header.alternateLBA != backupHeader.lba {
                    warn(
                        header.offset + 32,
                        "the primary GPT header gives the backup at LBA \(header.alternateLBA), it was found at "
                            + "LBA \(backupHeader.lba)")
                }
            case .failure(let error):
                warn(error.offset, "the backup GPT is damaged or missing: \(error.message); the primary is used")
            }
        case (.success, .failure(let entryError)?, .success(let (backupHeader, array))):
            used = backupHeader
            entries = array
            usedBackup = true
            backupIntact = true
            warn(
                entryError.offset,
                "primary GPT entry array is damaged (\(entryError.message)); used the backup header at LBA "
                    + "\(backupHeader.lba) and its entry array at LBA \(backupHeader.entriesLBA)")
        case (.failure(let headerError), _, .success(let (backupHeader, array))):
            used = backupHeader
            entries = array
            usedBackup = true
            backupIntact = true
            warn(
                headerError.offset,
                "primary GPT header at LBA 1 is damaged (\(headerError.message)); used the backup header at LBA "
                    + "\(backupHeader.lba)")
        case (.success, .failure(let entryError)?, .failure(let backupError)):
            throw PartitionTableError(
                entryError.code, at: entryError.offset,
                entryError.message + "; the backup GPT is no help either: \(backupError.message)")
        case (.failure(let headerError), _, .failure(let backupError)):
            throw PartitionTableError(
                headerError.code, at: headerError.offset,
                headerError.message + "; the backup GPT is no help either: \(backupError.message)")
        case (.success, nil, _):
            // Unreachable: entries are always read when the primary header is good.
            throw PartitionTableError(.badHeader, at: ss, "internal: primary GPT entries were not read")
        }

        if !mbr.hasSignature || !mbr.entries.contains(where: { $0.type == MBRType.protectiveGPT }) {
            warn(0, "GPT found but sector 0 is not a protective MBR (no type 0xee entry)")
        } else if mbr.entries.contains(where: { !$0.isEmpty && $0.type != MBRType.protectiveGPT }) {
            warn(446, "hybrid MBR: sector 0 lists partitions besides the 0xee one; the GPT is used")
        }
        if used.lastUsableLBA >= diskSectors {
            warn(
                used.offset + 48,
                "the GPT's last usable LBA \(used.lastUsableLBA) lies past the end of the image (\(diskSectors) "
                    + "sectors): the image is shorter than the disk it was made for")
        }

        let regions = try gptRegions(used, entries: entries, sectorSize: ss, diskSectors: diskSectors)
        let summary = GPTSummary(
            diskGUID: used.diskGUID, sectorSize: sectorSize, headerLBA: used.lba, alternateLBA: used.alternateLBA,
            firstUsableLBA: used.firstUsableLBA, lastUsableLBA: used.lastUsableLBA, entryCount: used.entryCount,
            entrySize: used.entrySize, usedBackup: usedBackup, backupIntact: backupIntact)
        return DiskLayout(
            diskSize: diskSize, sectorSize: sectorSize, schemes: [.gpt], gpt: summary,
            mbrDiskSignature: mbr.hasSignature ? mbr.diskSignature : nil,
            zfsWholeDisk: recognizeZFSWholeDisk(regions, sectorSize: ss), regions: regions, warnings: warnings)
    }

    /// Reads and checks one GPT header.
    func readGPTHeader(lba: UInt64, sectorSize ss: UInt64, role: String) throws -> GPTHeader {
        let offset = try Checked.multiply(lba, ss, at: 0, "\(role) GPT header offset")
        let header = LittleEndianBytes(
            bytes: try source.read(at: offset, count: Int(ss), what: "\(role) GPT header at LBA \(lba)"),
            base: offset, what: "\(role) GPT header")
        guard Array(try header.slice(0, count: 8)) == Self.gptSignature else {
            throw PartitionTableError(
                .badSignature, at: offset, "\(role) GPT header at LBA \(lba) lacks the \"EFI PART\" signature")
        }
        let headerSize = try header.u32(12)
        guard headerSize >= 92, UInt64(headerSize) <= ss else {
            throw PartitionTableError(
                .badHeader, at: header.at(12),
                "\(role) GPT header at LBA \(lba): header size \(headerSize) is outside 92…\(ss)")
        }
        let storedCRC = try header.u32(16)
        var covered = Array(try header.slice(0, count: Int(headerSize)))
        covered.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        let computedCRC = gptCRC32(covered)
        guard storedCRC == computedCRC else {
            throw PartitionTableError(
                .badChecksum, at: header.at(16),
                "\(role) GPT header CRC32 bad at LBA \(lba): stored \(storedCRC.hex), computed \(computedCRC.hex)")
        }
        let myLBA = try header.u64(24)
        guard myLBA == lba else {
            throw PartitionTableError(
                .badHeader, at: header.at(24),
                "\(role) GPT header read at LBA \(lba) records its own LBA as \(myLBA)")
        }
        let firstUsable = try header.u64(40)
        let lastUsable = try header.u64(48)
        guard firstUsable <= lastUsable else {
            throw PartitionTableError(
                .badHeader, at: header.at(40),
                "\(role) GPT header: first usable LBA \(firstUsable) is after last usable LBA \(lastUsable)")
        }
        let entryCount = try header.u32(80)
        let entrySize = try header.u32(84)
        guard entrySize >= 128, entrySize <= GPTLimits.maxEntrySize, entrySize % 8 == 0 else {
            throw PartitionTableError(
                .badHeader, at: header.at(84),
                "\(role) GPT header: partition entry size \(entrySize) is absurd (expected 128…4096, a multiple "
                    + "of 8)")
        }
        let arrayBytes = UInt64(entryCount) * UInt64(entrySize)  // < 2^44, no overflow
        guard arrayBytes <= GPTLimits.maxArrayBytes else {
            throw PartitionTableError(
                .badHeader, at: header.at(80),
                "\(role) GPT header: \(entryCount) entries of \(entrySize) bytes (\(arrayBytes) bytes) is absurd "
                    + "(limit \(GPTLimits.maxArrayBytes))")
        }
        let entriesLBA = try header.u64(72)
        let arraySectors = (arrayBytes + ss - 1) / ss
        let arrayEnd = try Checked.add(entriesLBA, arraySectors, at: header.at(72), "end of GPT entry array")
        guard entriesLBA >= 1, arraySectors == 0 || lba < entriesLBA || lba >= arrayEnd else {
            throw PartitionTableError(
                .badHeader, at: header.at(72),
                "\(role) GPT entry array (LBA \(entriesLBA)…) overlaps the MBR or its own header at LBA \(lba)")
        }
        return GPTHeader(
            role: role, lba: lba, offset: offset, alternateLBA: try header.u64(32), firstUsableLBA: firstUsable,
            lastUsableLBA: lastUsable, diskGUID: GUID(onDisk: try header.slice(56, count: 16)) ?? GUID.zero,
            entriesLBA: entriesLBA, entryCount: entryCount, entrySize: entrySize,
            entriesCRC: try header.u32(88))
    }

    /// Reads a header's entry array and checks its CRC32.
    func readGPTEntries(_ header: GPTHeader, sectorSize ss: UInt64) throws -> [UInt8] {
        let offset = try Checked.multiply(header.entriesLBA, ss, at: header.offset + 72, "GPT entry array offset")
        let count = Int(UInt64(header.entryCount) * UInt64(header.entrySize))  // bounded by maxArrayBytes
        let bytes = try source.read(
            at: offset, count: count, what: "\(header.role) GPT entry array at LBA \(header.entriesLBA)")
        let computed = gptCRC32(bytes)
        guard computed == header.entriesCRC else {
            throw PartitionTableError(
                .badChecksum, at: offset,
                "\(header.role) GPT entry array CRC32 bad at LBA \(header.entriesLBA): header says "
                    + "\(header.entriesCRC.hex), computed \(computed.hex)")
        }
        return bytes
    }

    /// Turns the used entries into regions and checks them.
    mutating func gptRegions(_ header: GPTHeader, entries: [UInt8], sectorSize ss: UInt64, diskSectors: UInt64)
        throws -> [DiskRegion]
    {
        let arrayOffset = header.entriesLBA &* ss  // checked when the array was read
        let array = LittleEndianBytes(bytes: entries, base: arrayOffset, what: "GPT entry array")
        var regions: [DiskRegion] = []
        for index in 0..<Int(header.entryCount) {
            let at = index * Int(header.entrySize)
            guard let type = GUID(onDisk: try array.slice(at, count: 16)), !type.isZero else { continue }
            let name = "p\(index + 1)"
            let entryOffset = array.at(at)
            let first = try array.u64(at + 32)
            let last = try array.u64(at + 40)
            guard first <= last else {
                throw PartitionTableError(
                    .badEntry, at: array.at(at + 32),
                    "GPT partition \(name): first LBA \(first) is after last LBA \(last)")
            }
            guard last < diskSectors else {
                throw PartitionTableError(
                    .outOfBounds, at: array.at(at + 40),
                    "GPT partition \(name) (LBA \(first)–\(last)) ends past the end of the image (\(diskSectors) "
                        + "sectors of \(ss) bytes)")
            }
            if first < header.firstUsableLBA || last > header.lastUsableLBA {
                warn(
                    entryOffset,
                    "GPT partition \(name) (LBA \(first)–\(last)) lies outside the usable LBAs "
                        + "\(header.firstUsableLBA)–\(header.lastUsableLBA)")
            }
            let start = try Checked.multiply(first, ss, at: entryOffset, "start of \(name)")
            let size = try Checked.multiply(last - first + 1, ss, at: entryOffset, "size of \(name)")
            let slice = index < 16 ? index : nil
            regions.append(
                DiskRegion(
                    name: name, scheme: .gpt, start: start, size: size, type: .gpt(type),
                    label: Self.partitionName(try array.slice(at + 56, count: 72)),
                    uniqueID: GUID(onDisk: try array.slice(at + 16, count: 16)), illumosSlice: slice,
                    illumosMinor: slice.flatMap { efiMinorName(slice: $0) }))
        }
        try checkNoOverlap(regions, what: "GPT partition")
        return regions
    }

    /// Decodes a GPT partition name (UTF-16LE, up to the first NUL). Bad surrogates become U+FFFD.
    static func partitionName(_ bytes: ArraySlice<UInt8>) -> String {
        var units: [UInt16] = []
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            let unit = UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8
            if unit == 0 { break }
            units.append(unit)
            index += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    /// Matches the regions against the layouts `zpool create` writes on a whole disk (zfs-on-disk §9).
    func recognizeZFSWholeDisk(_ regions: [DiskRegion], sectorSize ss: UInt64) -> ZFSWholeDiskLayout? {
        func region(_ name: String) -> DiskRegion? { regions.first { $0.name == name } }
        guard let reserved = region("p9"), reserved.type == .gpt(.illumosReserved), reserved.size == 8 << 20 else {
            return nil
        }
        if let first = region("p1"), first.type == .gpt(.illumosUsr), region("p2") == nil {
            switch first.start / ss {
            case 256: return .illumos
            case 2048: return .linux
            default: return nil
            }
        }
        if let loader = region("p1"), loader.type == .gpt(.efiSystem), let data = region("p2"),
            data.type == .gpt(.illumosUsr), region("p3") == nil
        {
            return .illumosBootable
        }
        return nil
    }
}

/// Runs `body`, turning a ``PartitionTableError`` into a failure and letting any other error (I/O) through.
func attempt<T>(_ body: () throws -> T) throws -> Result<T, PartitionTableError> {
    do {
        return .success(try body())
    } catch let error as PartitionTableError {
        return .failure(error)
    }
}

extension GUID {
    static let zero = GUID(onDisk: [UInt8](repeating: 0, count: 16))!
}

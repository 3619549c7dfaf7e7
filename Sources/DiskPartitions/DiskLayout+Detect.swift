// The order of detection:
//   1. `EFI PART` at byte 512, then at byte 4096 (the primary GPT header at LBA 1): GPT.
//   2. A protective MBR (type 0xEE) without a primary header, or a sector 0 with no MBR signature: look for the
//      backup GPT header in the last sector; use it and warn, or fail if a protective MBR promised a GPT.
//   3. An MBR signature with plausible entries: MBR, with the EBR chain, and an SMI label inside every primary
//      Solaris partition (0xBF, or 0x82 when it holds a label).
//   4. Otherwise the image is a bare vdev: one region `disk` covering all of it.

extension DiskLayout {
    /// Reads the partition tables of an image and lists every place a vdev can sit.
    ///
    /// Only the table sectors are read: sector 0, the GPT headers and entry arrays, the EBR chain and the SMI label
    /// sectors. Damage that can be recovered from (a bad primary GPT with a good backup) becomes a warning.
    ///
    /// ```swift
    /// let layout = try DiskLayout.detect(in: MemoryByteSource(imageBytes))
    /// for region in layout.candidates { print(region.name, region.start, region.size) }
    /// ```
    ///
    /// - Parameters:
    ///   - source: The image or device.
    ///   - options: Sector size override and limits.
    /// - Returns: The schemes found, the regions and any warnings.
    /// - Throws: ``PartitionTableError`` naming the structure and byte offset when a table is damaged beyond
    ///   recovery, partitions overlap or lie past the end of the image or of their parent; errors of `source`.
    public static func detect(in source: some ByteSource, options: DetectionOptions = DetectionOptions()) throws
        -> DiskLayout
    {
        var parser = LayoutParser(source: source, options: options)
        return try parser.run()
    }

    /// Parses an in-memory image end to end; the single entry point for fuzz targets.
    ///
    /// - Parameters:
    ///   - bytes: A whole disk image.
    ///   - options: Sector size override and limits.
    /// - Returns: What ``detect(in:options:)`` returns for it.
    /// - Throws: ``PartitionTableError`` for malformed tables; it never traps.
    public static func parse(bytes: [UInt8], options: DetectionOptions = DetectionOptions()) throws -> DiskLayout {
        try detect(in: MemoryByteSource(bytes), options: options)
    }
}

struct LayoutParser<Source: ByteSource> {
    let source: Source
    let options: DetectionOptions
    var warnings: [PartitionWarning] = []

    init(source: Source, options: DetectionOptions) {
        self.source = source
        self.options = options
    }

    static var gptSignature: [UInt8] { Array("EFI PART".utf8) }

    mutating func warn(_ offset: UInt64?, _ message: String) {
        warnings.append(PartitionWarning(at: offset, message))
    }

    mutating func run() throws -> DiskLayout {
        if let forced = options.sectorSize, forced != 512, forced != 4096 {
            throw PartitionTableError(.badHeader, at: 0, "sector size \(forced) is not supported (use 512 or 4096)")
        }
        let size = source.size
        guard size >= 512 else {
            warn(nil, "the image is only \(size) bytes, smaller than one sector; no partition table")
            return bare()
        }
        let sector0 = try source.read(at: 0, count: 512, what: "sector 0")
        let mbr = MBRSector(bytes: sector0, lba: 0, sectorSize: 512)

        let sectorSizes = options.sectorSize.map { [$0] } ?? [512, 4096]
        for sectorSize in sectorSizes where size >= UInt64(sectorSize) * 2 {
            let signature = try source.read(at: UInt64(sectorSize), count: 8, what: "GPT signature at LBA 1")
            if signature == Self.gptSignature {
                return try parseGPT(sectorSize: sectorSize, primaryFound: true, sector0: mbr)
            }
        }

        let protective = mbr.hasSignature && mbr.entries.contains { $0.type == MBRType.protectiveGPT }
        if protective || !mbr.hasSignature {
            for sectorSize in sectorSizes {
                let ss = UInt64(sectorSize)
                guard size >= ss * 3 else { continue }
                let last = size / ss - 1
                let signature = try source.read(at: last * ss, count: 8, what: "GPT signature at the last LBA")
                if signature == Self.gptSignature {
                    return try parseGPT(sectorSize: sectorSize, primaryFound: false, sector0: mbr)
                }
            }
            if protective {
                throw PartitionTableError(
                    .badSignature, at: 512,
                    "sector 0 is a protective MBR (type 0xee) but there is no GPT header (\"EFI PART\") at LBA 1 "
                        + "(byte 512 or 4096) nor in the last sector")
            }
        }

        if mbr.hasSignature {
            if let layout = try parseMBR(mbr) { return layout }
        } else if sector0[508] == 0xDA, sector0[509] == 0xBE {
            warn(508, "sector 0 holds a SPARC SMI label (VTOC8, dkl_magic 0xDABE big-endian), which is not read")
        }
        return bare()
    }

    /// The whole image as one region: a bare vdev at offset 0.
    func bare() -> DiskLayout {
        let size = source.size
        let regions =
            size == 0
            ? []
            : [DiskRegion(name: "disk", scheme: .none, start: 0, size: size, type: .wholeDisk)]
        return DiskLayout(
            diskSize: size, sectorSize: options.sectorSize ?? 512, schemes: [.none], regions: regions,
            warnings: warnings)
    }
}

/// Rejects overlapping regions; `regions` must not contain containers together with their children.
func checkNoOverlap(_ regions: [DiskRegion], what: String) throws {
    let sorted = regions.filter { $0.size > 0 }.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
    var previous: DiskRegion?
    for region in sorted {
        if let prior = previous, region.start < prior.end {
            throw PartitionTableError(
                .overlap, at: region.start,
                "\(what) \(region.name) (bytes \(region.start)–\(region.end - 1)) overlaps \(prior.name) "
                    + "(bytes \(prior.start)–\(prior.end - 1))")
        }
        if let prior = previous, prior.end >= region.end { continue }
        previous = region
    }
}

// Where a ZFS vdev can live in a disk image.
//
// A vdev's four labels are found relative to the start and the size of the partition or slice that holds it
// (zfs-on-disk §1), so before any label is read the image's partition tables must be understood. This module
// reads them and returns a flat list of regions:
//
//   scheme  table read                         region names
//   gpt     protective MBR + GPT (512/4096)    p1, p2, ... = GPT entry index + 1 (p9 is entry slot 8);
//                                              illumos slice = index (s0 for p1), minor letter from cmlb's EFI table
//   mbr     MBR primaries + EBR chain          p1...p4 primaries, p5, p6, ... logical partitions in chain order
//   vtoc    SMI label (VTOC16) in sector 1     s0...s15 for the first Solaris fdisk partition (type 0xBF, or 0x82
//           of a Solaris fdisk partition       holding a label), p<N>s<M> for any further one; minor a...p
//   none    no table                           disk: the whole image (a bare vdev at offset 0)
//
// Offsets and sizes are bytes from the start of the image. Nothing here reads data between the tables.

/// The kind of table a region was found in.
public enum PartitionScheme: String, Sendable, Equatable, CaseIterable {
    /// A GUID partition table (behind a protective MBR).
    case gpt
    /// A DOS/MBR partition table, with extended and logical partitions.
    case mbr
    /// An SMI label (x86 VTOC16) inside a Solaris fdisk partition.
    case vtoc
    /// No table: the image is a bare vdev or unpartitioned.
    case none
}

/// The type of a region, in the terms of its table.
public enum RegionType: Sendable, Equatable, CustomStringConvertible {
    /// A GPT partition type GUID.
    case gpt(GUID)
    /// An MBR partition type byte (`0xBF` Solaris 2, `0x82` Solaris or Linux swap, `0x05` extended...).
    case mbr(UInt8)
    /// A VTOC slice tag (`p_tag`: 2 root, 5 backup, ...) and its flags (`p_flag`).
    case vtoc(tag: UInt16, flag: UInt16)
    /// The whole image, no table.
    case wholeDisk

    /// A short human name for the type, when known.
    public var name: String? {
        switch self {
        case .gpt(let guid): guid.typeName
        case .mbr(let byte): MBRType.name(of: byte)
        case .vtoc(let tag, _): VTOCTag.name(of: tag)
        case .wholeDisk: "whole disk"
        }
    }

    public var description: String {
        switch self {
        case .gpt(let guid): guid.description
        case .mbr(let byte): byte.hex2
        case .vtoc(let tag, let flag): "tag \(tag) flag \(flag.hex)"
        case .wholeDisk: "whole disk"
        }
    }
}

/// One place in the image: a partition, a slice, or the whole image.
public struct DiskRegion: Sendable, Equatable, CustomStringConvertible {
    /// The region's name: `p1`, `p5`, `s0`, `p2s0` or `disk` (see the module overview).
    public var name: String
    /// The table the region was read from.
    public var scheme: PartitionScheme
    /// Byte offset of the first byte in the image.
    public var start: UInt64
    /// Size in bytes.
    public var size: UInt64
    /// The type as the table records it.
    public var type: RegionType
    /// The GPT partition name, or `nil`.
    public var label: String?
    /// The GPT unique partition GUID, or `nil`.
    public var uniqueID: GUID?
    /// The illumos slice number: the VTOC slice, or for a GPT (EFI label) the entry index (p1 is slice 0).
    public var illumosSlice: Int?
    /// The illumos block minor name of the slice (`a` for s0 ... `p` for s15; on EFI labels slice 7 has none
    /// because cmlb gives minor 7 to the whole disk, `wd`). `nil` when there is none.
    public var illumosMinor: String?
    /// The name of the region this one lies inside (the fdisk partition of a slice, the extended partition of a
    /// logical partition), or `nil`.
    public var parent: String?
    /// True for regions that only hold other regions (an extended partition, a Solaris fdisk partition holding an
    /// SMI label); a vdev is not looked for at their start.
    public var isContainer: Bool
    /// True for an MBR partition marked active (boot flag 0x80).
    public var isBootable: Bool

    /// Makes a region; used by the parsers and by callers that give an explicit `OFFSET:SIZE`.
    public init(
        name: String, scheme: PartitionScheme, start: UInt64, size: UInt64, type: RegionType, label: String? = nil,
        uniqueID: GUID? = nil, illumosSlice: Int? = nil, illumosMinor: String? = nil, parent: String? = nil,
        isContainer: Bool = false, isBootable: Bool = false
    ) {
        self.name = name
        self.scheme = scheme
        self.start = start
        self.size = size
        self.type = type
        self.label = label
        self.uniqueID = uniqueID
        self.illumosSlice = illumosSlice
        self.illumosMinor = illumosMinor
        self.parent = parent
        self.isContainer = isContainer
        self.isBootable = isBootable
    }

    /// One past the last byte. Parsed regions always end inside the image, so this cannot overflow for them.
    public var end: UInt64 { start &+ size }

    /// True when a vdev can sit at the start of this region.
    public var isVdevCandidate: Bool { !isContainer && size > 0 }

    public var description: String {
        var text = "\(name) \(scheme.rawValue) start \(start) size \(size) type \(type)"
        if let name = type.name { text += " (\(name))" }
        if let label, !label.isEmpty { text += " name \"\(label)\"" }
        if let illumosSlice { text += " slice s\(illumosSlice)" }
        if let illumosMinor { text += " minor :\(illumosMinor)" }
        if let parent { text += " in \(parent)" }
        if isContainer { text += " [container]" }
        return text
    }
}

/// The whole-disk layouts that `zpool create` writes (zfs-on-disk §9).
public enum ZFSWholeDiskLayout: String, Sendable, Equatable {
    /// illumos `zpool create`: p1 (s0) `EFI_USR` at LBA 256, p9 (s8) `EFI_RESERVED` of 8 MiB.
    case illumos
    /// illumos `zpool create -B`: p1 (s0) EFI System "loader", p2 (s1) `EFI_USR` holding the pool, p9 reserved.
    case illumosBootable
    /// OpenZFS on Linux: p1 `EFI_USR` (named `zfs-<hex>`) at LBA 2048, p9 `EFI_RESERVED` of 8 MiB.
    case linux

    /// The name of the region that holds the pool.
    public var dataPartition: String { self == .illumosBootable ? "p2" : "p1" }
}

/// What the GPT headers said and which of them was used.
public struct GPTSummary: Sendable, Equatable {
    /// The disk GUID.
    public var diskGUID: GUID
    /// The logical sector size the GPT was found with (512 or 4096).
    public var sectorSize: Int
    /// The LBA of the header that was used (1 for the primary).
    public var headerLBA: UInt64
    /// The LBA of the other header, as the used header records it.
    public var alternateLBA: UInt64
    /// First and last LBA usable for partitions.
    public var firstUsableLBA: UInt64
    /// The last LBA usable for partitions.
    public var lastUsableLBA: UInt64
    /// Number of entries in the array and the size of each.
    public var entryCount: UInt32
    /// The size of each entry, in bytes.
    public var entrySize: UInt32
    /// True when the primary header or its entry array was damaged and the backup's was used.
    public var usedBackup: Bool
    /// True when the backup header and its entry array were found intact.
    public var backupIntact: Bool
}

/// Everything found in an image's partition tables.
public struct DiskLayout: Sendable, Equatable {
    /// The image size in bytes.
    public var diskSize: UInt64
    /// The logical sector size the tables were read with (512 or 4096).
    public var sectorSize: Int
    /// The tables found, outermost first: `[.gpt]`, `[.mbr]`, `[.mbr, .vtoc]` or `[.none]`.
    public var schemes: [PartitionScheme]
    /// The GPT details, for a GPT disk.
    public var gpt: GPTSummary?
    /// The MBR disk signature (bytes 440–443), when sector 0 is an MBR.
    public var mbrDiskSignature: UInt32?
    /// The `zpool create` whole-disk layout this GPT matches, if any.
    public var zfsWholeDisk: ZFSWholeDiskLayout?
    /// All regions, in table order (slices follow their fdisk partition).
    public var regions: [DiskRegion]
    /// Problems that did not stop the parse.
    public var warnings: [PartitionWarning]

    /// The regions a vdev can sit in: every region that is not a container.
    public var candidates: [DiskRegion] { regions.filter(\.isVdevCandidate) }

    /// Finds a region by name (case-insensitive). Slices of the first Solaris fdisk partition answer both to
    /// `s0` and to `p1s0` (with that partition's number).
    public func region(named name: String) -> DiskRegion? {
        let wanted = name.lowercased()
        if let region = regions.first(where: { $0.name.lowercased() == wanted }) { return region }
        return regions.first { region in
            region.scheme == .vtoc && region.parent.map { ($0 + region.name).lowercased() } == wanted
        }
    }

    /// Makes a layout value (for tests and explicit `OFFSET:SIZE` selections).
    public init(
        diskSize: UInt64, sectorSize: Int, schemes: [PartitionScheme], gpt: GPTSummary? = nil,
        mbrDiskSignature: UInt32? = nil, zfsWholeDisk: ZFSWholeDiskLayout? = nil, regions: [DiskRegion],
        warnings: [PartitionWarning] = []
    ) {
        self.diskSize = diskSize
        self.sectorSize = sectorSize
        self.schemes = schemes
        self.gpt = gpt
        self.mbrDiskSignature = mbrDiskSignature
        self.zfsWholeDisk = zfsWholeDisk
        self.regions = regions
        self.warnings = warnings
    }
}

/// Knobs for ``DiskLayout/detect(in:options:)``.
public struct DetectionOptions: Sendable, Equatable {
    /// Force the logical sector size (512 or 4096). `nil` probes for `EFI PART` at byte 512, then 4096, and reads
    /// an MBR-only disk with 512-byte sectors.
    public var sectorSize: Int?
    /// The most logical partitions followed in an EBR chain before it counts as a loop.
    public var maxLogicalPartitions: Int

    /// Makes options; the defaults suit every image we know.
    public init(sectorSize: Int? = nil, maxLogicalPartitions: Int = 128) {
        self.sectorSize = sectorSize
        self.maxLogicalPartitions = maxLogicalPartitions
    }
}

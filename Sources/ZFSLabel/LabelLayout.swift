// Virtual device labels
//
// Every leaf vdev (a disk, a partition or slice, a file) carries four copies of a 256 KiB label, two at the
// front and two at the back, so that a write that destroys one end of the device leaves a good copy at the
// other:
//
//     0      256K     512K                                    psize-512K  psize-256K  psize
//     | L0   | L1     | boot area (3.5 MiB) | allocatable ... | L2        | L3        |
//
// `psize` is the size of the leaf aligned *down* to 256 KiB (`vdev_label_offset`), so an image whose size is
// not a multiple of 256 KiB still has L3 ending on a 256 KiB boundary, not at its last byte.
//
// Each label (`vdev_label_t`, include/sys/vdev_impl.h) is:
//
//     0x00000   8 KiB   pad, for a VTOC or boot block; ZFS keeps nothing here
//     0x02000   8 KiB   bootenv block (`vdev_boot_envblock_t`), with an embedded checksum
//     0x04000 112 KiB   the packed XDR config nvlist (`vdev_phys_t`), with an embedded checksum in its
//                       last 40 bytes; the nvlist may use 114 648 bytes and the rest is zero
//     0x20000 128 KiB   the uberblock ring: 2^shift-byte slots, each with its own embedded checksum
//
// All four labels of one leaf hold the same nvlist; only the checksums differ, because each checksum is
// seeded with the byte offset of its own block (see `EmbeddedChecksum`). A label whose checksum fails is
// ignored by ZFS, which is what makes one-label-at-a-time rewrites safe: a torn write is detected, and the
// other labels still carry a complete config.
//
// Invariants an editor must keep (the reasons are in README.md and zfs-on-disk.md §6): never change `txg`,
// any guid, `state`, `version`, `asize`, `ashift` or `metaslab_*`; never touch the uberblocks; keep the
// label's byte order; zero-fill the nvlist area after the packed list; recompute each label's checksum with
// its own offset.

/// Sizes and offsets of the label area (`vdev_label_t`, `include/sys/vdev_impl.h`).
public enum LabelLayout {
    /// Labels per leaf vdev (`VDEV_LABELS`).
    public static let labelCount = 4
    /// Size of one label (`sizeof (vdev_label_t)`).
    public static let labelSize = 256 * 1024
    /// Offset and size of the unused pad at the front of a label (`VDEV_PAD_SIZE`).
    public static let padOffset = 0, padSize = 8 * 1024
    /// Offset and size of the bootenv block (`vl_be`).
    public static let bootenvOffset = 0x2000, bootenvSize = 8 * 1024
    /// Offset and size of the config area (`vl_vdev_phys`, `VDEV_PHYS_SIZE`).
    public static let configOffset = 0x4000, configSize = 112 * 1024
    /// Bytes the packed nvlist may use: the config area less its 40-byte embedded checksum.
    public static let configCapacity = 112 * 1024 - 40
    /// Offset and size of the uberblock ring (`vl_uberblock`, `VDEV_UBERBLOCK_RING`).
    public static let uberblockRingOffset = 0x20000, uberblockRingSize = 128 * 1024
    /// Space at the front of a leaf before allocatable data (`VDEV_LABEL_START_SIZE`): L0, L1, boot area.
    public static let startSize: UInt64 = 4 * 1024 * 1024
    /// Space at the end of a leaf (`VDEV_LABEL_END_SIZE`): L2, L3.
    public static let endSize: UInt64 = 512 * 1024
    /// The smallest leaf that can hold four labels and the boot area.
    public static let minimumVdevSize: UInt64 = startSize + endSize

    /// The leaf size ZFS uses to place L2 and L3: `size` aligned down to 256 KiB.
    public static func alignedSize(_ size: UInt64) -> UInt64 { size & ~UInt64(labelSize - 1) }

    /// The byte offset of label `index` from the start of a leaf of `size` bytes (`vdev_label_offset`).
    ///
    /// - Precondition: `index` is 0...3 and `size` holds four labels.
    public static func labelOffset(_ index: Int, vdevSize size: UInt64) -> UInt64 {
        precondition((0..<labelCount).contains(index), "label index \(index) is not 0...3")
        let psize = alignedSize(size)
        precondition(psize >= UInt64(labelCount * labelSize), "a leaf of \(size) bytes cannot hold four labels")
        let l = UInt64(index * labelSize)
        return index < 2 ? l : psize - UInt64(labelCount * labelSize) + l  // subtract first: no overflow near 2^64
    }

    /// Uberblock slot shift for a top-level vdev's `ashift`: `min(max(ashift, 10), 13)`
    /// (`UBERBLOCK_SHIFT`, `MAX_UBERBLOCK_SHIFT`).
    public static func uberblockShift(ashift: UInt64) -> Int { Int(min(max(ashift, 10), 13)) }
}

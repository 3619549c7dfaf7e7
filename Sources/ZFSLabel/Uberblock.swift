public import ZFSChecksum

/// An uberblock (`struct uberblock`, include/sys/uberblock_impl.h): the root of a pool's block tree as of
/// one transaction group. Each label keeps a ring of them; the pool's state is the best valid one found
/// over every label of every leaf.
public struct Uberblock: Sendable, Hashable {
    /// `UBERBLOCK_MAGIC`.
    public static let magicValue: UInt64 = 0x00ba_b10c
    /// `MMP_MAGIC`: written by every OpenZFS since 0.7.
    public static let mmpMagicValue: UInt64 = 0xa11c_ea11
    /// Bytes of the structure (216); the rest of a slot is zero up to its embedded checksum.
    public static let structSize = 216

    /// The byte order the uberblock was written in.
    public var byteOrder: ByteOrder
    /// SPA version (`ub_version`); 5000 is a feature-flags pool.
    public var version: UInt64
    /// The transaction group it describes (`ub_txg`).
    public var txg: UInt64
    /// Sum of all vdev guids (`ub_guid_sum`), used to detect missing devices.
    public var guidSum: UInt64
    /// Seconds since the epoch, UTC (`ub_timestamp`).
    public var timestamp: UInt64
    /// The 16 words of the MOS block pointer (`ub_rootbp`), in host order.
    public var rootBlockPointer: [UInt64]
    /// Highest SPA version the writer supported (`ub_software_version`).
    public var softwareVersion: UInt64
    /// `ub_mmp_magic`, `ub_mmp_delay`, `ub_mmp_config`: multihost protection.
    public var mmpMagic: UInt64, mmpDelay: UInt64, mmpConfig: UInt64
    /// `ub_checkpoint_txg`.
    public var checkpointTxg: UInt64
    /// `ub_raidz_reflow_info` (OpenZFS 2.3).
    public var raidzReflowInfo: UInt64

    /// Decodes the structure at the start of a slot, or returns `nil` when neither byte order of the magic
    /// is there (an empty or foreign slot).
    public init?(slot bytes: [UInt8]) {
        guard bytes.count >= Self.structSize else { return nil }
        let raw = bytes.loadUInt64(at: 0, .little)
        let order: ByteOrder
        if raw == Self.magicValue { order = .little } else if raw == Self.magicValue.byteSwapped { order = .big } else {
            return nil
        }
        func w(_ i: Int) -> UInt64 { bytes.loadUInt64(at: i * 8, order) }
        byteOrder = order
        version = w(1)
        txg = w(2)
        guidSum = w(3)
        timestamp = w(4)
        rootBlockPointer = (0..<16).map { w(5 + $0) }
        softwareVersion = w(21)
        mmpMagic = w(22)
        mmpDelay = w(23)
        mmpConfig = w(24)
        checkpointTxg = w(25)
        raidzReflowInfo = w(26)
    }

    /// Whether multihost fields are present (`MMP_VALID`: `ub_mmp_magic` is `MMP_MAGIC`, read in the
    /// uberblock's own byte order).
    public var mmpValid: Bool { mmpMagic == Self.mmpMagicValue }

    /// The MMP sequence number (`MMP_SEQ`, bits 32...47 of `ub_mmp_config`) when `MMP_VALID` and
    /// `MMP_SEQ_VALID` (bit 0x02) both hold, else 0: the value `vdev_uberblock_compare` uses, which treats an
    /// uberblock without MMP or without a sequence as sequence 0.
    public var mmpSequence: UInt64 {
        guard mmpValid, mmpConfig & 0x2 != 0 else { return 0 }
        return (mmpConfig >> 32) & 0xFFFF
    }

    /// Whether `version` is one OpenZFS can import (`SPA_VERSION_IS_SUPPORTED`: 1...28 or 5000).
    ///
    /// This is not a filter when the uberblock is chosen: `vdev_uberblock_load` takes the best uberblock
    /// whatever its version, and only then does the import refuse an unsupported one (`ENOTSUP`, "version N is
    /// not supported"), without falling back to an older uberblock.
    public var hasSupportedVersion: Bool { Self.isSupportedVersion(version) }

    /// `SPA_VERSION_IS_SUPPORTED`: 1...28 (`SPA_VERSION_BEFORE_FEATURES`) or 5000 (`SPA_VERSION_FEATURES`).
    public static func isSupportedVersion(_ version: UInt64) -> Bool { (1...28).contains(version) || version == 5000 }

    /// Orders uberblocks as `vdev_uberblock_compare` does: by txg, then timestamp, then MMP sequence (0 when
    /// not valid). Nothing else counts: not the version, not the byte order.
    public func isNewer(than other: Uberblock) -> Bool {
        if txg != other.txg { return txg > other.txg }
        if timestamp != other.timestamp { return timestamp > other.timestamp }
        return mmpSequence > other.mmpSequence
    }
}

/// One slot of a label's uberblock ring, with what its embedded checksum says.
public struct UberblockSlot: Sendable, Hashable {
    /// Slot number in the ring.
    public var index: Int
    /// Byte offset of the slot from the start of the leaf vdev (its checksum verifier).
    public var offset: UInt64
    /// The decoded uberblock, or `nil` when the slot holds no uberblock magic.
    public var uberblock: Uberblock?
    /// The embedded checksum's verdict (`.noMagic` for an empty slot).
    public var checksum: EmbeddedChecksum.Verdict

    /// Whether `vdev_uberblock_load` considers this slot: its label checksum verifies (the read of the slot
    /// succeeds) and `uberblock_verify` accepts its magic in either byte order. The version is not looked at
    /// here; see ``Uberblock/hasSupportedVersion``.
    public var isUsable: Bool { uberblock != nil && checksum.isValid }
}

/// The uberblock ring of one label.
enum UberblockRing {
    /// Parses every slot of a 128 KiB ring.
    ///
    /// - Parameters:
    ///   - ring: the ring's bytes (label offset 0x20000, 128 KiB).
    ///   - ringOffset: the ring's byte offset from the start of the leaf vdev.
    ///   - shift: slot size as a power of two (``LabelLayout/uberblockShift(ashift:)``).
    static func parse(_ ring: [UInt8], ringOffset: UInt64, shift: Int) -> [UberblockSlot] {
        parse(ring, from: 0, count: ring.count, ringOffset: ringOffset, shift: shift)
    }

    /// ``parse(_:ringOffset:shift:)`` of the ring held by `count` bytes of `buffer` from `start` (a whole label,
    /// say), in place: an all-zero slot, as most are, is recognised where it lies and never copied.
    static func parse(_ buffer: [UInt8], from start: Int, count ringBytes: Int, ringOffset: UInt64, shift: Int)
        -> [UberblockSlot]
    {
        let slotSize = 1 << shift
        let count = min(ringBytes, LabelLayout.uberblockRingSize) / slotSize
        var slots: [UberblockSlot] = []
        slots.reserveCapacity(count)
        for i in 0..<count {
            let lo = start + i * slotSize, hi = lo + slotSize
            let offset = ringOffset + UInt64(i * slotSize)
            if buffer.withUnsafeBytes({ isAllZero(UnsafeRawBufferPointer(rebasing: $0[lo..<hi])) }) {
                slots.append(UberblockSlot(index: i, offset: offset, uberblock: nil, checksum: .noMagic))
                continue
            }
            let bytes = Array(buffer[lo..<hi])
            let ub = Uberblock(slot: bytes)
            slots.append(UberblockSlot(index: i, offset: offset, uberblock: ub,
                                       checksum: EmbeddedChecksum.verify(bytes, offset: offset)))
        }
        return slots
    }
}

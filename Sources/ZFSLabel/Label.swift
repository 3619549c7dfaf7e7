public import NVList
public import ZFSChecksum

/// One of the four labels of a leaf vdev, as read.
public struct Label: Sendable, Hashable {
    /// What a label is good for.
    public enum Status: String, Sendable, Hashable, Codable {
        /// The config nvlist unpacks and its embedded checksum matches.
        case valid
        /// The config nvlist unpacks, but its embedded checksum does not match (or is missing); ZFS
        /// ignores such a label.
        case checksumMismatch = "checksum-mismatch"
        /// The config area holds something that is not an nvlist libnvpair would unpack.
        case unreadable
        /// There is no label here: the config area is all zero, or it lies outside the image.
        case absent
    }

    /// Which label: 0 and 1 at the front of the leaf, 2 and 3 at the back.
    public var index: Int
    /// Byte offset of the label from the start of the leaf vdev.
    public var offset: UInt64
    /// The verdict.
    public var status: Status
    /// Why the label is not valid, in words, or `nil` when it is.
    public var problem: String?
    /// Byte offset from the start of the leaf vdev at which the problem was found.
    public var problemOffset: UInt64?
    /// The byte order the label was written in: from the checksum magic, else from the nvlist header.
    public var byteOrder: ByteOrder?
    /// The decoded config, when it unpacks.
    public var config: NVList?
    /// The packed stream's header and length, when the config unpacks.
    public var streamHeader: NVStreamHeader?
    /// The packed list's size in bytes, as libnvpair computes it.
    public var packedSize: Int?
    /// The verdict of the config area's embedded checksum.
    public var configChecksum: EmbeddedChecksum.Verdict
    /// The bootenv block.
    public var bootenv: Bootenv
    /// The uberblock ring's slots.
    public var uberblocks: [UberblockSlot]

    /// The config's `txg`, or 0 when the label has none (spares and cache devices).
    public var txg: UInt64 { config?.uint64("txg") ?? 0 }

    /// Parses a label's config and bootenv from its 256 KiB of bytes; the uberblock ring is read by
    /// ``readUberblocks(from:shift:)`` once the slot size is known.
    ///
    /// - Parameters:
    ///   - bytes: the label, 256 KiB.
    ///   - index: 0...3.
    ///   - offset: the label's byte offset from the start of the leaf vdev.
    public init(bytes: [UInt8], index: Int, offset: UInt64) {
        precondition(bytes.count == LabelLayout.labelSize, "a label is 256 KiB")
        self.init(holding: bytes, at: LabelLayout.configOffset, index: index, offset: offset)
        self.bootenv = Bootenv(
            block: Array(bytes[LabelLayout.bootenvOffset..<(LabelLayout.bootenvOffset + LabelLayout.bootenvSize)]),
            offset: offset + UInt64(LabelLayout.bootenvOffset))
    }

    /// Parses a label's 112 KiB config area alone (its bootenv reads as absent, its ring as empty): enough to
    /// judge a config area about to be written.
    ///
    /// - Parameters:
    ///   - area: the config area, ``LabelLayout/configSize`` bytes.
    ///   - index: 0...3.
    ///   - offset: the label's byte offset from the start of the leaf vdev.
    public init(configArea area: [UInt8], index: Int, offset: UInt64) {
        precondition(area.count == LabelLayout.configSize, "a config area is 112 KiB")
        self.init(holding: area, at: 0, index: index, offset: offset)
    }

    /// Parses the config area that starts at `start` in `buffer`, in place: checksummed, tested for zeros and
    /// decoded where it lies, without a copy of its 112 KiB.
    private init(holding buffer: [UInt8], at start: Int, index: Int, offset: UInt64) {
        self.init(index: index, offset: offset, status: .absent, problem: nil, problemOffset: nil,
                  configChecksum: .noMagic, bootenv: Bootenv(offset: offset + UInt64(LabelLayout.bootenvOffset)),
                  uberblocks: [])
        let areaOffset = offset + UInt64(LabelLayout.configOffset)
        let (verdict, allZero) = buffer.withUnsafeBytes { raw in
            let area = UnsafeRawBufferPointer(rebasing: raw[start..<(start + LabelLayout.configSize)])
            let verdict = EmbeddedChecksum.verify(area, offset: areaOffset)
            guard case .noMagic = verdict else { return (verdict, false) }
            return (verdict, isAllZero(area))
        }
        self.configChecksum = verdict
        if allZero {
            status = .absent
            problem = "the config area is all zero"
            problemOffset = areaOffset
            return
        }
        do {
            let decoded = try NVList.decode(xdr: buffer, in: start..<(start + LabelLayout.configCapacity))
            config = decoded.list
            streamHeader = decoded.header
            packedSize = decoded.byteCount
            switch verdict {
            case .valid(let order):
                status = .valid
                byteOrder = order
            case .mismatch(let order, let stored, let computed):
                status = .checksumMismatch
                byteOrder = order
                problem = "config checksum mismatch: stored \(stored), contents give \(computed)"
                problemOffset = areaOffset + UInt64(LabelLayout.configCapacity)
            case .noMagic:
                status = .checksumMismatch
                byteOrder = decoded.header.hostByteOrder == .little ? .little : .big
                problem = "the config area has no embedded checksum (ZEC_MAGIC missing)"
                problemOffset = areaOffset + UInt64(LabelLayout.configCapacity)
            }
        } catch {
            status = .unreadable
            if case .valid(let order) = verdict { byteOrder = order }
            if case .mismatch(let order, _, _) = verdict { byteOrder = order }
            problem = "config nvlist does not unpack: \(error.detail)" + (error.context.isEmpty ? "" : " in '\(error.context)'")
            problemOffset = areaOffset + UInt64(error.offset)
        }
    }

    /// Reads the label's uberblock ring.
    ///
    /// - Parameters:
    ///   - bytes: the whole label, 256 KiB.
    ///   - shift: slot size as a power of two, from the top-level vdev's ashift.
    public mutating func readUberblocks(from bytes: [UInt8], shift: Int) {
        let start = LabelLayout.uberblockRingOffset
        uberblocks = UberblockRing.parse(bytes, from: start, count: LabelLayout.uberblockRingSize,
                                         ringOffset: offset + UInt64(start), shift: shift)
    }

    /// A label that could not be read at all, for instance because it lies past the end of the image.
    public static func missing(index: Int, offset: UInt64, reason: String) -> Label {
        Label(index: index, offset: offset, status: .absent, problem: reason, problemOffset: offset,
              configChecksum: .noMagic, bootenv: Bootenv(offset: offset + UInt64(LabelLayout.bootenvOffset)),
              uberblocks: [])
    }

    private init(index: Int, offset: UInt64, status: Status, problem: String?, problemOffset: UInt64?,
                 configChecksum: EmbeddedChecksum.Verdict, bootenv: Bootenv, uberblocks: [UberblockSlot])
    {
        self.index = index
        self.offset = offset
        self.status = status
        self.problem = problem
        self.problemOffset = problemOffset
        self.configChecksum = configChecksum
        self.bootenv = bootenv
        self.uberblocks = uberblocks
    }
}

/// The bootenv block of a label (`vdev_boot_envblock_t`): the boot loader's environment, 8 KiB with an
/// embedded checksum. Its version word is always big-endian: 0 is raw GRUB environment text, 1 an nvlist.
public struct Bootenv: Sendable, Hashable {
    /// What the block holds.
    public enum Contents: Sendable, Hashable {
        /// All zero, as ZFS leaves it on a new label.
        case empty
        /// `VB_RAW` (0): text, up to the first NUL.
        case raw(String)
        /// `VB_NVLIST` (1): a packed nvlist.
        case nvlist(NVList)
        /// Something else: an unknown version, or an nvlist that does not unpack.
        case unknown(version: UInt64)
    }

    /// Byte offset of the block from the start of the leaf vdev.
    public var offset: UInt64
    /// The embedded checksum's verdict.
    public var checksum: EmbeddedChecksum.Verdict
    /// The contents.
    public var contents: Contents

    init(offset: UInt64) {
        self.offset = offset
        self.checksum = .noMagic
        self.contents = .empty
    }

    init(block: [UInt8], offset: UInt64) {
        self.offset = offset
        if block.allSatisfy({ $0 == 0 }) {
            checksum = .noMagic
            contents = .empty
            return
        }
        checksum = EmbeddedChecksum.verify(block, offset: offset)
        let version = block.loadUInt64(at: 0, .big)
        let data = Array(block[8..<(block.count - EmbeddedChecksum.size)])
        switch version {
        case 0:
            let text = data.prefix { $0 != 0 }
            contents = .raw(String(decoding: text, as: UTF8.self))
        case 1:
            if let list = try? NVList.decode(xdr: data).list { contents = .nvlist(list) } else {
                contents = .unknown(version: 1)
            }
        default:
            contents = .unknown(version: version)
        }
    }
}

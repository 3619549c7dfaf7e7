public import NVList
import ZFSChecksum

/// The four labels of one leaf vdev, and what they add up to.
public struct VdevLabels: Sendable, Hashable {
    /// Size of the leaf in bytes, as found (a file's size, a partition's length).
    public var vdevSize: UInt64
    /// The four labels, in index order.
    public var labels: [Label]
    /// The best uberblock over all four rings, chosen as ZFS chooses it, or `nil` when none is usable.
    public var activeUberblock: ActiveUberblock?
    /// The `ashift` that sized the uberblock slots (from the top-level vdev in the config; 9 if none).
    public var ashift: UInt64

    /// Where the best uberblock was found.
    public struct ActiveUberblock: Sendable, Hashable {
        /// The label index (0...3) and slot in its ring.
        public var label: Int, slot: Int
        /// Its byte offset from the start of the leaf.
        public var offset: UInt64
        /// The uberblock itself.
        public var uberblock: Uberblock
    }

    /// ``LabelLayout/alignedSize(_:)`` of ``vdevSize``: where L2 and L3 are placed from.
    public var alignedSize: UInt64 { LabelLayout.alignedSize(vdevSize) }

    /// Reads four labels from their bytes.
    ///
    /// - Parameters:
    ///   - labelBytes: four entries, each the 256 KiB of a label, or `nil` when it could not be read.
    ///   - vdevSize: the leaf's size in bytes.
    ///   - missingReason: what to say about a label that is `nil`.
    public init(labelBytes: [[UInt8]?], vdevSize: UInt64, missingReason: (Int) -> String = { _ in "not read" }) {
        precondition(labelBytes.count == LabelLayout.labelCount, "four labels")
        self.vdevSize = vdevSize
        let canHold = LabelLayout.alignedSize(vdevSize) >= UInt64(LabelLayout.labelCount * LabelLayout.labelSize)
        var labels: [Label] = []
        for (i, bytes) in labelBytes.enumerated() {
            let offset = canHold ? LabelLayout.labelOffset(i, vdevSize: vdevSize) : UInt64(i * LabelLayout.labelSize)
            if let bytes, bytes.count == LabelLayout.labelSize {
                labels.append(Label(bytes: bytes, index: i, offset: offset))
            } else {
                labels.append(.missing(index: i, offset: offset, reason: missingReason(i)))
            }
        }
        // Uberblock slots are sized by the top-level vdev's ashift; take it from the first label that
        // unpacks, preferring valid ones, as ZFS sizes them from its in-core top-level vdev.
        let source = labels.first { $0.status == .valid } ?? labels.first { $0.config != nil }
        let ashift = source?.config?.list("vdev_tree")?.uint64("ashift") ?? 9
        self.ashift = ashift
        let shift = LabelLayout.uberblockShift(ashift: ashift)
        for i in labels.indices {
            if let bytes = labelBytes[i], bytes.count == LabelLayout.labelSize {
                labels[i].readUberblocks(from: bytes, shift: shift)
            }
        }
        self.labels = labels
        self.activeUberblock = Self.chooseUberblock(labels)
    }

    /// `vdev_uberblock_load`: over all labels and slots, the usable uberblock (checksum and magic; any
    /// version) with the highest txg, then timestamp, then MMP sequence; the first one found wins a tie.
    /// ZFS starts from a zeroed uberblock and keeps only one that compares greater, so an uberblock whose
    /// txg, timestamp and sequence are all 0 is never chosen.
    static func chooseUberblock(_ labels: [Label]) -> ActiveUberblock? {
        var best: ActiveUberblock?
        for label in labels {
            for slot in label.uberblocks where slot.isUsable {
                let ub = slot.uberblock!
                let isAboveZero = ub.txg != 0 || ub.timestamp != 0 || ub.mmpSequence != 0
                if best == nil ? isAboveZero : ub.isNewer(than: best!.uberblock) {
                    best = ActiveUberblock(label: label.index, slot: slot.index, offset: slot.offset, uberblock: ub)
                }
            }
        }
        return best
    }

    /// The label ZFS would take the config from (`vdev_label_read_config`): among valid labels whose `txg`
    /// is not above the active uberblock's, the one with the greatest `txg`; the lowest index wins a tie.
    public var configLabel: Label? {
        let ceiling = activeUberblock?.uberblock.txg ?? .max
        var best: Label?
        for label in labels where label.status == .valid && label.txg <= ceiling {
            if best == nil || label.txg > best!.txg { best = label }
        }
        return best
    }

    /// The config of ``configLabel``.
    public var config: NVList? { configLabel?.config }

    /// Whether every label is valid and an uberblock is usable: what `zlabel verify` requires.
    public var isHealthy: Bool { labels.allSatisfy { $0.status == .valid } && activeUberblock != nil }

    /// Label indices grouped by identical content, in the way `zdb -l` prints "labels = 0 1 2 3": labels
    /// whose configs are equal share a group; labels without a config each stand alone.
    public var identicalGroups: [[Int]] {
        var groups: [[Int]] = []
        var keys: [NVList] = []
        for label in labels {
            guard let config = label.config else {
                groups.append([label.index])
                keys.append(NVList(flags: [], pairs: [NVPair("\u{1}label", .uint64(UInt64(label.index)))]))
                continue
            }
            if let i = keys.firstIndex(of: config), labels[groups[i][0]].status == label.status {
                groups[i].append(label.index)
            } else {
                groups.append([label.index])
                keys.append(config)
            }
        }
        return groups
    }
}

import NVList
import ZFSChecksum
import ZFSLabel

/// Recomputes the embedded checksum of label config areas whose nvlist unpacks but whose checksum does not
/// match, as `zhack label repair -c` does: the nvlist bytes stay exactly as they are, only the 32 checksum
/// bytes change. Labels whose checksum magic is missing, or whose nvlist lacks `version`, `state` or `guid`,
/// are left alone and reported.
public enum ChecksumRepair {
    /// What happened to one label.
    public struct Outcome: Sendable, Hashable {
        /// The label index, 0...3.
        public var label: Int
        /// Byte offset of the config area in the image.
        public var offset: UInt64
        /// Whether the checksum was rewritten.
        public var repaired: Bool
        /// What was done, or why nothing was.
        public var reason: String
    }

    /// Repairs the labels of the leaf in `region`; with `dryRun` only reports.
    public static func run(image: any ImageStorage, region: VdevRegion, dryRun: Bool = false) throws -> [Outcome] {
        try image.validate(region)
        var outcomes: [Outcome] = []
        var pending: [(Int, UInt64, [UInt8])] = []
        for i in 0..<LabelLayout.labelCount {
            let leafOffset = LabelLayout.labelOffset(i, vdevSize: region.size) + UInt64(LabelLayout.configOffset)
            let offset = region.offset + leafOffset
            var area = try image.read(at: offset, count: LabelLayout.configSize)
            func skip(_ why: String) { outcomes.append(Outcome(label: i, offset: offset, repaired: false, reason: why)) }
            guard let order = EmbeddedChecksum.byteOrder(of: area) else { skip("no checksum magic; not a label zlabel can repair"); continue }
            guard let config = try? NVList.decode(xdr: Array(area[..<LabelLayout.configCapacity])).list else {
                skip("the nvlist does not unpack"); continue
            }
            if let missing = ["version", "state", "guid"].first(where: { config.uint64($0) == nil }) {
                skip("the nvlist has no '\(missing)'"); continue
            }
            if EmbeddedChecksum.verify(area, offset: leafOffset).isValid { skip("checksum already valid"); continue }
            EmbeddedChecksum.seal(&area, offset: leafOffset, order: order)
            pending.append((i, offset, area))
            outcomes.append(Outcome(label: i, offset: offset, repaired: !dryRun, reason: dryRun ? "checksum would be recomputed" : "checksum recomputed"))
        }
        guard !dryRun else { return outcomes }
        for phase in [[0, 2], [1, 3]] {
            for (i, offset, area) in pending where phase.contains(i) { try image.write(area, at: offset) }
            try image.synchronize()
        }
        return outcomes
    }
}

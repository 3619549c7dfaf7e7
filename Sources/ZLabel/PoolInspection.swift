// Reading a pool from the images of its leaves: the labels of each, the best uberblock over all of them, and
// the MOS behind it. The MOS module stays pure; this file is where it meets the images.

public import DiskPartitions
public import NVList
public import ZFSImage
public import ZFSLabel
public import ZFSMOS

/// A pool assembled from images of its leaf vdevs, with its MOS read: what `zlabel inspect --mos` shows.
public struct PoolInspection: Sendable {
    /// One image and the leaves found in it.
    public var reports: [ImageReport]
    /// The pool's name and guid, from the labels.
    public var poolName: String, poolGUID: UInt64
    /// The best uberblock over every leaf's labels (`vdev_uberblock_load`).
    public var uberblock: Uberblock
    /// The guid of the leaf ``uberblock`` was found on.
    public var uberblockLeaf: UInt64
    /// The top-level vdevs, as the label configs describe them.
    public var topology: PoolTopology
    /// What the MOS holds.
    public var mos: MOSContents
    /// Reads the leaves present, by guid.
    public var devices: LeafReader

    /// Reads the labels of every image, puts the leaves of one pool together and reads its MOS.
    ///
    /// - Parameter images: each image with the region selector that picks its vdev (nil: find it).
    /// - Throws: `ImageError` or `PartitionTableError` when an image cannot be read, `MOSError` when
    ///   the images hold no pool or more than one, or when the walk to the MOS config fails.
    public init(images: [(storage: any ImageStorage, selector: RegionSelector?)]) throws {
        var reports: [ImageReport] = []
        var leaves: [(storage: any ImageStorage, region: VdevRegion, labels: VdevLabels, config: NVList)] = []
        for (storage, selector) in images {
            let report = try ImageReport(image: storage, selector: selector)
            reports.append(report)
            for vdev in report.vdevs {
                guard let config = vdev.labels.config else { continue }
                leaves.append((storage, vdev.region, vdev.labels, config))
            }
        }
        let pools = Set(leaves.compactMap { $0.config.uint64("pool_guid") })
        guard let poolGUID = pools.first else {
            throw MOSError(.notFound, "no valid label with a pool_guid in the images given")
        }
        guard pools.count == 1 else {
            let names = leaves.map { "\($0.config.string("name") ?? "?") (\($0.config.uint64("pool_guid") ?? 0))" }
            throw MOSError(.unsupported, "the images hold labels of more than one pool: \(Set(names).sorted().joined(separator: ", ")); give the images of one pool")
        }
        var best: (ub: Uberblock, leaf: UInt64)?
        for leaf in leaves {
            guard let ub = leaf.labels.activeUberblock?.uberblock, let guid = leaf.config.uint64("guid") else { continue }
            if best == nil || ub.isNewer(than: best!.ub) { best = (ub, guid) }
        }
        guard let best else {
            throw MOSError(.notFound, "no usable uberblock in the labels of pool \(poolGUID)")
        }
        var byGUID: [UInt64: (storage: any ImageStorage, region: VdevRegion)] = [:]
        for leaf in leaves {
            if let guid = leaf.config.uint64("guid"), byGUID[guid] == nil { byGUID[guid] = (leaf.storage, leaf.region) }
        }
        let devices = byGUID
        let reader = LeafReader(guids: Set(devices.keys)) { guid, offset, count in
            guard let device = devices[guid] else {
                throw MOSError(.missingDevice, "leaf \(guid) is not among the images given")
            }
            let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
            guard !overflow, end <= device.region.size else {
                throw MOSError(.malformed, "a read of \(count) bytes at \(offset) runs past the end of leaf \(guid) (\(device.region.size) bytes)")
            }
            return try device.storage.read(at: device.region.offset + offset, count: count)
        }
        self.reports = reports
        self.poolGUID = poolGUID
        self.poolName = leaves.first?.config.string("name")?.description ?? ""
        self.uberblock = best.ub
        self.uberblockLeaf = best.leaf
        self.topology = PoolTopology(labelConfigs: leaves.map(\.config))
        self.devices = reader
        self.mos = try MOS.read(rootBlockPointer: BlockPointer(words: best.ub.rootBlockPointer), topology: topology,
                                devices: reader)
    }

    /// Opens the MOS again, for lookups beyond what ``mos`` holds.
    public func objectSet() throws(MOSError) -> ObjectSet {
        try ObjectSet(rootBlockPointer: BlockPointer(words: uberblock.rootBlockPointer),
                      blocks: PoolBlockReader(topology: topology, devices: devices))
    }

    /// Opens each path read-only (`ImageFile.openForReading`: raw, device or VM disk container) and reads the pool.
    ///
    /// - Parameter paths: each image path with its region selector.
    public init(paths: [(path: String, selector: RegionSelector?)]) throws {
        var images: [(storage: any ImageStorage, selector: RegionSelector?)] = []
        for (path, selector) in paths { images.append((try ImageFile.openForReading(path: path), selector)) }
        try self.init(images: images)
    }

    /// The `zlabel inspect --mos --json` object: the `vdevs` of every image, as `zlabel inspect --json`
    /// prints them, and `mos_config`, the MOS config in the same JSON mapping as the label configs.
    public func json(includeUberblocks: Bool = false) -> JSONValue {
        var vdevs: [JSONValue] = []
        for report in reports {
            if case .object(let members) = report.json(includeUberblocks: includeUberblocks),
                let v = members.first(where: { $0.0 == "vdevs" }), case .array(let items) = v.1
            {
                vdevs += items
            }
        }
        return .object([("vdevs", .array(vdevs)), ("mos_config", mos.config.json)])
    }
}

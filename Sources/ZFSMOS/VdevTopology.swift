// From a DVA to bytes on leaf devices
//
// A DVA names a top-level vdev and an offset in its allocatable space. What that means on the leaves
// depends on the top-level vdev's type (module/zfs/vdev_*.c):
//
// - disk, file: the leaf itself; the bytes are at `offset + 4 MiB` (`VDEV_LABEL_START_SIZE`, L0, L1 and the
//   boot area come first).
// - mirror (and the transient replacing and spare vdevs): every child holds the whole block; any child whose
//   copy verifies will do.
// - raidz1–3 (`vdev_raidz_map_alloc`): the block, rounded up to the top-level ashift, is striped over the
//   children in sectors, parity columns first. This reader takes the data columns only, so it needs every
//   data column's child present; it does no parity reconstruction.
//
// Leaves are reached through a ``LeafReader``: the module never opens a file.

public import NVList

/// Reads bytes from the leaf vdevs that are present, by their guid.
///
/// The module stays pure: whoever opened the images supplies this (ZFSImage does it for files and devices).
public struct LeafReader: Sendable {
    /// The guids of the leaves that can be read.
    public var guids: Set<UInt64>
    /// Reads exactly `count` bytes at byte `offset` from the start of leaf `guid` (label area included).
    public var read: @Sendable (_ guid: UInt64, _ offset: UInt64, _ count: Int) throws -> [UInt8]

    /// Creates a reader of the leaves with these guids.
    public init(guids: Set<UInt64>, read: @escaping @Sendable (_ guid: UInt64, _ offset: UInt64, _ count: Int) throws -> [UInt8]) {
        self.guids = guids
        self.read = read
    }
}

/// A vdev in a config's `vdev_tree`: its type, guid and children, and what the block layout needs.
public struct VdevNode: Sendable, Hashable {
    /// `type`: `disk`, `file`, `mirror`, `raidz`, `replacing`, `spare`, `root`, `hole`, `missing`, `draid`…
    public var type: String
    /// `guid`.
    public var guid: UInt64
    /// `id`: for a top-level vdev, the number DVAs use.
    public var id: UInt64?
    /// `ashift`, on top-level vdevs.
    public var ashift: UInt64?
    /// `nparity`, on raidz vdevs (absent before pool version 3, where raidz means raidz1).
    public var nparity: UInt64?
    /// The children, in `children` order.
    public var children: [VdevNode]

    /// Creates a node.
    public init(type: String, guid: UInt64, id: UInt64? = nil, ashift: UInt64? = nil, nparity: UInt64? = nil,
                children: [VdevNode] = []) {
        self.type = type
        self.guid = guid
        self.id = id
        self.ashift = ashift
        self.nparity = nparity
        self.children = children
    }

    /// Parses a `vdev_tree` nvlist, or returns `nil` when it has no `type` or `guid` or nests too deep.
    public init?(config: NVList, depth: Int = 0) {
        guard depth < 8, let type = config.string("type")?.description, let guid = config.uint64("guid") else { return nil }
        var children: [VdevNode] = []
        for child in config.lists("children") ?? [] {
            guard let node = VdevNode(config: child, depth: depth + 1) else { return nil }
            children.append(node)
        }
        self.init(type: type, guid: guid, id: config.uint64("id"), ashift: config.uint64("ashift"),
                  nparity: config.uint64("nparity"), children: children)
    }

    /// Whether this is a leaf (a device that holds labels).
    public var isLeaf: Bool { children.isEmpty && (type == "disk" || type == "file") }

    /// Every leaf's guid under this node.
    public var leafGUIDs: [UInt64] { isLeaf ? [guid] : children.flatMap(\.leafGUIDs) }
}

/// The top-level vdevs a DVA can name, by id, as the label configs of the leaves given describe them.
public struct PoolTopology: Sendable, Hashable {
    /// Top-level vdevs by `id`.
    public var topLevels: [UInt64: VdevNode]

    /// Creates a topology from its top-level vdevs, by `id`.
    public init(topLevels: [UInt64: VdevNode]) { self.topLevels = topLevels }

    /// Builds the topology from label configs: each label's `vdev_tree` is the top-level vdev holding that
    /// leaf. When several labels describe the same top-level id, the one with the highest `txg` wins.
    public init(labelConfigs: [NVList]) {
        var best: [UInt64: (txg: UInt64, node: VdevNode)] = [:]
        for config in labelConfigs {
            guard let tree = config.list("vdev_tree"), let node = VdevNode(config: tree) else { continue }
            let id = node.id ?? 0
            let txg = config.uint64("txg") ?? 0
            if let current = best[id], current.txg >= txg { continue }
            best[id] = (txg, node)
        }
        topLevels = best.mapValues(\.node)
    }
}

/// One way of reading a block's physical bytes: a description for messages, and the read.
struct ReadPlan {
    var description: String
    var read: () throws -> [UInt8]
}

/// One column of a raidz map: which child, where on it, how many bytes.
struct RaidzColumn: Sendable, Hashable {
    var child: Int
    var offset: UInt64
    var size: UInt64
}

/// The raidz block layout (`vdev_raidz_map_alloc`).
enum RaidzMap {
    /// The data columns of a block of `size` bytes at `offset` on a raidz vdev of `children` children with
    /// `parity` parity columns and sector shift `ashift`, in data order.
    ///
    /// `size` is rounded up to the sector size first, as ZFS pads every raidz I/O. Offsets are in the
    /// children's allocatable space (the 4 MiB label area not included).
    ///
    /// - Throws: ``MOSError`` (`.malformed`) for a geometry that cannot be (parity not below the width,
    ///   an ashift out of 9...16, an offset or size that overflows).
    static func dataColumns(offset: UInt64, size: UInt64, children: Int, parity: Int, ashift: UInt64)
        throws(MOSError) -> [RaidzColumn]
    {
        guard (1...3).contains(parity), children > parity, children <= 255, (9...16).contains(ashift) else {
            throw MOSError(.malformed, "raidz geometry of \(children) children, parity \(parity), ashift \(ashift) is not one ZFS writes")
        }
        let sector = UInt64(1) << ashift
        guard size <= UInt64(Decompression.maximumLogicalSize) * 2, offset <= UInt64.max >> 2 else {
            throw MOSError(.malformed, "raidz block of \(size) bytes at \(offset) is out of range")
        }
        let dcols = UInt64(children), nparity = UInt64(parity)
        let b = offset >> ashift
        let s = (size + sector - 1) >> ashift
        let f = b % dcols
        let o = (b / dcols) << ashift
        let q = s / (dcols - nparity)
        let r = s - q * (dcols - nparity)
        let bc = r == 0 ? 0 : r + nparity
        let acols: UInt64, scols: UInt64
        if q == 0 {
            acols = bc
            scols = min(dcols, (bc + nparity) / (nparity + 1) * (nparity + 1))
        } else {
            acols = dcols
            scols = dcols
        }
        var columns: [RaidzColumn] = []
        for c in 0..<scols {
            var col = f + c
            var coff = o
            if col >= dcols {
                col -= dcols
                coff += sector
            }
            let csize: UInt64 = c >= acols ? 0 : (c < bc ? (q + 1) << ashift : q << ashift)
            columns.append(RaidzColumn(child: Int(col), offset: coff, size: csize))
        }
        // Single parity swaps the parity column with the first data column on every other megabyte.
        if nparity == 1, offset & (1 << 20) != 0, columns.count >= 2 {
            let first = columns[0]
            columns[0].child = columns[1].child
            columns[0].offset = columns[1].offset
            columns[1].child = first.child
            columns[1].offset = first.offset
        }
        return Array(columns[parity..<Int(acols)])
    }
}

extension PoolTopology {
    /// The ways of reading `size` bytes at DVA offset `offset` of top-level vdev `vdev`, best first.
    ///
    /// - Throws: ``MOSError`` when the vdev is unknown, of a type this reader does not handle, or a raidz
    ///   data column's child is not present.
    func plans(vdev: UInt64, offset: UInt64, size: Int, devices: LeafReader) throws(MOSError) -> [ReadPlan] {
        guard let top = topLevels[vdev] else {
            throw MOSError(.missingDevice, "top-level vdev \(vdev) is not described by any label of the images given")
        }
        return try Self.plans(node: top, offset: offset, size: UInt64(size), ashift: top.ashift ?? 9, devices: devices)
    }

    private static let labelStart: UInt64 = 4 << 20

    private static func plans(node: VdevNode, offset: UInt64, size: UInt64, ashift: UInt64, devices: LeafReader)
        throws(MOSError) -> [ReadPlan]
    {
        switch node.type {
        case "disk", "file":
            guard devices.guids.contains(node.guid) else { return [] }
            let (leafOffset, overflow) = offset.addingReportingOverflow(labelStart)
            guard !overflow, let count = Int(exactly: size) else {
                throw MOSError(.malformed, "offset \(offset) is out of range")
            }
            let guid = node.guid
            return [ReadPlan(description: "leaf \(guid) at \(hex(leafOffset))") {
                try devices.read(guid, leafOffset, count)
            }]
        case "mirror", "replacing", "spare":
            var out: [ReadPlan] = []
            for child in node.children {
                out += try plans(node: child, offset: offset, size: size, ashift: ashift, devices: devices)
            }
            return out
        case "raidz":
            let parity = Int(node.nparity ?? 1)
            let columns = try RaidzMap.dataColumns(
                offset: offset, size: size, children: node.children.count, parity: parity, ashift: ashift)
            var perColumn: [[ReadPlan]] = []
            for column in columns where column.size > 0 {
                let child = node.children[column.child]
                let p = try plans(node: child, offset: column.offset, size: column.size, ashift: ashift, devices: devices)
                if p.isEmpty {
                    throw MOSError(.unsupported, "raidz\(parity) data column on child \(column.child) (guid \(child.guid)) is not among the images given, and this reader does no parity reconstruction")
                }
                perColumn.append(p)
            }
            // One plan per choice of copy in each column; columns on plain leaves have exactly one.
            var combos: [[ReadPlan]] = [[]]
            for options in perColumn {
                combos = combos.flatMap { prefix in options.map { prefix + [$0] } }
                if combos.count > 8 { combos = Array(combos.prefix(8)) }
            }
            let wanted = Int(size)
            return combos.map { parts in
                ReadPlan(description: "raidz\(parity) " + parts.map(\.description).joined(separator: " + ")) {
                    var bytes: [UInt8] = []
                    for part in parts { bytes += try part.read() }
                    return Array(bytes.prefix(wanted))
                }
            }
        default:
            throw MOSError(.unsupported, "vdev type '\(node.type)' (guid \(node.guid)) is not supported by this reader")
        }
    }
}

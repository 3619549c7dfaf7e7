// What a ZFS boot loader computes from a root pool's labels and MOS, and passes to an illumos kernel:
// `zfs-bootfs=POOL/OBJ` (OBJ = the bootfs dataset's object number) with `bootpath` (a phys_path) and
// `diskdevid` (a devid), by each loader's own rules (zfs-on-disk.md §7, ec2-boot-devices.md §4):
//
// - illumos loader (`libsa/zfs`, OmniOS's today): the label with the highest txg; the boot vdev is the leaf
//   it read, and each of bootpath and diskdevid is set only when that leaf has it. It also passes the pool
//   guid (`zfs-bootpool`) and the boot vdev guid (`zfs-bootvdev`). It refuses vdev types other than disk,
//   mirror, raidz, replacing, indirect and hole, and without a `bootfs` property it boots the root dataset.
//   Checked against the loader's own code in `Tests/Oracle/loader-golden/illumos.json`.
// - legacy GRUB 0.97 / pv-grub (illumos `fsys_zfs.c`, as in aszeszo/pv-grub): labels 0 to 3 in order, the
//   first it accepts, with no check of the label checksum. It accepts a label only when its nvlist was packed
//   little-endian, the pool is not destroyed, txg is not 0, the version is one it knows, a `disk` leaf (under
//   mirror, replacing or spare vdevs; not offline, faulted or removed) has the label's own `guid`, every
//   `features_for_read` entry is one it reads (only `org.illumos:lz4_compress`), and the label's best
//   uberblock leads to a MOS object set block it can hold (2048 bytes: ZFS since project quotas writes 4096).
//   That leaf's phys_path and devid are copied when present, and `$ZFS-BOOTFS` fails when both are missing.
//   Checked against pv-grub's own code in `Tests/Oracle/loader-golden/pv-grub.json`.
// - GRUB 2 (`zfsinfo.c` `get_bootpath`): the first label whose checksum holds (labels 2 and 3 only when the
//   device's sector count is a multiple of 262144); a `disk` top-level vdev is used, a `mirror` gives its
//   first child with both keys; bootpath and diskdevid come only together. Other types give neither.

import NVList
public import ZFSLabel
public import ZFSMOS

/// A boot loader that can read a ZFS root pool.
public enum BootLoader: String, Sendable, CaseIterable {
    /// The illumos (FreeBSD-derived) loader, OmniOS's since r151022.
    case illumos
    /// Legacy Solaris GRUB 0.97 as in pv-grub (Xen PV guests on EC2).
    case pvGrub = "pv-grub"
    /// GNU GRUB 2.
    case grub2
}

/// What one loader computes for a pool, and whether the kernel it starts can find the root pool.
public struct BootView: Sendable, Hashable {
    /// The loader whose rules were applied.
    public var loader: BootLoader
    /// The pool name.
    public var pool: String
    /// The bootfs dataset (pool property `bootfs`), when set.
    public var bootfs: DatasetReference?
    /// The label the loader reads (index on the boot device).
    public var label: Int?
    /// The leaf vdev the values come from, by guid.
    public var bootVdevGUID: UInt64?
    /// `bootpath` (the leaf's `phys_path`) and `diskdevid` (its `devid`), when the loader passes them.
    public var bootpath: String?, diskdevid: String?
    /// The illumos loader's `zfs-bootpool` (pool guid) and `zfs-bootvdev` (boot vdev guid).
    public var poolGUID: UInt64?, vdevGUID: UInt64?
    /// The string passed to the kernel, `zfs-bootfs=POOL/OBJ[,bootpath="…"][,diskdevid="…"]`, or `nil` when
    /// the loader computes none.
    public var bootfsArgument: String?
    /// Why the loader or the kernel will not get to the root pool; empty when nothing stops it.
    public var problems: [String]
    /// Things worth knowing that do not stop the boot.
    public var notes: [String]

    /// Whether the loader computes its argument and nothing in ``problems`` stops the boot.
    public var canBoot: Bool { bootfsArgument != nil && problems.isEmpty }

    /// What `loader` computes when it boots from the leaf in `labels` (the boot device), for a pool whose
    /// MOS says `bootfs`.
    ///
    /// - Parameters:
    ///   - loader: the boot loader whose rules apply.
    ///   - labels: the boot device's four labels.
    ///   - bootfs: the pool's bootfs dataset from the MOS, or `nil` when the property is not set.
    ///   - rootDataset: the pool's root dataset from the MOS, which the illumos loader boots when `bootfs` is not
    ///     set; `nil` when unknown.
    public init(loader: BootLoader, labels: VdevLabels, bootfs: DatasetReference?, rootDataset: DatasetReference? = nil) {
        self.loader = loader
        self.bootfs = bootfs
        problems = []
        notes = []
        var bootfs = bootfs
        var bootsRootDataset = false
        if loader == .illumos, bootfs == nil, let rootDataset {
            // zfs_get_root: without a bootfs property, the root dataset.
            bootfs = rootDataset
            self.bootfs = rootDataset
            bootsRootDataset = true
        }
        pool = ""

        // Which label the loader reads.
        let chosen: Label?
        switch loader {
        case .illumos:
            chosen = labels.configLabel
        case .pvGrub:
            var refusals: [(label: Int, why: String)] = []
            var accepted: Label?
            for candidate in labels.labels {
                if let why = Self.pvGrubRefusal(candidate) {
                    refusals.append((candidate.index, why))
                } else {
                    accepted = candidate
                    break
                }
            }
            chosen = accepted
            if let c = accepted, c.status != .valid {
                notes.append("label \(c.index) does not verify; legacy GRUB does not check label checksums and reads it anyway")
            }
            if accepted == nil {
                // One problem per distinct reason, naming the labels it applies to.
                var order: [String] = []
                var which: [String: [Int]] = [:]
                for r in refusals {
                    if which[r.why] == nil { order.append(r.why) }
                    which[r.why, default: []].append(r.label)
                }
                for why in order {
                    let ids = which[why, default: []]
                    problems.append("pv-grub refuses label\(ids.count == 1 ? "" : "s") \(ids.map(String.init).joined(separator: ", ")): \(why)")
                }
            }
        case .grub2:
            let sectors = labels.vdevSize / 512
            let reachable = sectors % 262_144 == 0 ? 4 : 2
            chosen = labels.labels.prefix(reachable).first { label in
                // GRUB's own uberblock check also wants a supported version, unlike ZFS's selection.
                label.status == .valid && label.uberblocks.contains { $0.isUsable && $0.uberblock!.hasSupportedVersion }
            }
            if reachable == 2 { notes.append("GRUB 2 finds labels 2 and 3 only on devices whose sector count is a multiple of 262144, so it reads labels 0 and 1 only") }
        }
        guard let label = chosen, let config = label.config else {
            problems.append("the loader finds no label it accepts on the boot device")
            return
        }
        self.label = label.index
        pool = config.string("name")?.description ?? ""
        let ownGUID = config.uint64("guid")
        guard let tree = config.list("vdev_tree") else {
            problems.append("label \(label.index) has no vdev_tree")
            return
        }

        var leaf: NVList?
        switch loader {
        case .illumos:
            if let type = Self.illumosUnbootableType(tree) {
                // vdev_init: the loader refuses the whole label.
                problems.append("the illumos loader can only boot from disk, mirror, raidz1, raidz2 and raidz3 vdevs, got: \(type)")
                return
            }
            leaf = Self.findLeaf(tree, guid: ownGUID)
            poolGUID = config.uint64("pool_guid")
            vdevGUID = ownGUID
            bootpath = leaf?.string("phys_path")?.description
            diskdevid = leaf?.string("devid")?.description
        case .pvGrub:
            // The label was accepted, so this leaf exists; an empty string counts as absent.
            leaf = Self.legacyLeaf(tree, guid: ownGUID)
            bootpath = leaf?.string("phys_path").map(\.description).flatMap { $0.isEmpty ? nil : $0 }
            diskdevid = leaf?.string("devid").map(\.description).flatMap { $0.isEmpty ? nil : $0 }
            if leaf != nil && bootpath == nil && diskdevid == nil {
                problems.append("the leaf has neither phys_path nor devid: legacy GRUB's $ZFS-BOOTFS fails with ERR_NO_BOOTPATH")
            }
        case .grub2:
            let (p, d) = Self.grub2Bootpath(tree, depth: 0)
            bootpath = p
            diskdevid = d
            if p == nil { notes.append("GRUB 2 passes bootpath and diskdevid only for a disk (or a mirror child) that has both phys_path and devid") }
        }
        if loader != .pvGrub { leaf = leaf ?? Self.findLeaf(tree, guid: ownGUID) }
        bootVdevGUID = ownGUID

        guard let bootfs else {
            problems.append("the pool has no bootfs property: there is no root dataset to pass as zfs-bootfs")
            return
        }
        if bootsRootDataset {
            notes.append("the pool has no bootfs property: the illumos loader boots the pool's root dataset (object \(bootfs.object))")
        }
        if loader == .pvGrub && bootpath == nil && diskdevid == nil { return }
        var argument = "zfs-bootfs=\(pool)/\(bootfs.object)"
        if let bootpath { argument += ",bootpath=\"\(bootpath)\"" }
        if let diskdevid { argument += ",diskdevid=\"\(diskdevid)\"" }
        bootfsArgument = argument
        if bootpath == nil && diskdevid == nil {
            notes.append("no bootpath and no diskdevid: the kernel opens neither and must find the root pool by scanning (illumos 7119 or later)")
        } else if loader == .pvGrub {
            notes.append("pv-grub passes no guids: the kernel opens the root device by diskdevid, then by bootpath, so one of them must name the disk as the guest sees it")
        }
    }

    /// The only read feature pv-grub knows (`spa_feature_names` in its `fsys_zfs.c`).
    static let pvGrubReadFeatures: Set<String> = ["org.illumos:lz4_compress"]
    /// The size of pv-grub's `objset_phys_t`, the buffer it reads the MOS object set block into.
    static let pvGrubObjsetBytes: UInt64 = 2048
    /// Compressions pv-grub decompresses: on (lzjb), off, lzjb and lz4.
    static let pvGrubCompressions: Set<UInt64> = [1, 2, 3, 15]

    /// Why pv-grub's `zfs_mount` skips `label` (`check_pool_label`, `find_bestub` and the MOS read), or `nil`
    /// when it mounts the pool from it. The MOS's own `features_for_read` is taken to agree with the label's.
    public static func pvGrubRefusal(_ label: Label) -> String? {
        guard let config = label.config else {
            return "its nvlist does not unpack (\(label.problem ?? "no label"))"
        }
        if label.streamHeader?.hostByteOrder == .big {
            return "its nvlist was packed big-endian; pv-grub reads only nvlists packed on a little-endian host"
        }
        guard let state = config.uint64("state"), config.string("name") != nil, let txg = config.uint64("txg") else {
            return "state, name or txg is missing (ERR_FSYS_CORRUPT)"
        }
        if state == 2 { return "the pool is destroyed" }
        if txg == 0 { return "txg is 0: not an active device" }
        guard let version = config.uint64("version") else { return "version is missing (ERR_FSYS_CORRUPT)" }
        guard (1...28).contains(version) || version == 5000 else {
            return "pool version \(version) is newer than pv-grub supports (ERR_NEWER_VERSION)"
        }
        guard let tree = config.list("vdev_tree"), let guid = config.uint64("guid"), tree.uint64("ashift") != nil else {
            return "vdev_tree, guid or the vdev's ashift is missing (ERR_FSYS_CORRUPT)"
        }
        guard legacyLeaf(tree, guid: guid) != nil else {
            return "no usable disk leaf has the label's own guid \(guid): pv-grub boots from disk leaves of single-disk "
                + "and mirror pools only (ERR_NO_BOOTPATH)"
        }
        guard config.uint64("pool_guid") != nil else { return "pool_guid is missing (ERR_FSYS_CORRUPT)" }
        if let features = config.list("features_for_read") {
            let unknown = features.pairs.map(\.name).filter { !pvGrubReadFeatures.contains($0) }
            if let first = unknown.first {
                return "features_for_read lists \(unknown.joined(separator: ", ")), and pv-grub reads only "
                    + "org.illumos:lz4_compress (\"missing feature for read '\(first)'\", ERR_NEWER_VERSION)"
            }
        }
        var best: Uberblock?
        for slot in label.uberblocks {
            guard slot.isUsable, let ub = slot.uberblock, ub.byteOrder == .little else { continue }
            if let b = best, (ub.txg, ub.timestamp) <= (b.txg, b.timestamp) { continue }
            best = ub
        }
        guard let ub = best, ub.rootBlockPointer.count > 6 else {
            return "its uberblock ring holds no uberblock pv-grub accepts (checksum, little-endian magic, supported version)"
        }
        let prop = ub.rootBlockPointer[6]
        let lsize = ((prop & 0xffff) + 1) << 9
        let compression = (prop >> 32) & 0xff
        guard pvGrubCompressions.contains(compression) else {
            return "the MOS object set block (txg \(ub.txg)) uses compression \(compression), which pv-grub cannot decompress"
        }
        guard lsize <= pvGrubObjsetBytes else {
            return "the MOS object set block (txg \(ub.txg)) is \(lsize) bytes, and pv-grub reads it into a "
                + "\(pvGrubObjsetBytes)-byte objset_phys_t (\"not enough memory allocated\"); ZFS writes 4096-byte "
                + "object set blocks since project quotas (OpenZFS 0.8, illumos 2018)"
        }
        return nil
    }

    /// The first vdev type in `tree` the illumos loader's `vdev_init` refuses, or `nil`.
    static func illumosUnbootableType(_ tree: NVList, depth: Int = 0) -> String? {
        guard depth < 8 else { return nil }
        let type = tree.string("type")?.description ?? ""
        guard ["mirror", "disk", "raidz", "indirect", "replacing", "hole"].contains(type) else { return type }
        for child in tree.lists("children") ?? [] {
            if let bad = illumosUnbootableType(child, depth: depth + 1) { return bad }
        }
        return nil
    }

    /// The leaf with `guid` anywhere in `tree`.
    static func findLeaf(_ tree: NVList, guid: UInt64?, depth: Int = 0) -> NVList? {
        guard let guid, depth < 8 else { return nil }
        if tree.uint64("guid") == guid && (tree.lists("children") ?? []).isEmpty { return tree }
        for child in tree.lists("children") ?? [] {
            if let found = findLeaf(child, guid: guid, depth: depth + 1) { return found }
        }
        return nil
    }

    /// Legacy GRUB's `vdev_get_bootpath`: a `disk` leaf with the label's guid, not offline, faulted or
    /// removed, directly or under mirror, replacing or spare vdevs.
    static func legacyLeaf(_ tree: NVList, guid: UInt64?, depth: Int = 0) -> NVList? {
        guard let guid, depth < 8, let type = tree.string("type") else { return nil }
        if type == "disk" {
            for flag in ["offline", "faulted", "removed"] where (tree.uint64(flag) ?? 0) != 0 { return nil }
            return tree.uint64("guid") == guid ? tree : nil
        }
        guard ["mirror", "replacing", "spare"].contains(type) else { return nil }
        for child in tree.lists("children") ?? [] {
            if let found = legacyLeaf(child, guid: guid, depth: depth + 1) { return found }
        }
        return nil
    }

    /// GRUB 2's `get_bootpath`.
    static func grub2Bootpath(_ tree: NVList, depth: Int) -> (String?, String?) {
        guard depth < 8, let type = tree.string("type") else { return (nil, nil) }
        if type == "disk" {
            guard let p = tree.string("phys_path"), let d = tree.string("devid") else { return (nil, nil) }
            return (p.description, d.description)
        }
        guard type == "mirror" else { return (nil, nil) }
        for child in tree.lists("children") ?? [] {
            let (p, d) = grub2Bootpath(child, depth: depth + 1)
            if p != nil && d != nil { return (p, d) }
        }
        return (nil, nil)
    }
}

extension PoolInspection {
    /// What `loader` computes when booting from the first leaf of the first image (the boot disk).
    public func bootView(loader: BootLoader) -> BootView {
        guard let first = reports.first?.vdevs.first else {
            var view = BootView(loader: loader, labels: VdevLabels(labelBytes: [nil, nil, nil, nil], vdevSize: 0), bootfs: nil)
            view.problems = ["no vdev in the boot image"]
            return view
        }
        var view = BootView(loader: loader, labels: first.labels, bootfs: mos.bootfs, rootDataset: mos.rootDataset)
        if let problem = mos.bootfsProblem { view.problems.append(problem) }
        return view
    }
}

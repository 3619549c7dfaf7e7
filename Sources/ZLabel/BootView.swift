// What a ZFS boot loader computes from a root pool's labels and MOS, and passes to an illumos kernel:
// `zfs-bootfs=POOL/OBJ` (OBJ = the bootfs dataset's object number) with `bootpath` (a phys_path) and
// `diskdevid` (a devid), by each loader's own rules (zfs-on-disk.md §7, ec2-boot-devices.md §4):
//
// - illumos loader (`libsa/zfs`, OmniOS's today): the label with the highest txg; the boot vdev is the leaf
//   it read, and each of bootpath and diskdevid is set only when that leaf has it. It also passes the pool
//   guid (`zfs-bootpool`) and the boot vdev guid (`zfs-bootvdev`).
// - legacy GRUB 0.97 / pv-grub (illumos `fsys_zfs.c`): labels 0 and 1 only, no checksum check; the disk leaf
//   whose guid is the label's own `guid` (skipping offline, faulted and removed leaves); each value is
//   copied when present, and `$ZFS-BOOTFS` fails when both are missing.
// - GRUB 2 (`zfsinfo.c` `get_bootpath`): the first label whose checksum holds (labels 2 and 3 only when the
//   device's sector count is a multiple of 262144); a `disk` top-level vdev is used, a `mirror` gives its
//   first child with both keys; bootpath and diskdevid come only together. Other types give neither.

public import NVList
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

    /// The view as text: the argument, then one `key=value` line per field.
    public var text: String {
        var out = ""
        out += "loader=\(loader.rawValue)\n"
        if let bootfsArgument { out += "\(bootfsArgument)\n" }
        out += "pool=\(pool)\n"
        out += "bootfs=\(bootfs.map { "\($0.name) (object \($0.object))" } ?? "")\n"
        out += "bootpath=\(bootpath ?? "")\n"
        out += "diskdevid=\(diskdevid ?? "")\n"
        if loader == .illumos {
            out += "zfs-bootpool=\(poolGUID.map(String.init) ?? "")\n"
            out += "zfs-bootvdev=\(vdevGUID.map(String.init) ?? "")\n"
        }
        out += "can-boot=\(canBoot ? "yes" : "no")\n"
        for p in problems { out += "problem: \(p)\n" }
        for n in notes { out += "note: \(n)\n" }
        return out
    }

    /// The view as a JSON object.
    public var json: JSONValue {
        func opt(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        func opt(_ v: UInt64?) -> JSONValue { v.map(JSONValue.uint) ?? .null }
        return .object([
            ("loader", .string(loader.rawValue)), ("pool", .string(pool)),
            ("bootfs", bootfs.map { .object([("name", .string($0.name)), ("object", .uint($0.object))]) } ?? .null),
            ("label", label.map { .uint(UInt64($0)) } ?? .null), ("bootVdevGUID", opt(bootVdevGUID)),
            ("bootpath", opt(bootpath)), ("diskdevid", opt(diskdevid)),
            ("poolGUID", opt(poolGUID)), ("vdevGUID", opt(vdevGUID)),
            ("zfsBootfs", opt(bootfsArgument)), ("canBoot", .bool(canBoot)),
            ("problems", .array(problems.map(JSONValue.string))), ("notes", .array(notes.map(JSONValue.string))),
        ])
    }

    /// What `loader` computes when it boots from the leaf in `labels` (the boot device), for a pool whose
    /// MOS says `bootfs`.
    ///
    /// - Parameters:
    ///   - loader: the boot loader whose rules apply.
    ///   - labels: the boot device's four labels.
    ///   - bootfs: the pool's bootfs dataset from the MOS, or `nil` when the property is not set.
    public init(loader: BootLoader, labels: VdevLabels, bootfs: DatasetReference?) {
        self.loader = loader
        self.bootfs = bootfs
        problems = []
        notes = []
        pool = ""

        // Which label the loader reads.
        let chosen: Label?
        switch loader {
        case .illumos:
            chosen = labels.configLabel
        case .pvGrub:
            chosen = labels.labels.prefix(2).first { $0.config != nil }
            if let c = chosen, c.status != .valid {
                notes.append("label \(c.index) does not verify; legacy GRUB does not check label checksums and reads it anyway")
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
        pool = config.string("name") ?? ""
        let ownGUID = config.uint64("guid")
        guard let tree = config.list("vdev_tree") else {
            problems.append("label \(label.index) has no vdev_tree")
            return
        }

        var leaf: NVList?
        switch loader {
        case .illumos:
            leaf = Self.findLeaf(tree, guid: ownGUID)
            poolGUID = config.uint64("pool_guid")
            vdevGUID = ownGUID
            bootpath = leaf?.string("phys_path")
            diskdevid = leaf?.string("devid")
        case .pvGrub:
            leaf = Self.legacyLeaf(tree, guid: ownGUID)
            if leaf == nil {
                problems.append("legacy GRUB finds no usable disk leaf whose guid is the label's own (\(ownGUID.map(String.init) ?? "none")); it supports disk leaves of single-disk and mirror pools only")
            }
            bootpath = leaf?.string("phys_path")
            diskdevid = leaf?.string("devid")
            if leaf != nil && bootpath == nil && diskdevid == nil {
                problems.append("the leaf has neither phys_path nor devid: legacy GRUB's $ZFS-BOOTFS fails with ERR_NO_BOOTPATH")
            }
            if let version = config.uint64("version"), version > 28 {
                notes.append("pool version \(version): a legacy GRUB built before feature flags refuses it")
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
            return (p, d)
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
        var view = BootView(loader: loader, labels: first.labels, bootfs: mos.bootfs)
        if let problem = mos.bootfsProblem { view.problems.append(problem) }
        return view
    }
}

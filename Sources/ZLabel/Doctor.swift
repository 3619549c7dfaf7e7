// `zlabel doctor`: the three copies of a leaf's device strings side by side, and what they mean.
//
// A leaf vdev's `phys_path`, `path` and `devid` live in each of its four labels and again in the pool's own
// config in the MOS. A boot goes by the labels: the loader reads one and passes `phys_path` as bootpath, and
// the kernel's root import reads the label of the disk it opened (ec2-boot-devices.md §3–4). A `zpool import`
// goes by the MOS: it loads the config stored there and, at its next sync, writes it into every label (OpenZFS
// up to 2.2.2 copies only `path` back from the labels first). A boot target adds a third opinion: the device the
// instance will actually see. The diagnosis compares the three and says, in plain words, which disagreement
// stops a boot or an import, and which `zlabel set` command fixes it.

public import BootTargets
public import DiskPartitions
public import NVList
public import ZFSImage
import ZFSLabel
import ZFSMOS

/// A diagnosis of a pool's labels against its MOS config and, optionally, an EC2 boot target.
public struct Diagnosis: Sendable {
    /// How much a finding matters.
    public enum Severity: String, Sendable, Hashable, Comparable, CaseIterable {
        /// Worth knowing; nothing breaks.
        case note
        /// Nothing breaks now, but an import elsewhere or a later step behaves in a way the user may not expect.
        case warning
        /// The boot on the target, or an import, fails (or only works through a fallback) as things are.
        case problem

        public static func < (a: Severity, b: Severity) -> Bool { a.order < b.order }
        private var order: Int {
            switch self {
            case .note: 0
            case .warning: 1
            case .problem: 2
            }
        }
    }

    /// What a finding is about; stable names for scripts (the JSON `kind`).
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A label or uberblock that does not verify.
        case labelDamage = "label-damage"
        /// The valid labels of one leaf hold different values for a field.
        case labelsDisagree = "labels-disagree"
        /// The MOS config holds a different value for a field than the labels.
        case mosDiffers = "mos-differs"
        /// The MOS config has no leaf with this guid.
        case mosMissingLeaf = "mos-missing-leaf"
        /// The MOS could not be read from the images given.
        case mosUnreadable = "mos-unreadable"
        /// The labels' `phys_path` is not the device the target's instance sees.
        case targetPhysPath = "target-phys-path"
        /// The labels' `path` is not the name devfsadm gives the disk on the target.
        case targetPath = "target-path"
        /// The labels carry a devid, which the target's disk will not have.
        case targetDevid = "target-devid"
        /// The target's loader computes no usable boot arguments.
        case bootFails = "boot-fails"
        /// The leaf has neither `phys_path` nor `devid`.
        case noBootpath = "no-bootpath"
        /// No label of the image unpacks: it is not a ZFS vdev (or not the right partition of a disk).
        case noVdev = "no-vdev"
        /// The pool was not exported and names a host.
        case foreignHost = "foreign-host"
        /// The pool is ACTIVE and names no host.
        case active = "active"
        /// The labels say the pool was destroyed.
        case destroyed = "destroyed"
    }

    /// One observation, in plain words, with the command that fixes it when there is one.
    public struct Finding: Sendable, Hashable {
        public var severity: Severity
        public var kind: Kind
        /// The leaf it concerns, by guid; `nil` for the pool as a whole.
        public var leaf: UInt64?
        public var message: String
        /// A `zlabel` command line that fixes it.
        public var fix: String?

        public init(severity: Severity, kind: Kind, leaf: UInt64? = nil, message: String, fix: String? = nil) {
            self.severity = severity
            self.kind = kind
            self.leaf = leaf
            self.message = message
            self.fix = fix
        }
    }

    /// One value of a field and the labels that hold it.
    public struct LabelGroup: Sendable, Hashable {
        /// The value, with its exact bytes (which need not be UTF-8); `nil` when the pair is absent.
        public var value: NVString?
        /// The indices of the valid labels that hold it.
        public var labels: [Int]
    }

    /// One device string of one leaf: what its labels, the MOS and the target say.
    public struct Field: Sendable, Hashable {
        /// `phys_path`, `path` or `devid`.
        public var name: String
        /// Each distinct value the valid labels hold, with the label indices.
        public var labels: [LabelGroup]
        /// The MOS copy (`.some(nil)`: absent there); `nil` when the MOS was not read or lacks the leaf.
        public var mos: NVString??
        /// What the target implies; `nil` when no target was given or it leaves the field alone.
        public var target: LabelChange?
        /// The value ZFS and the loaders use: that of the label the config is read from.
        public var effective: NVString?
    }

    /// One leaf vdev found in the images.
    public struct Leaf: Sendable, Equatable {
        public var guid: UInt64
        /// The image it was found in, and the partition or slice (if any).
        public var image: String, region: VdevRegion
        /// `phys_path`, `path` and `devid`, in that order.
        public var fields: [Field]
        /// Whether the MOS config has a leaf with this guid (`nil`: the MOS was not read).
        public var inMOS: Bool?
        /// The leaf the target applies to (the boot disk: the first image's leaf).
        public var isBootDisk: Bool
    }

    /// The pool, as the labels name it.
    public var pool: String, poolGUID: UInt64?
    /// The target diagnosed against, and its plan for the boot disk.
    public var target: BootTargetPlan?
    /// The loader the target boots with.
    public var loader: BootLoader?
    /// Every leaf found, the boot disk first.
    public var leaves: [Leaf]
    /// What the target's loader computes, when a target was given.
    public var bootView: BootView?
    /// Everything found, most severe first.
    public var findings: [Finding]

    /// Whether nothing stops the boot or an import (notes and warnings allowed).
    public var isClean: Bool { !findings.contains { $0.severity == .problem } }

    /// The loader an EC2 target boots with: pv-grub on Xen PV, the illumos loader elsewhere.
    public static func loader(for target: BootTarget) -> BootLoader {
        target == .ec2XenPV ? .pvGrub : .illumos
    }

    /// The boot verdict `doctor` and `ec2 publish` share: what `target`'s loader computes from the boot disk's
    /// `labels`; its ``BootView/problems`` are what stops the boot.
    ///
    /// - Parameters:
    ///   - target: the EC2 boot target; it picks the loader.
    ///   - labels: the boot disk's labels (for publish: as the edit will leave them).
    ///   - pool: the pool, for its MOS `bootfs`; `nil` when the MOS could not be read, and then the bootfs is not
    ///     judged.
    public static func bootVerdict(target: BootTarget, labels: VdevLabels, pool: PoolInspection?) -> BootView {
        let loader = loader(for: target)
        guard let pool else {
            var view = BootView(loader: loader, labels: labels, bootfs: nil)
            view.problems.removeAll { $0.contains("bootfs") }
            return view
        }
        var view = BootView(loader: loader, labels: labels, bootfs: pool.mos.bootfs, rootDataset: pool.mos.rootDataset)
        if let problem = pool.mos.bootfsProblem { view.problems.append(problem) }
        return view
    }
}

// MARK: - Diagnosing

extension Diagnosis {
    /// Diagnoses the pool in `images` (the boot disk first, then its other members).
    ///
    /// - Parameters:
    ///   - images: each image, its name for messages (its path) and the selector that picks its vdev.
    ///   - target: the EC2 boot target to check the boot disk against, or `nil` for labels against MOS only.
    ///   - device: with a target, the root device name the AMI registers (the target's default when `nil`).
    /// - Throws: `ImageError` or `PartitionTableError` when an image cannot be read, `BootTargetError`
    ///   for a device name the target cannot use or a boot disk in a partition without a minor node. A MOS that
    ///   cannot be read is a finding, not an error.
    public init(
        images: [(storage: any ImageStorage, name: String, selector: RegionSelector?)],
        target: BootTarget? = nil, device: XenDeviceName? = nil
    ) throws {
        var findings: [Finding] = []
        var inspection: PoolInspection?
        var imageReports: [ImageReport]
        do {
            let pool = try PoolInspection(images: images.map { ($0.storage, $0.selector) })
            inspection = pool
            imageReports = pool.reports
        } catch {
            // Read the labels alone: an image that cannot be read throws here; otherwise only the MOS failed.
            imageReports = try images.map { try ImageReport(image: $0.storage, selector: $0.selector) }
            findings.append(Finding(
                severity: .warning, kind: .mosUnreadable,
                message: "the pool's MOS could not be read from the images given, so the labels are not compared "
                    + "with the pool's own config: \(error)"))
        }
        let reports = zip(images, imageReports).map { (name: $0.name, selector: $0.selector, report: $1) }
        let mosLeaves = inspection.map { Dictionary($0.mos.config.vdevLeaves.map { ($0.guid, $0) }, uniquingKeysWith: { a, _ in a }) }

        var leaves: [Leaf] = []
        var plan: BootTargetPlan?
        var poolGUID: UInt64?
        var pool = ""
        for (index, entry) in reports.enumerated() {
            if let none = entry.report.noLabelFound {
                // Damage findings would suggest repairs; there is nothing to repair in what is not a vdev.
                findings.append(Finding(
                    severity: .problem, kind: .noVdev, message: none,
                    fix: "check that \(entry.name) is the pool's disk or image; on a whole disk, `zlabel inspect` lists "
                        + "the partitions and --partition picks one"))
                continue
            }
            for problem in entry.report.problems {
                findings.append(Finding(
                    severity: .problem, kind: .labelDamage, message: problem,
                    fix: "zlabel verify \(Self.imageArgument(entry.name, region: nil, selector: entry.selector)) shows the details; "
                        + "`zlabel repair-checksums` fixes a checksum over intact bytes"))
            }
            for vdev in entry.report.vdevs {
                guard let config = vdev.labels.config, let guid = config.uint64("guid") else { continue }
                if poolGUID == nil {
                    poolGUID = config.uint64("pool_guid")
                    pool = config.string("name")?.description ?? ""
                }
                let isBootDisk = index == 0 && leaves.isEmpty
                if isBootDisk, let target {
                    plan = try target.plan(device: device, placement: try PoolPlacement(region: vdev.region))
                }
                let leaf = Self.leaf(guid: guid, image: entry.name, region: vdev.region, labels: vdev.labels,
                                     mos: mosLeaves, plan: isBootDisk ? plan : nil, isBootDisk: isBootDisk)
                leaves.append(leaf)
                let argument = Self.imageArgument(entry.name, region: vdev.region, selector: entry.selector)
                findings += Self.stateFindings(config, leaf: guid, image: entry.name, argument: argument)
                findings += Self.fieldFindings(leaf, pool: pool, argument: argument)
                if isBootDisk, let target, let plan {
                    findings += Self.targetFindings(leaf, target: target, plan: plan, device: device, argument: argument)
                }
            }
        }
        if leaves.isEmpty { findings.removeAll { $0.kind == .mosUnreadable } }  // no pool, so no MOS to miss
        // State findings repeat for every member of a pool; keep one of each.
        var seen = Set<String>()
        findings = findings.filter { f in
            guard [.foreignHost, .active, .destroyed].contains(f.kind) else { return true }
            return seen.insert(f.kind.rawValue).inserted
        }

        var view: BootView?
        if let target, !leaves.isEmpty, let first = reports.first?.report.vdevs.first {
            let loader = Self.loader(for: target)
            view = Self.bootVerdict(target: target, labels: first.labels, pool: inspection)
            if let view {
                for problem in view.problems {
                    findings.append(Finding(severity: .problem, kind: .bootFails, leaf: view.bootVdevGUID,
                                            message: "\(loader.rawValue) loader: \(problem)"))
                }
            }
        }
        self.pool = pool
        self.poolGUID = poolGUID
        self.target = plan
        self.loader = target.map(Self.loader(for:))
        self.leaves = leaves
        self.bootView = view
        self.findings = findings.enumerated().sorted {
            $0.element.severity != $1.element.severity ? $0.element.severity > $1.element.severity : $0.offset < $1.offset
        }.map(\.element)
    }

    /// Opens each path read-only (`ImageFile.openForReading`: raw, device or VM disk container) and diagnoses the pool in them.
    ///
    /// - Parameters:
    ///   - paths: each image path with its region selector, the boot disk first.
    ///   - target: the EC2 boot target to check the boot disk against, or `nil` for labels against MOS only.
    ///   - device: with a target, the root device name the AMI registers (the target's default when `nil`).
    public init(paths: [(path: String, selector: RegionSelector?)], target: BootTarget? = nil,
                device: XenDeviceName? = nil) throws {
        var images: [(storage: any ImageStorage, name: String, selector: RegionSelector?)] = []
        for (path, selector) in paths { images.append((try ImageFile.openForReading(path: path), path, selector)) }
        try self.init(images: images, target: target, device: device)
    }

    static let fieldNames = ["phys_path", "path", "devid"]

    static func leaf(
        guid: UInt64, image: String, region: VdevRegion, labels: VdevLabels, mos: [UInt64: VdevLeaf]?,
        plan: BootTargetPlan?, isBootDisk: Bool
    ) -> Leaf {
        func value(_ leaf: VdevLeaf?, _ field: String) -> NVString? {
            switch field {
            case "phys_path": leaf?.physPath
            case "path": leaf?.path
            default: leaf?.devid
            }
        }
        let labelLeaves: [(index: Int, leaf: VdevLeaf?)] = labels.labels.compactMap { label in
            guard label.status == .valid, let config = label.config else { return nil }
            return (label.index, config.vdevLeaves.first { $0.guid == guid })
        }
        let configLeaf = labels.config?.vdevLeaves.first { $0.guid == guid }
        let mosLeaf = mos?[guid]
        var fields: [Field] = []
        for name in fieldNames {
            var groups: [LabelGroup] = []
            for (index, leaf) in labelLeaves {
                let v = value(leaf, name)
                if let i = groups.firstIndex(where: { $0.value == v }) {
                    groups[i].labels.append(index)
                } else {
                    groups.append(LabelGroup(value: v, labels: [index]))
                }
            }
            var target: LabelChange?
            if let plan {
                let change = name == "phys_path" ? plan.physPath : name == "path" ? plan.path : plan.devid
                target = change == .keep ? nil : change
            }
            let mosValue: NVString?? = mos == nil || mosLeaf == nil ? nil : .some(value(mosLeaf, name))
            fields.append(Field(name: name, labels: groups, mos: mosValue, target: target,
                                effective: value(configLeaf, name)))
        }
        return Leaf(guid: guid, image: image, region: region, fields: fields,
                    inMOS: mos.map { $0[guid] != nil }, isBootDisk: isBootDisk)
    }

    /// The image argument as `zlabel` takes it again: the path, with `--partition` when the vdev sits in one.
    static func imageArgument(_ path: String, region: VdevRegion?, selector: RegionSelector?) -> String {
        var argument = shellQuoted(path)
        if case .range(let offset, let size)? = selector {
            argument = shellQuoted("\(path)@\(offset):\(size)")
        } else if let name = region?.name ?? selector.flatMap({ if case .named(let n) = $0 { n } else { nil } }) {
            argument += " --partition \(shellQuoted(name))"
        }
        return argument
    }

    static func shellQuoted(_ s: String) -> String {
        let plain = s.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "@%+=:,./_-".unicodeScalars.contains($0)
        }
        if plain && !s.isEmpty { return s }
        return "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    static func show(_ value: NVString?) -> String { value.map { "'\($0)'" } ?? "nothing" }

    // MARK: rules

    static func stateFindings(_ config: NVList, leaf: UInt64, image: String, argument: String) -> [Finding] {
        let state = config.uint64("state")
        let hostid = config.uint64("hostid") ?? 0
        let hostname = config.string("hostname")
        switch state {
        case 0?:
            guard hostid != 0 else {
                return [Finding(
                    severity: .note, kind: .active,
                    message: "the pool's state is ACTIVE (it was not exported) but its labels name no host, so an "
                        + "import elsewhere does not ask for -f; boot loaders and the kernel's root import do not "
                        + "look at the state")]
            }
            let host = hostname.map { "host '\($0)' (hostid 0x\(String(hostid, radix: 16)))" } ?? "hostid 0x\(String(hostid, radix: 16))"
            return [Finding(
                severity: .warning, kind: .foreignHost,
                message: "the pool's state is ACTIVE and its labels name \(host): it was never exported, so "
                    + "`zpool import` on any other host refuses it without -f (\"pool may be in use from other "
                    + "system\") and `zlabel set` refuses it without --force. The kernel's root import at boot does "
                    + "not check the host.",
                fix: "only when no system has the pool imported: zlabel set \(argument) --remove-hostid --remove-hostname --force")]
        case 2?:
            return [Finding(
                severity: .problem, kind: .destroyed,
                message: "the labels say the pool was destroyed (state 2): the loaders and the kernel skip such "
                    + "labels, and `zpool import` lists it only with -D")]
        default:
            return []
        }
    }

    static func fieldFindings(_ leaf: Leaf, pool: String, argument: String) -> [Finding] {
        var out: [Finding] = []
        let place = "leaf \(leaf.guid) in \(leaf.image)"
        for field in leaf.fields {
            if field.labels.count > 1 {
                let groups = field.labels.map { "label\($0.labels.count > 1 ? "s" : "") \($0.labels.map(String.init).joined(separator: ","))\($0.labels.count > 1 ? " say" : " says") \(show($0.value))" }
                out.append(Finding(
                    severity: .warning, kind: .labelsDisagree, leaf: leaf.guid,
                    message: "the labels of \(place) disagree on \(field.name): \(groups.joined(separator: "; ")). "
                        + "An edit was cut short or a tool wrote only some labels; ZFS and the illumos loader read the "
                        + "label with the highest txg (\(show(field.effective))), legacy GRUB reads label 0 or 1.",
                    fix: "zlabel set \(argument) --\(field.name == "phys_path" ? "phys-path" : field.name) VALUE (writes all four)"))
            }
            guard let mos = field.mos, mos != field.effective else { continue }
            let now: String
            switch (field.effective, mos) {
            case (nil, let old?): now = "the MOS config still holds \(field.name) '\(old)', which the labels no longer have"
            case (let new?, nil): now = "the labels hold \(field.name) '\(new)' but the MOS config has no \(field.name)"
            default: now = "the MOS config still holds \(field.name) \(show(mos)) where the labels say \(show(field.effective))"
            }
            if field.name == "path" {
                out.append(Finding(
                    severity: .note, kind: .mosDiffers, leaf: leaf.guid,
                    message: "\(place): \(now). Harmless: an import copies path from the labels into the config."))
            } else {
                out.append(Finding(
                    severity: .warning, kind: .mosDiffers, leaf: leaf.guid,
                    message: "\(place): \(now). A boot goes by the labels (the loader and the kernel's root import "
                        + "read them, and the booted kernel writes its own view of the device back), so the boot "
                        + "sees the labels' value. A `zpool import` of '\(pool)' goes by the MOS: OpenZFS up to 2.2.2 "
                        + "copies only path back from the labels, and its next transaction group writes "
                        + "\(show(mos)) into all four labels again. `zlabel set` edits labels only, so this is "
                        + "expected after it: boot the image on its target before importing it anywhere else."))
            }
        }
        if leaf.inMOS == false {
            out.append(Finding(
                severity: .warning, kind: .mosMissingLeaf, leaf: leaf.guid,
                message: "the pool's MOS config has no leaf with guid \(leaf.guid) (\(leaf.image)): the labels and "
                    + "the pool disagree on its members; an import may leave this device out"))
        }
        let phys = leaf.fields.first { $0.name == "phys_path" }?.effective
        let devid = leaf.fields.first { $0.name == "devid" }?.effective
        if phys == nil && devid == nil {
            out.append(Finding(
                severity: .note, kind: .noBootpath, leaf: leaf.guid,
                message: "\(place) has neither phys_path nor devid: legacy GRUB and pv-grub refuse to boot from it "
                    + "(ERR_NO_BOOTPATH), GRUB 2 passes no bootpath, and with the illumos loader the kernel finds the "
                    + "root pool only by scanning every disk (illumos 7119, 2020, or later)"))
        }
        return out
    }

    static func targetFindings(
        _ leaf: Leaf, target: BootTarget, plan: BootTargetPlan, device: XenDeviceName?, argument: String
    ) -> [Finding] {
        var out: [Finding] = []
        let fix = "zlabel set \(argument) --target \(target.rawValue)" + (device.map { " --device \($0)" } ?? "")
        let seen = plan.device.map { d in "the root volume registered as \(d)" + (plan.vbd.map { " (Xen vbd \($0))" } ?? "") } ?? "the root volume"
        let loader = Self.loader(for: target)
        let hasDevid = leaf.fields.first { $0.name == "devid" }?.effective != nil
        let opens = hasDevid ? "the kernel's open by devid and then by bootpath both fail" : "the kernel's open by bootpath fails"
        for field in leaf.fields {
            guard let change = field.target else { continue }
            switch (field.name, change) {
            case ("phys_path", .set(let wanted)) where field.effective != NVString(wanted):
                let consequence = loader == .pvGrub
                    ? "pv-grub passes it as bootpath and no pool or vdev guids; \(opens), and with no guids to scan "
                        + "for the kernel stops with \"Cannot read the pool label\": the instance does not boot"
                    : "the illumos loader passes it as bootpath; \(opens), kernels before illumos 7119 (2020) stop "
                        + "with \"Cannot read the pool label\", and newer ones boot only after scanning every disk for "
                        + "the pool's guids"
                out.append(Finding(
                    severity: .problem, kind: .targetPhysPath, leaf: leaf.guid,
                    message: "device mismatch: the labels say phys_path \(show(field.effective)), but on "
                        + "\(target.rawValue) \(seen) is '\(wanted)': \(consequence).",
                    fix: fix))
            case ("path", .set(let wanted)) where field.effective != NVString(wanted):
                out.append(Finding(
                    severity: .note, kind: .targetPath, leaf: leaf.guid,
                    message: "the labels say path \(show(field.effective)); devfsadm will name the disk '\(wanted)' on "
                        + "\(target.rawValue). Only userland reads path, and zpool corrects it after boot.",
                    fix: fix))
            case ("devid", .remove) where field.effective != nil:
                out.append(Finding(
                    severity: .note, kind: .targetDevid, leaf: leaf.guid,
                    message: "the labels carry devid '\(field.effective!)', made by another machine's disk driver; no "
                        + "disk on \(target.rawValue) has it, so the kernel's first lookup by devid fails and it "
                        + "goes on to bootpath.",
                    fix: fix))
            default:
                break
            }
        }
        return out
    }
}

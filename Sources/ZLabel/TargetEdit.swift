import BootTargets
import NVList
import DiskPartitions
import ZFSImage
import ZFSLabel

extension LeafEdit {
    /// Takes the values a boot target computed; fields the target leaves alone stay as they are in this edit.
    public mutating func adopt(_ plan: BootTargetPlan) {
        func convert(_ change: BootTargets.LabelChange) -> LeafEdit.Change? {
            switch change {
            case .set(let v): .set(NVString(v))
            case .remove: .remove
            case .keep: nil
            }
        }
        if let c = convert(plan.physPath) { physPath = c }
        if let c = convert(plan.path) { path = c }
        if let c = convert(plan.devid) { devid = c }
    }
}

extension PoolPlacement {
    /// Where a pool sits, from the region it was found in: a VTOC slice or GPT partition; a bare vdev (no
    /// partition table) is taken to be slice 0, the usual place of an illumos root pool.
    public init(region: VdevRegion) throws(BootTargetError) {
        guard let p = region.partition else {
            self = .vtocSlice(0)
            return
        }
        guard let slice = p.illumosSlice, let placement = PoolPlacement(regionScheme: p.scheme.rawValue, illumosSlice: slice) else {
            throw BootTargetError.noMinorName("the pool is in \(p.name) (\(p.scheme.rawValue)), which is not an illumos slice or EFI partition")
        }
        self = placement
    }
}

/// A boot target's label edit: the `LeafEdit` that gives a leaf vdev the values the target computed, with
/// what to tell the user about it. `zlabel set --target` and `zlabel ec2 publish` both make theirs here.
public struct TargetEdit: Sendable {
    /// The edit: the target's `phys_path`, `path` and `devid`, the leaf, and the extra changes asked for.
    public var edit: LeafEdit
    /// The target's computation (device, vbd, the values and their reasons).
    public var plan: BootTargetPlan
    /// Remarks for the user: the target's notes, and the slice assumption for a vdev without a partition table.
    public var notes: [String]

    /// Plans the target's edit of the leaf in `member`.
    ///
    /// - Parameters:
    ///   - target: the EC2 boot target.
    ///   - device: the device name the AMI registers (checked against the target); `nil` for its default.
    ///   - member: the image whose disk the target describes, and where its vdev sits (which picks the minor name).
    ///   - leaf: which leaf to change. When it is `LeafSelector.automatic` and `member` is the only image edited
    ///     (`onlyMember`), the target describes the disk this image is, so the leaf becomes the image's own
    ///     (the `guid` of its labels' config).
    ///   - onlyMember: whether `member` is the only image edited.
    ///   - devid: a devid to set instead of the target's choice.
    ///   - removeHostid: also remove the hostid.
    /// - Throws: `BootTargetError` when the device does not suit the target or the vdev is not where the target's
    ///   loader can name it; `ImageError` when the labels cannot be read.
    public init(
        target: BootTarget, device: XenDeviceName?, member: EditTarget, leaf: LeafSelector = .automatic,
        onlyMember: Bool = true, devid: String? = nil, removeHostid: Bool = false
    ) throws {
        let plan = try target.plan(device: device, placement: try PoolPlacement(region: member.region))
        var edit = LeafEdit(leaf: leaf)
        edit.adopt(plan)
        var notes = plan.notes
        if member.region.partition == nil {
            notes.append("no partition table in \(member.image.path): the pool is taken to be in slice 0 (minor :a)")
        }
        if leaf == .automatic, onlyMember, let guid = try member.image.readLabels(in: member.region).config?.uint64("guid") {
            edit.leaf = .guid(guid)
        }
        if let devid { edit.devid = .set(NVString(devid)) }
        edit.removeHostid = removeHostid
        self.edit = edit
        self.plan = plan
        self.notes = notes
    }
}

extension BootTarget {
    /// Every target as the `zlabel targets --json` object (`{"targets": [...]}`, without the schema version
    /// the command adds): name, summary, what it sets and why, the sources, the default device.
    public static var catalogJSON: JSONValue {
        let strings = { (list: [String]) in JSONValue.array(list.map(JSONValue.string)) }
        return .object([("targets", .array(allCases.map { target in
            let info = target.info
            return .object([
                ("name", .string(target.rawValue)), ("summary", .string(info.summary)), ("sets", strings(info.sets)),
                ("reasons", strings(info.reasons)), ("sources", strings(info.sources)),
                ("default_device", target.defaultDevice.map { .string("\($0)") } ?? .null),
            ])
        }))])
    }
}

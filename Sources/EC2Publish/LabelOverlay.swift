// The label side of `publish`: verify the image's labels, plan the boot target's edit, and turn the planned
// config areas into overlay patches. Nothing here writes to the image; it is opened read-only.

public import EBSUpload
public import EC2AMI
public import AWSCore
public import ZLabel

/// A target's label edit of one image, as bytes to overlay during the upload.
public struct PlannedLabelEdit: Sendable {
    /// The path of the image.
    public var imagePath: String
    /// Where the vdev sits in the image.
    public var region: VdevRegion
    /// The edit plan (old and new values per label).
    public var plan: LabelEditPlan
    /// The target's computation (device, vbd, notes).
    public var targetPlan: BootTargetPlan
    /// The new config areas at their byte offsets in the image.
    public var overlay: ByteRangeOverlay
    /// Remarks for the user (the target's notes, and the slice assumption for a bare vdev).
    public var notes: [String]

    /// The PV-GRUB kernel variant that reads this image: `hd0` for a bare file system, `hd00` for partition 1.
    public var pvGrubVariant: PVGrubVariant { region.partition == nil ? .hd0 : .hd00 }
}

/// Why `publish` refused an image before uploading anything.
public struct PublishRefusal: OptionNamingError, Sendable {
    /// What is wrong, one line each; a line may name an option (`OptionName`), which a command line spells.
    public var reasons: [OptionText]
    /// What is wrong, one line each, options in words.
    public var problems: [String] { reasons.map(\.description) }
    /// Creates a refusal.
    public init(_ problems: [String]) { self.reasons = problems.map { OptionText(plain: $0) } }
    /// Creates a refusal whose lines name options.
    public init(reasons: [OptionText]) { self.reasons = reasons }
    public func message(spelling spell: (OptionName) -> String) -> String {
        "refused, nothing uploaded: " + reasons.map { $0.rendered(spell) }.joined(separator: "; ")
    }
    public var description: String { message(spelling: \.words) }
}

extension PlannedLabelEdit {
    /// Verifies the labels of the one vdev in the image and plans the target's edit.
    ///
    /// - Parameters:
    ///   - imagePath: the image (opened read-only).
    ///   - selector: which vdev, when the image holds several.
    ///   - target: the EC2 boot target.
    ///   - rootDevice: the root device name the AMI registers; it picks the Xen vbd for the Xen targets and must
    ///     be nil for `ec2-nitro`.
    ///   - devid: a devid to set instead of removing it (GRUB 2 passes bootpath only with a devid).
    ///   - removeHostid: also remove the hostid.
    /// - Throws: ``PublishRefusal`` when the labels are not all valid, the vdev is ambiguous or the target's loader
    ///   could not boot the edited image (`Diagnosis.bootVerdict(target:labels:pool:)`, as `doctor`); `ImageError`,
    ///   `PartitionTableError`, `BootTargetError`, `LabelEditError` from the label side.
    public static func plan(
        imagePath: String, selector: RegionSelector? = nil, target: BootTarget, rootDevice: String?,
        devid: String? = nil, removeHostid: Bool = false
    ) throws -> PlannedLabelEdit {
        let image = try ZFSImage.ImageFile.openForReading(path: imagePath)
        let report = try ImageReport(image: image, selector: selector)
        guard report.vdevs.count == 1 else {
            throw PublishRefusal(reasons: [report.vdevs.isEmpty
                ? OptionText(plain: "\(imagePath): no ZFS vdev found")
                : "\(imagePath): \(report.vdevs.count) vdevs (\(report.vdevs.compactMap(\.region.name).joined(separator: ", "))); choose one with \(option: .partition)"])
        }
        let problems = report.problems
        guard problems.isEmpty else { throw PublishRefusal(problems) }
        let vdev = report.vdevs[0]

        let device = try rootDevice.map { name throws(BootTargetError) in try XenDeviceName(parsing: name) }
        let member = EditTarget(image: image, region: vdev.region)
        let targetEdit = try TargetEdit(
            target: target, device: target == .ec2Nitro ? nil : device, member: member, devid: devid,
            removeHostid: removeHostid)
        let plan = try LabelWriter.plan([member], edit: targetEdit.edit)

        // The boot verdict doctor gives, on the labels as the edit leaves them: an image the target's loader
        // cannot boot is refused before anything is sent.
        var edited = vdev.labels
        let planned = plan.members[0]
        for change in planned.labels where change.action != .keep {
            if let i = edited.labels.firstIndex(where: { $0.index == change.index }) { edited.labels[i].config = planned.after }
        }
        let pool = try? PoolInspection(images: [(image, selector)])
        let verdict = Diagnosis.bootVerdict(target: target, labels: edited, pool: pool)
        guard verdict.problems.isEmpty else {
            throw PublishRefusal(verdict.problems.map { "\(imagePath): \(target.rawValue) boots with \(verdict.loader.rawValue), which cannot boot it: \($0)" })
        }

        var overlay = ByteRangeOverlay()
        for change in plan.members[0].labels {
            guard let area = change.newConfigArea else { continue }
            try overlay.replace(at: vdev.region.offset + change.configOffset, with: area)
        }
        return PlannedLabelEdit(
            imagePath: imagePath, region: vdev.region, plan: plan, targetPlan: targetEdit.plan, overlay: overlay,
            notes: targetEdit.notes)
    }
}

extension BootTarget {
    /// How instances of this target run an AMI: paravirtual for `ec2-xen-pv`, HVM otherwise.
    public var virtualization: Virtualization { self == .ec2XenPV ? .paravirtual : .hvm }
}

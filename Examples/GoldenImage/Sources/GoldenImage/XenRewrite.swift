// What a pipeline step built on zlabel looks like: take an OmniOS image made on one hypervisor and rewrite
// its root pool's labels for a Xen guest, with a backup, then state what the shipped image must hold.
public import ZLabel

/// The edit a pipeline makes before shipping an image to Xen, and the expectations the shipped image must meet.
public enum XenRewrite {
    /// The Xen guest's first disk: `phys_path` and `path` of the root pool's leaf.
    public static let physPath = "/xpvd/xdf@51712:a"
    /// The Xen guest's first disk as `/dev/dsk` names it.
    public static let path = "/dev/dsk/c2t0d0s0"

    /// What the image must hold after ``apply(to:backup:)``, in `zlabel expect` syntax.
    public static let expectations: [String] = [
        "phys_path=\(physPath)", "path=\(path)", "state=exported", "labels=4", "checksums=valid",
        "bootfs=rpool/ROOT/omnios",
    ]

    /// Rewrites the labels of the pool in the image at `image` for Xen and removes its hostid, saving the
    /// original labels in `backup` first.
    ///
    /// - Returns: the plan that was applied (its `summary` shows old and new values).
    /// - Throws: ``XenRewriteError`` when a partitioned image has no partition with ZFS labels; `ImageError`
    ///   when the image cannot be read or written; `LabelEditError` when the edit is refused, nothing written
    ///   (a bare image without valid labels is refused so); `LabelWriteError` when a write or the read-back
    ///   check fails.
    @discardableResult
    public static func apply(to image: String, backup: String) throws -> LabelEditPlan {
        let file = try ImageFile(path: image, mode: .readWrite)
        guard let region = try file.findVdevs().regions.first else { throw XenRewriteError.noPool(image) }
        let target = EditTarget(image: file, region: region)
        var edit = LeafEdit()
        edit.physPath = .set(.init(physPath))
        edit.path = .set(.init(path))
        edit.removeHostid = true
        let plan = try LabelWriter.plan([target], edit: edit)
        _ = try LabelWriter.apply(plan, to: [target], backupPath: backup)
        return plan
    }
}

/// Why ``XenRewrite`` cannot start.
public enum XenRewriteError: Error, Equatable {
    /// The image has a partition table but no partition or slice with ZFS labels.
    case noPool(String)
}

import BootTargets
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import DiskPartitions
import NVList
public import ZFSImage
public import ZFSLabel

/// An image argument that holds no vdev, or more than one: the caller must say which (a partition name, or a
/// byte range). Nothing was read beyond the partition table, nothing written.
public struct VdevChoiceError: Error, Sendable, CustomStringConvertible {
    /// The image.
    public var path: String
    /// The vdev regions found: none, or several.
    public var found: [VdevRegion]
    public var description: String {
        found.isEmpty ? "\(path): no ZFS vdev found"
            : "\(path): \(found.count) vdevs (\(found.compactMap(\.name).joined(separator: ", "))); choose one by its partition or its byte range"
    }
}

/// `zlabel set` as one library call, in the order the command shows it: open each member image (raw, device or
/// a container that can be written in place) and find its one vdev; turn a boot target into its edit; plan;
/// rehearse the writes inside containers; then apply (backup, crash-safe writes, read-back).
public struct LabelEditSession {
    /// Each member image and where its vdev sits.
    public let targets: [EditTarget]
    /// The planned edit; `--dry-run` shows it.
    public let plan: LabelEditPlan
    /// What a boot target has to say about its values (the slice-0 assumption, say); empty without a target.
    public let notes: [String]

    /// Opens the images and plans the edit.
    ///
    /// - Parameters:
    ///   - images: each member image, with the region selector that picks its vdev on a whole disk.
    ///   - edit: the fields to set or remove; with a `target`, the target's values come first and these
    ///     override them.
    ///   - target: a boot target and the device name the AMI registers, or nil.
    ///   - writable: open the images for writing (false for a dry run).
    ///   - force: edit even when the pool's state is ACTIVE.
    /// - Throws: ``VdevChoiceError`` when an image holds no vdev or several; `ImageError`,
    ///   `PartitionTableError`, `BootTargetError`, `LabelEditError` otherwise.
    public init(images: [(path: String, selector: RegionSelector?)], edit: LeafEdit,
                target: (BootTarget, XenDeviceName?)?, writable: Bool, force: Bool) throws {
        var targets: [EditTarget] = []
        for (path, selector) in images {
            let file = try ImageFile.openForEditing(path: path, mode: writable ? .readWrite : .readOnly)
            let found = try file.findVdevs(selector).regions
            guard found.count == 1 else { throw VdevChoiceError(path: path, found: found) }
            targets.append(EditTarget(image: file, region: found[0]))
        }
        var edit = edit
        var notes: [String] = []
        if let (bootTarget, device) = target {
            // The target's values first; explicit fields of `edit` override them.
            let planned = try TargetEdit(
                target: bootTarget, device: device, member: targets[0], leaf: edit.leaf, onlyMember: targets.count == 1)
            var merged = planned.edit
            if let c = edit.physPath { merged.physPath = c }
            if let c = edit.path { merged.path = c }
            if let c = edit.devid { merged.devid = c }
            merged.removeHostid = merged.removeHostid || edit.removeHostid
            merged.removeHostname = merged.removeHostname || edit.removeHostname
            edit = merged
            notes = planned.notes
        }
        self.targets = targets
        self.plan = try LabelWriter.plan(targets, edit: edit, force: force)
        self.notes = notes
    }

    /// Runs the writes on stand-ins and checks that each one meant for an image inside a container can be made
    /// in place; nothing for raw images and devices. ``apply(backupPath:)`` does this too, before its backup.
    ///
    /// - Throws: `ImageError` of code `container` naming the image and why.
    public func rehearse() throws {
        try InPlaceRehearsal.check(targets.map(\.image)) { images in
            _ = try LabelWriter.apply(plan, to: zip(targets, images).map { EditTarget(image: $1, region: $0.region) }, backupPath: nil)
        }
    }

    /// Applies the plan: backup to `backupPath` (default: next to the first image), writes, read-back.
    public func apply(backupPath: String?) throws -> LabelWriteReport {
        try rehearse()
        return try LabelWriter.apply(plan, to: targets, backupPath: backupPath ?? LabelWriter.defaultBackupPath(for: targets[0].image.path))
    }

    /// `set --json` after a write: the plan, the backup and the number of labels written.
    public func json(_ report: LabelWriteReport) -> JSONValue {
        .object([("plan", plan.json), ("backup", report.backup.map(JSONValue.string) ?? .null),
                 ("labels_written", .uint(UInt64(report.writes.count)))])
    }
}

/// A backup that holds no labels of the image being restored.
public struct BackupEntryNotFound: Error, Sendable, CustomStringConvertible {
    /// The backup file and the image.
    public var backup: String, image: String
    /// The images the backup holds labels of.
    public var holds: [String]
    public var description: String { "\(backup) holds no labels of \(image) (it has: \(holds.joined(separator: ", ")))" }
}

/// `zlabel restore` as one library call: read the backup, pick the entry of the image, put its labels back
/// (rehearsed first inside a container), and when the image changed since, name the later backup that must be
/// restored first.
public struct RestoreResult: Sendable {
    /// The image and the backup file.
    public var image: String, backup: String
    /// What the restore did.
    public var outcome: LabelBackup.RestoreOutcome

    /// Restores `image` from the backup file `backup`.
    ///
    /// - Throws: ``BackupEntryNotFound``; `ImageError` (the image changed since the edit: the message names a
    ///   later backup of the same series when one wrote the labels now on disk).
    public init(image: String, backup: String) throws {
        let saved = try LabelBackup(contentsOf: backup)
        let file = try ImageFile.openForEditing(path: image, mode: .readWrite)
        let resolved = URL(fileURLWithPath: image).standardizedFileURL.path
        let candidates = saved.entries.filter {
            URL(fileURLWithPath: $0.path).standardizedFileURL.path == resolved
                || URL(fileURLWithPath: $0.path).lastPathComponent == URL(fileURLWithPath: image).lastPathComponent
        }
        guard let entry = candidates.first ?? (saved.entries.count == 1 ? saved.entries[0] : nil) else {
            throw BackupEntryNotFound(backup: backup, image: image, holds: saved.entries.map(\.path))
        }
        do {
            try InPlaceRehearsal.check([file]) { images in _ = try LabelBackup.restore(entry, into: images[0]) }
            outcome = try LabelBackup.restore(entry, into: file)
        } catch var error as ImageError where error.message.contains("changed since") {
            // Most often a later `zlabel set` made a newer backup: name it, since it must be restored first.
            if let newer = LabelBackup.backup(thatWrote: file, among: LabelBackup.series(of: backup)) {
                error.message += "; a later edit saved its labels in \(newer): restore from it first, then from \(backup)"
            }
            throw error
        }
        self.image = image
        self.backup = backup
    }

    /// `restore --json`.
    public var json: JSONValue {
        let restored: UInt64
        if case .restored(let n) = outcome { restored = UInt64(n) } else { restored = 0 }
        return .object([
            ("image", .string(image)), ("backup", .string(backup)), ("labels_restored", .uint(restored)),
            ("already_original", .bool(outcome == .alreadyOriginal)),
        ])
    }

    /// The line `restore` prints.
    public var text: String {
        switch outcome {
        case .restored(let n): "\(image): restored \(n) labels from \(backup); read back and verified"
        case .alreadyOriginal: "\(image): already holds the saved labels; nothing written"
        }
    }
}

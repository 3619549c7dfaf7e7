import ArgumentParser
import CLISupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ZLabel

struct SetLabels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change phys_path, path, devid or the host fields in every label of a leaf vdev, crash-safely.",
        discussion: """
            Give every member image of a mirror or raidz to change them all consistently. The original labels \
            are saved first (next to the first image, or --backup FILE); `zlabel restore` puts them back. \
            Writes follow ZFS's own order (L0 and L2, flush, L1 and L3, flush) and are read back and checked.
            """)

    @Argument(help: "The image of each member to edit (IMAGE@OFFSET:SIZE picks a byte range).")
    var images: [String]

    @OptionGroup var region: RegionOptions

    @Option(help: "The leaf to change: its guid or its current path (needed when the vdev has several leaves); a path that is not UTF-8 in \\xNN escaped form.")
    var vdev: String?

    @Option(help: "Set the target's phys_path, path and devid: \(BootTarget.allCases.map(\.rawValue).joined(separator: ", ")) (see `zlabel targets`).")
    var target: String?

    @Option(help: "With --target: the device name the AMI registers (/dev/sdX[N] or /dev/xvdX[N]).")
    var device: String?

    @Option(name: .customLong("phys-path"), help: "New phys_path.")
    var physPath: String?

    @Option(help: "New path.")
    var path: String?

    @Option(help: "New devid.")
    var devid: String?

    @Flag(name: .customLong("remove-devid"), help: "Remove the devid.")
    var removeDevid = false

    @Flag(name: .customLong("remove-hostid"), help: "Remove the hostid, so that no host claims the pool.")
    var removeHostid = false

    @Flag(name: .customLong("remove-hostname"), help: "Remove the hostname.")
    var removeHostname = false

    @Flag(name: .customLong("dry-run"), help: "Show the old and new values and the write plan; write nothing.")
    var dryRun = false

    @Option(help: "Where to save the original labels (default: IMAGE.zlabel-backup next to the first image).")
    var backup: String?

    @Flag(help: "Edit even when the pool's state is ACTIVE (imported on some host).")
    var force = false

    @Flag(help: "Print the plan and the result as JSON.")
    var json = false

    func validate() throws {
        if devid != nil && removeDevid { throw ValidationError("--devid and --remove-devid exclude each other") }
        _ = try parseTarget(target, device: device)
        for argument in images { _ = try region.resolve(argument) }
    }

    func run() throws {
        var targets: [EditTarget] = []
        for argument in images {
            let (path, selector) = try region.resolve(argument)
            let file = try ImageFile.openForEditing(path: path, mode: dryRun ? .readOnly : .readWrite)
            let found = try file.findVdevs(selector).regions
            guard found.count == 1 else {
                throw ValidationError(found.isEmpty ? "\(path): no ZFS vdev found" : "\(path): \(found.count) vdevs (\(found.compactMap(\.name).joined(separator: ", "))); choose one with --partition or IMAGE@OFFSET:SIZE")
            }
            targets.append(EditTarget(image: file, region: found[0]))
        }

        var edit = LeafEdit(leaf: try selector())
        var targetNotes: [String] = []
        if let (bootTarget, device) = try parseTarget(target, device: device) {
            let planned = try TargetEdit(
                target: bootTarget, device: device, member: targets[0], leaf: edit.leaf, onlyMember: targets.count == 1)
            edit = planned.edit
            targetNotes = planned.notes
        }
        if let physPath { edit.physPath = .set(NVString(physPath)) }
        if let path { edit.path = .set(NVString(path)) }
        if let devid { edit.devid = .set(NVString(devid)) }
        if removeDevid { edit.devid = .remove }
        edit.removeHostid = removeHostid
        edit.removeHostname = removeHostname

        let plan = try LabelWriter.plan(targets, edit: edit, force: force)
        if !json {
            for note in targetNotes { printError("target: \(note)") }
            print(plan.summary, terminator: "")
        }
        if dryRun {
            if json { print(plan.json.rendered()) } else { print("dry run: nothing written") }
            return
        }
        let backupPath = backup ?? LabelWriter.defaultBackupPath(for: targets[0].image.path)
        let report = try LabelWriter.apply(plan, to: targets, backupPath: backupPath)
        if json {
            print(JSONValue.object([("plan", plan.json), ("backup", report.backup.map(JSONValue.string) ?? .null),
                                    ("labelsWritten", .uint(UInt64(report.writes.count)))]).rendered())
        } else if let saved = report.backup {
            print("wrote \(report.writes.count) labels; read back and verified; original labels saved in \(saved)")
        }
    }

    private func selector() throws -> LeafSelector {
        guard let vdev else { return .automatic }
        if let guid = UInt64(vdev) { return .guid(guid) }
        return .path(vdev)
    }
}

/// `--target` and `--device` checked before any file is opened: an unknown target, a malformed device name or
/// one the target does not take is a usage error (exit 64), whatever the images are.
func parseTarget(_ target: String?, device: String?) throws -> (BootTarget, XenDeviceName?)? {
    guard let target else {
        if device != nil { throw ValidationError("--device goes with --target") }
        return nil
    }
    do {
        let bootTarget = try BootTarget(named: target)
        let parsed = try device.map { name throws(BootTargetError) in try XenDeviceName(parsing: name) }
        try bootTarget.check(device: parsed)
        return (bootTarget, parsed)
    } catch {
        throw ValidationError("\(error)")
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put back the labels saved by `zlabel set`, byte for byte.",
        discussion: "Refuses when the image's labels have changed since the edit that made the backup.")

    @Argument(help: "The image to restore.")
    var image: String

    @Option(help: "The backup file written by `zlabel set`.")
    var from: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let backup = try LabelBackup(contentsOf: from)
        let file = try ImageFile.openForEditing(path: image, mode: .readWrite)
        let resolved = URL(fileURLWithPath: image).standardizedFileURL.path
        let candidates = backup.entries.filter {
            URL(fileURLWithPath: $0.path).standardizedFileURL.path == resolved
                || URL(fileURLWithPath: $0.path).lastPathComponent == URL(fileURLWithPath: image).lastPathComponent
        }
        guard let entry = candidates.first ?? (backup.entries.count == 1 ? backup.entries[0] : nil) else {
            throw ValidationError("\(from) holds no labels of \(image) (it has: \(backup.entries.map(\.path).joined(separator: ", ")))")
        }
        let outcome: LabelBackup.RestoreOutcome
        do { outcome = try LabelBackup.restore(entry, into: file) } catch var error as ImageError where error.message.contains("changed since") {
            // Most often a later `zlabel set` made a newer backup: name it, since it must be restored first.
            if let newer = LabelBackup.backup(thatWrote: file, among: LabelBackup.series(of: from)) {
                error.message += "; a later edit saved its labels in \(newer): restore from it first (zlabel restore \(image) --from \(newer)), then from \(from)"
            }
            throw error
        }
        if json {
            let restored: UInt64
            if case .restored(let n) = outcome { restored = UInt64(n) } else { restored = 0 }
            print(JSONValue.object([
                ("image", .string(image)), ("backup", .string(from)), ("labelsRestored", .uint(restored)),
                ("alreadyOriginal", .bool(outcome == .alreadyOriginal)),
            ]).rendered())
            return
        }
        switch outcome {
        case .restored(let n): print("\(image): restored \(n) labels from \(from); read back and verified")
        case .alreadyOriginal: print("\(image): already holds the saved labels; nothing written")
        }
    }
}

struct RepairChecksums: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair-checksums",
        abstract: "Recompute the checksum of labels whose nvlist unpacks but whose checksum does not match.",
        discussion: "Like `zhack label repair -c`: the nvlist bytes are kept, only the embedded checksum changes.")

    @OptionGroup var options: ImageOptions

    @Flag(name: .customLong("dry-run"), help: "Report what would be repaired; write nothing.")
    var dryRun = false

    @Flag(help: "Print one JSON object with every label's outcome instead of text.")
    var json = false

    func run() throws {
        let (path, selector) = try options.region.resolve(options.image)
        let file = try ImageFile.openForEditing(path: path, mode: dryRun ? .readOnly : .readWrite)
        var repaired = 0
        var outcomes: [JSONValue] = []
        for region in try file.findVdevs(selector).regions {
            for outcome in try ChecksumRepair.run(image: file, region: region, dryRun: dryRun) {
                if json {
                    outcomes.append(.object([
                        ("region", region.name.map(JSONValue.string) ?? .null), ("label", .uint(UInt64(outcome.label))),
                        ("offset", .uint(outcome.offset)), ("repaired", .bool(outcome.repaired)),
                        ("reason", .string(outcome.reason)),
                    ]))
                } else {
                    print("\(path): label \(outcome.label) at byte \(outcome.offset): \(outcome.reason)")
                }
                if outcome.repaired { repaired += 1 }
            }
        }
        if json {
            print(JSONValue.object([
                ("image", .string(path)), ("dryRun", .bool(dryRun)), ("repaired", .uint(UInt64(repaired))),
                ("labels", .array(outcomes)),
            ]).rendered())
        }
        if dryRun && !json { print("dry run: nothing written") }
        if !dryRun && repaired == 0 { throw ExitCode(1) }
    }
}

struct Targets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the EC2 boot targets, what each sets in the labels, and why.")

    @Flag(help: "Print the targets as a JSON array.")
    var json = false

    func run() {
        guard json else {
            print(BootTarget.catalog(), terminator: "")
            return
        }
        let strings = { (list: [String]) in JSONValue.array(list.map(JSONValue.string)) }
        print(JSONValue.array(BootTarget.allCases.map { target in
            let info = target.info
            return .object([
                ("name", .string(target.rawValue)), ("summary", .string(info.summary)), ("sets", strings(info.sets)),
                ("reasons", strings(info.reasons)), ("sources", strings(info.sources)),
                ("defaultDevice", target.defaultDevice.map { .string("\($0)") } ?? .null),
            ])
        }).rendered())
    }
}

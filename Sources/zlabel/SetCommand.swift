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

    @Option(help: "Set the target's phys_path, path and devid: \(bootTargetNames) (see `zlabel targets`).")
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

    /// The parsed values, as the command runs them.
    var request: SetRequest {
        SetRequest(images: images, partition: region.partition, offset: region.offset, size: region.size, vdev: vdev,
                   target: target, device: device, physPath: physPath, path: path, devid: devid,
                   removeDevid: removeDevid, removeHostid: removeHostid, removeHostname: removeHostname,
                   dryRun: dryRun, backup: backup, force: force, json: json)
    }

    func validate() throws { try request.validate() }

    func run() throws { try request.run() }
}

/// The boot targets' names, comma-separated, for the help of `--target`. Put together by hand: the argument
/// parser builds a command's options (and so this text) several times per process, and `joined(separator:)`
/// would cost the runtime a scan of every protocol conformance in the binary the first time.
let bootTargetNames: String = {
    var names = ""
    for target in BootTarget.allCases { names += (names.isEmpty ? "" : ", ") + target.rawValue }
    return names
}()

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

import ArgumentParser
import CLISupport
import ZLabel

/// `zlabel doctor`: labels against the MOS copy and the target's device, with the fix.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Compare each leaf's phys_path, path and devid in the labels, the MOS and the target; say what breaks and how to fix it.",
        discussion: """
            The first image is the boot disk; give the pool's other member images after it. With --target, the \
            boot disk is checked against the device the target's instances see, and the target's loader is run \
            over the labels (see `zlabel targets`). Exits 0 when nothing stops the boot or an import (warnings \
            and notes allowed), 1 when a problem was found.
            """)

    @Argument(help: "The boot disk's image, then the pool's other member images (IMAGE@OFFSET:SIZE picks a byte range).")
    var images: [String]

    @OptionGroup var region: RegionOptions

    @Option(help: "The EC2 boot target to check against: \(bootTargetNames).")
    var target: String?

    @Option(help: "With --target: the device name the AMI registers (/dev/sdX or /dev/xvdX).")
    var device: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image") }
        _ = try parseTarget(target, device: device)
        for argument in images { _ = try region.resolve(argument) }
    }

    func run() throws {
        let parsed = try parseTarget(target, device: device)
        let target = parsed?.0, device = parsed?.1
        let diagnosis = try Diagnosis(paths: try images.map { try region.resolve($0) }, target: target, device: device)
        if json { printJSON(diagnosis.json) } else { print(diagnosis.text, terminator: "") }
        if !diagnosis.isClean { throw ExitCode(1) }
    }
}

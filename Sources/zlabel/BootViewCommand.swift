import ArgumentParser
import CLISupport
import ZLabel

/// `zlabel boot-view`: what a ZFS boot loader passes to an illumos kernel for the pool in these images.
struct BootViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot-view",
        abstract: "Show what a boot loader computes from the pool's labels and MOS: zfs-bootfs, bootpath, diskdevid.",
        discussion: """
            The first image is the boot disk; give the other members of a raidz pool after it. Exits 0 when \
            the loader computes its zfs-bootfs argument and nothing stops the boot, 1 otherwise.
            """)

    @Argument(help: "The boot disk's image, then the pool's other member images (IMAGE@OFFSET:SIZE picks a byte range).")
    var images: [String]

    @OptionGroup var region: RegionOptions

    @Option(help: "The loader: illumos, pv-grub or grub2.")
    var loader: String = BootLoader.illumos.rawValue

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard let loader = BootLoader(rawValue: loader) else {
            throw ValidationError("unknown loader '\(loader)' (illumos, pv-grub, grub2)")
        }
        let pool = try PoolInspection(paths: try images.map { try region.resolve($0) })
        let view = pool.bootView(loader: loader)
        if json { printJSON(view.json) } else { print(view.text, terminator: "") }
        if !view.canBoot { throw ExitCode(1) }
    }
}

import ArgumentParser
import CLISupport
import ZLabel

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
            printJSON(.object([
                ("image", .string(path)), ("dry_run", .bool(dryRun)), ("repaired", .uint(UInt64(repaired))),
                ("labels", .array(outcomes)),
            ]))
        }
        if dryRun && !json { print("dry run: nothing written") }
        if !dryRun && repaired == 0 { throw ExitCode(1) }
    }
}

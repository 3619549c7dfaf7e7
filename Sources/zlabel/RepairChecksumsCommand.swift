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
        let report = try ChecksumRepairReport(image: file, path: path, selector: selector, dryRun: dryRun)
        if json { printJSON(report.json) } else { for line in report.lines { print(line) } }
        if dryRun && !json { print("dry run: nothing written") }
        if !dryRun && report.repaired == 0 { throw ExitCode(1) }
    }
}

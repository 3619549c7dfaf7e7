import ArgumentParser
import CLISupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ZLabel

/// `zlabel expect`: golden-image checks for shell pipelines.
struct Expect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expect",
        abstract: "Check that images hold the expected label values: exit 0 when all hold, 1 otherwise.",
        discussion: """
            Images come first; the first argument that contains '=' and is not an existing file starts the \
            expectations. Each is KEY=VALUE, optionally scoped:
              phys_path=/xpvd/xdf@51712:a      the label's own leaf (also path, devid)
              state=exported                   active, exported, destroyed, ... or a number
              hostid=absent                    'absent': the key must not exist
              labels=4                         valid labels of each vdev
              checksums=valid                  config and uberblock checksums of each label
              bootfs=rpool/ROOT/omnios         the pool's bootfs property, from the MOS
              vdev_tree.children[0].devid=X    a label config value, by nvlist path
              leaf[GUID|PATH].phys_path=X      a leaf chosen by guid or current path
              label[0,1].hostname=omnios       only these labels
            Numbers match in decimal or 0x hexadecimal. A string that is not UTF-8 matches in escaped \
            form: each byte outside UTF-8 as \\xNN, a backslash as \\\\ (hostname='omni\\xf6s'). Each \
            failure prints one line: the image, the label, what was expected and what was found. Give \
            every member of a mirror or raidz to check each member's labels; bootfs is read once per pool \
            from all of its images.
            """)

    @Argument(help: ArgumentHelp("Images (IMAGE@OFFSET:SIZE picks a byte range), then expectations.",
                                 valueName: "image-or-expectation"))
    var arguments: [String] = []

    @OptionGroup var region: RegionOptions

    @Flag(help: "Print one JSON object with every outcome instead of the failures.")
    var json = false

    @Flag(help: "Also print the expectations that hold.")
    var verbose = false

    /// Splits the arguments into images and expectations.
    func split() throws -> (images: [String], expectations: [Expectation]) {
        let start = arguments.firstIndex { argument in
            argument.contains("=") && !FileManager.default.fileExists(atPath: argument)
                && !FileManager.default.fileExists(atPath: (try? RegionSelector.splitImageArgument(argument).path) ?? argument)
        }
        guard let start, start > 0 else {
            throw ValidationError(start == nil ? "give at least one expectation (KEY=VALUE) after the images"
                                               : "give at least one image before the expectations")
        }
        var expectations: [Expectation] = []
        for text in arguments[start...] {
            do { expectations.append(try Expectation(parsing: text)) } catch { throw ValidationError(error.description) }
        }
        return (Array(arguments[..<start]), expectations)
    }

    func validate() throws { _ = try split() }

    func run() throws {
        let (images, expectations) = try split()
        let report = try ExpectationReport(checking: expectations, paths: try images.map { try region.resolve($0) })
        if json {
            printJSON(report.json)
        } else {
            // Silent when all hold (README, "What it does"): a pipeline's log shows only failures.
            for outcome in report.outcomes where verbose || !outcome.holds { print(outcome) }
            if report.holds && verbose { printError("all \(report.outcomes.count) checks hold") }
        }
        if !report.holds { throw ExitCode(1) }
    }
}

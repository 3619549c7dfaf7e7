import ArgumentParser
import CLISupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ZLabel

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put back the labels saved by `zlabel set`, byte for byte.",
        discussion: "Refuses when the image's labels have changed since the edit that made the backup.")

    @Argument(help: "The image to restore.")
    var image: String

    @Option(help: "The backup file written by `zlabel set`.")
    var from: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        let result: RestoreResult
        do { result = try RestoreResult(image: image, backup: from) } catch let e as BackupEntryNotFound {
            throw ValidationError(e.description)
        }
        if json { printJSON(result.json) } else { print(result.text) }
    }
}

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
        do {
            try InPlaceRehearsal.check([file]) { images in _ = try LabelBackup.restore(entry, into: images[0]) }
            outcome = try LabelBackup.restore(entry, into: file)
        } catch var error as ImageError where error.message.contains("changed since") {
            // Most often a later `zlabel set` made a newer backup: name it, since it must be restored first.
            if let newer = LabelBackup.backup(thatWrote: file, among: LabelBackup.series(of: from)) {
                error.message += "; a later edit saved its labels in \(newer): restore from it first (zlabel restore \(image) --from \(newer)), then from \(from)"
            }
            throw error
        }
        if json {
            let restored: UInt64
            if case .restored(let n) = outcome { restored = UInt64(n) } else { restored = 0 }
            printJSON(.object([
                ("image", .string(image)), ("backup", .string(from)), ("labels_restored", .uint(restored)),
                ("already_original", .bool(outcome == .alreadyOriginal)),
            ]))
            return
        }
        switch outcome {
        case .restored(let n): print("\(image): restored \(n) labels from \(from); read back and verified")
        case .alreadyOriginal: print("\(image): already holds the saved labels; nothing written")
        }
    }
}

import ArgumentParser
import Foundation
import ZLabel

/// The `zlabel` command line. Each subcommand validates its input, calls one library function and prints
/// the result; the logic lives in the library modules.
@main
struct ZLabelCommand: AsyncParsableCommand {
    /// Runs the command; an image error exits with status 2 and one line on stderr that names the file and
    /// the byte offset.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ImageError {
            printError("zlabel: \(error)")
            Foundation.exit(2)
        } catch let error as PartitionTableError {
            printError("zlabel: \(error)")
            Foundation.exit(2)
        } catch let error as LabelEditError {
            printError("zlabel: refused, nothing written: \(error)")
            Foundation.exit(3)
        } catch let error as LabelWriteError {
            printError("zlabel: \(error)")
            Foundation.exit(4)
        } catch let error as BootTargetError {
            printError("zlabel: \(error)")
            Foundation.exit(64)
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "zlabel",
        abstract: "Read, verify and rewrite ZFS vdev labels in disk images and devices; publish images to EC2.",
        version: "0.1.0",
        subcommands: [Inspect.self, Verify.self, SetLabels.self, Restore.self, RepairChecksums.self, Targets.self, EC2Command.self]
    )
}

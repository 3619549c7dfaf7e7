import ArgumentParser
import CLISupport
import ZLabel

/// The `zlabel` command line. Each subcommand validates its input, calls one library function and prints
/// the result; the logic lives in the library modules.
@main
struct ZLabelCommand: ParsableCommand {
    /// Runs the command. The library's errors end the process with one line on stderr and the status of
    /// the table in README.md ("Exit codes"); anything else goes to the argument parser's handling.
    /// Every subcommand is synchronous, so the process runs on its main thread and never starts the concurrency
    /// runtime's threads: a label command starts and exits as fast as the work allows.
    /// `zlabel set` in its common form skips the argument parser (`SetRequest(directArguments:)`); every other
    /// command line, and any `set` that is not plainly that form, goes through it.
    static func main() {
        if let request = SetRequest(directArguments: CommandLine.arguments.dropFirst()) {
            runParsedCommand(Self.self, exitStatus: exitStatus(for:)) { try request.run() }
        } else {
            runCommandLine(Self.self, exitStatus: exitStatus(for:))
        }
    }

    /// Every command here names itself (`commandName`): without a name the argument parser derives one from
    /// the type's name (`String(describing:)` of the metatype) at every start, and each such derivation costs
    /// the runtime a scan of all protocol conformances in the binary.
    static let configuration = CommandConfiguration(
        commandName: "zlabel",
        abstract: "Read, verify and rewrite ZFS vdev labels in disk images and devices; publish images to EC2.",
        version: LibraryVersion.current,
        subcommands: [
            Inspect.self, Verify.self, Expect.self, SetLabels.self, Restore.self, RepairChecksums.self, Targets.self,
            BootViewCommand.self, DoctorCommand.self, EC2Forward.self,
        ]
    )
}

/// The exit status for a library error (README.md, "Exit codes"), or `nil` for errors the argument parser
/// reports itself.
func exitStatus(for error: any Error) -> Int32? { CommandExitStatus.forLabelError(error) }

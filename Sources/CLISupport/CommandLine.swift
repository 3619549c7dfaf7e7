// What both executables, `zlabel` and `zlabel-ec2`, do around their commands: run the parsed command, and turn
// a library error into one line on standard error and the exit status of README.md's table.

public import ArgumentParser
import ZLabel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Parses the process's arguments as `root`'s command line and runs the command. An error that `exitStatus`
/// maps ends the process with one line on standard error and that status; any other error goes to the
/// argument parser's own handling (usage errors print help and exit 64).
public func runCommandLine<Root: ParsableCommand>(_ root: Root.Type, exitStatus: (any Error) -> Int32?) async {
    do {
        var command = try root.parseAsRoot()
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        guard let status = exitStatus(error) else { root.exit(withError: error) }
        printError("zlabel: \(error is LabelEditError ? "refused, nothing written: " : "")\(error)")
        #if canImport(Glibc)
            Glibc.exit(status)
        #else
            Darwin.exit(status)
        #endif
    }
}

/// Writes a line to standard error (file descriptor 2), retrying short writes.
public func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + done, $0.count - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        done += n
    }
}

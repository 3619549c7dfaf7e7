// What both executables, `zlabel` and `zlabel-ec2`, do around their commands: run the parsed command, and turn
// a library error into one line on standard error and the exit status of README.md's table.

public import ArgumentParser
public import ZLabel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Parses the process's arguments as `root`'s command line and runs the command, on the main thread and without
/// starting the concurrency runtime: for a command line whose commands are all synchronous (`zlabel`). An error
/// that `exitStatus` maps ends the process with one line on standard error and that status; any other error goes
/// to the argument parser's own handling (usage errors print help and exit 64).
public func runCommandLine<Root: ParsableCommand>(_ root: Root.Type, exitStatus: (any Error) -> Int32?) {
    do {
        var command = try parseCommandLine(root)
        try command.run()
    } catch {
        exit(root, after: error, exitStatus: exitStatus)
    }
}

/// Runs `body`, a command whose arguments the caller read without the argument parser, and ends the process
/// after an error exactly as ``runCommandLine(_:exitStatus:)`` does for `root`'s commands.
public func runParsedCommand<Root: ParsableCommand>(_ root: Root.Type, exitStatus: (any Error) -> Int32?,
                                                    _ body: () throws -> Void) {
    do { try body() } catch { exit(root, after: error, exitStatus: exitStatus) }
}

/// ``runCommandLine(_:exitStatus:)`` for a command line with asynchronous commands (`zlabel-ec2`).
public func runAsyncCommandLine<Root: ParsableCommand>(_ root: Root.Type, exitStatus: (any Error) -> Int32?) async {
    do {
        var command = try parseCommandLine(root)
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        exit(root, after: error, exitStatus: exitStatus)
    }
}

/// The parsed command; a misspelled subcommand ends the process with a suggestion.
func parseCommandLine<Root: ParsableCommand>(_ root: Root.Type) throws -> any ParsableCommand {
    do { return try root.parseAsRoot() } catch {
        // A misspelled command: name the one meant instead of a bare "unexpected argument".
        if let hint = subcommandHint(root, arguments: Array(CommandLine.arguments.dropFirst())) {
            printError(hint)
            root.exit(withError: ExitCode.validationFailure)
        }
        throw error
    }
}

/// Ends the process after `error`: with its line and status when `exitStatus` maps it, else as the argument
/// parser does.
func exit<Root: ParsableCommand>(_ root: Root.Type, after error: any Error, exitStatus: (any Error) -> Int32?) -> Never {
    guard let status = exitStatus(error) else { root.exit(withError: error) }
    printError("zlabel: \(error is LabelEditError ? "refused, nothing written: " : "")\(error)\(flagHint(for: error))")
    #if canImport(Glibc)
        Glibc.exit(status)
    #else
        Darwin.exit(status)
    #endif
}

/// For a first argument that is no subcommand of `root` but close to one (two edits or fewer), the line that
/// names it: `zlabel: unknown command 'inpsect'; did you mean 'inspect'?`.
func subcommandHint<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]) -> String? {
    guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
    let names = Root.configuration.subcommands.map { $0._commandName }
    guard !names.contains(first) else { return nil }
    let near = names.map { ($0, editDistance($0, first)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }
    guard let near else { return nil }
    let program = Root.configuration.commandName ?? "zlabel"
    return "\(program): unknown command '\(first)'; did you mean '\(near.0)'? (`\(program) --help` lists the commands)"
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

/// Prints `body` on standard output as a versioned JSON document (`JSONDocument.wrap(_:)`).
public func printJSON(_ body: JSONValue) {
    print(JSONDocument.wrap(body).rendered())
}

/// The library's errors name no flag; for those whose remedy is a flag of `zlabel set`, the words that name it,
/// appended to the printed line.
package func flagHint(for error: any Error) -> String {
    switch error {
    case let e as LabelEditError:
        switch e.code {
        case .emptyEdit: return " (give --phys-path, --path, --devid, --remove-devid, --remove-hostid or --remove-hostname)"
        case .poolActive: return " (--force)"
        case .ambiguousLeaf: return e.message.contains("or path") ? " (--vdev GUID or --vdev PATH)" : " (--vdev GUID)"
        case .invalidValue where e.message.hasPrefix("devid cannot be empty"): return " (--remove-devid)"
        default: return ""
        }
    case let e as LabelWriteError:
        return e.backup.map { " (undo with `zlabel restore IMAGE --from \($0)`)" } ?? ""
    default:
        return ""
    }
}

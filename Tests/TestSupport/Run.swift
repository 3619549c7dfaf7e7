public import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a finished child process left behind.
public struct ProcessResult: Sendable, CustomStringConvertible {
    /// The command line, for messages.
    public let command: [String]
    /// The exit status; for a process killed by a signal, 128 + the signal number (as a shell reports it).
    public let status: Int32
    public let stdout: Data
    public let stderr: Data
    /// True when the process was killed because it ran past its time limit.
    public let timedOut: Bool

    public var succeeded: Bool { status == 0 && !timedOut }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// The command, its status and the tail of both streams: what a failing test should print.
    public var description: String {
        func tail(_ s: String) -> String {
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            return lines.suffix(40).joined(separator: "\n")
        }
        var s = "$ \(command.map(Run.shellQuoted).joined(separator: " "))\n"
        s += timedOut ? "(killed after its time limit)\n" : "exit status \(status)\n"
        if !stdout.isEmpty { s += "--- stdout (tail)\n\(tail(stdoutText))\n" }
        if !stderr.isEmpty { s += "--- stderr (tail)\n\(tail(stderrText))\n" }
        return s
    }
}

public enum RunError: Error, CustomStringConvertible {
    case cannotStart(command: [String], reason: String)

    public var description: String {
        switch self {
        case .cannotStart(let command, let reason):
            "cannot start \(command.joined(separator: " ")): \(reason)"
        }
    }
}

/// Runs child processes for tests: stdin from /dev/null, stdout and stderr captured in full (through temporary
/// files, so a chatty child never blocks on a full pipe), a time limit, and `LC_ALL=C` so tools print in one
/// language.
public enum Run {
    /// Runs `executable` (a path, or a name looked up in `PATH`) with `arguments` and waits for it.
    ///
    /// - Parameters:
    ///   - environment: variables added to (or replacing) this process's environment.
    ///   - currentDirectory: the child's working directory (default: this process's).
    ///   - timeout: seconds before the child is killed (SIGKILL) and the result marked `timedOut`.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: URL? = nil,
        timeout: TimeInterval = 600
    ) throws -> ProcessResult {
        let command = [executable] + arguments
        guard let path = resolve(executable) else {
            throw RunError.cannotStart(command: command, reason: "\(executable) not found in PATH")
        }
        let scratch = try TemporaryDirectory(prefix: "zlabel-run")
        let outURL = scratch.file("stdout"), errURL = scratch.file("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["LC_ALL"] = "C"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err

        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        do {
            try process.run()
        } catch {
            throw RunError.cannotStart(command: command, reason: "\(error)")
        }
        var timedOut = false
        if done.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            done.wait()
        }
        defer { scratch.remove() }
        let status: Int32 =
            process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return ProcessResult(
            command: command,
            status: status,
            stdout: (try? Data(contentsOf: outURL)) ?? Data(),
            stderr: (try? Data(contentsOf: errURL)) ?? Data(),
            timedOut: timedOut
        )
    }

    /// The absolute path of `name`: itself if it contains a slash, else the first executable match in `PATH`
    /// (plus the sbin directories, where Debian puts zdb, which a non-login PATH may lack).
    public static func resolve(_ name: String) -> String? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? name : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin"]
        for dir in dirs where !dir.isEmpty {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// `s` quoted for a POSIX shell when it needs quoting (for messages only).
    public static func shellQuoted(_ s: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+%")
        if !s.isEmpty && s.allSatisfy(safe.contains) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

import Foundation

/// External tools and oracle files for the tests. Tests that need a missing tool are skipped locally and fail when
/// `CI=true`.
enum Tools {
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    static func path(of tool: String) -> String? {
        let dirs =
            (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for dir in dirs {
            let candidate = dir + "/" + tool
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// True when every tool is installed, or when running in CI (where the test then fails on the missing tool).
    static func enabled(_ tools: String...) -> Bool {
        isCI || tools.allSatisfy { path(of: $0) != nil }
    }

    /// The oracle scripts: `$ZLABEL_SHARED_DIR/oracle`, else the repository's own `Tests/Oracle`, else
    /// `../shared/oracle` beside the repository.
    static var oracleDirectory: URL? {
        if let dir = ProcessInfo.processInfo.environment["ZLABEL_SHARED_DIR"] {
            return URL(fileURLWithPath: dir).appendingPathComponent("oracle")
        }
        let own = repositoryRoot.appendingPathComponent("Tests/Oracle")
        if FileManager.default.fileExists(atPath: own.appendingPathComponent("make-disk-image.py").path) { return own }
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        for _ in 0..<6 {
            url.deleteLastPathComponent()
            let candidate = url.deletingLastPathComponent().appendingPathComponent("shared/oracle")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("fixtures").path) {
                return candidate
            }
        }
        return nil
    }

    static var oracleEnabled: Bool { isCI || oracleDirectory != nil }

    /// The repository root (three levels above this file).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A fixture file: the repository's `Fixtures/NAME`, else the shared oracle's `fixtures/NAME`.
    static func fixture(_ name: String) -> URL? {
        let local = repositoryRoot.appendingPathComponent("Fixtures").appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: local.path) { return local }
        guard let oracle = oracleDirectory else { return nil }
        let shared = oracle.appendingPathComponent("fixtures").appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: shared.path) ? shared : nil
    }

    static func fixtureAvailable(_ name: String) -> Bool { isCI || fixture(name) != nil }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a shell command line; throws with its stderr when it exits non-zero.
    @discardableResult
    static func shell(_ command: String, stdin: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(
                description: "`\(command)` exited \(process.terminationStatus): "
                    + String(decoding: errors, as: UTF8.self))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "zlabel-partitions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func quote(_ path: String) -> String { "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

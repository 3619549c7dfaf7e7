public import Foundation

/// The built `zlabel` executable, for end-to-end tests of the command line.
///
/// ```swift
/// let run = try ZLabelCLI.run(["inspect", "--json", try Fixture.image("rpool-kvm.img").path])
/// #expect(run.status == 0, "\(run)")
/// let doc = try ExactJSON.parse(run.stdout)
/// ```
public enum ZLabelCLI {
    /// Where the executable is: `$ZLABEL_BIN` if set; else `zlabel` in the build products directory this test
    /// binary runs from (`.build/<triple>/debug/`); else `.build/debug/zlabel` in the repository.
    public static func executable() throws -> URL {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let bin = ProcessInfo.processInfo.environment["ZLABEL_BIN"], !bin.isEmpty {
            candidates.append(URL(fileURLWithPath: bin))
        }
        // The test process is <products>/<Package>PackageTests.xctest (a file on Linux, a bundle on macOS), or
        // swiftpm-testing-helper next to it; zlabel sits in <products>.
        var roots: [URL] = []
        if let exe = Bundle.main.executableURL { roots.append(exe.deletingLastPathComponent()) }
        roots.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            roots.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for root in roots {
            var dir = root.standardizedFileURL
            for _ in 0..<4 {  // inside a macOS bundle the executable sits in Contents/MacOS
                candidates.append(dir.appending(path: "zlabel", directoryHint: .notDirectory))
                dir.deleteLastPathComponent()
            }
        }
        candidates.append(Repository.root.appending(path: ".build/debug/zlabel", directoryHint: .notDirectory))
        for candidate in candidates where fm.isExecutableFile(atPath: candidate.path) {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
        }
        throw ZLabelCLIError.notBuilt(searched: candidates.map(\.path))
    }

    /// Runs `zlabel ARGUMENTS…` and captures its exit status, stdout and stderr.
    public static func run(_ arguments: [String], environment: [String: String] = [:],
                           currentDirectory: URL? = nil, timeout: TimeInterval = 300) throws -> ProcessResult {
        try Run.run(try executable().path, arguments, environment: environment,
                    currentDirectory: currentDirectory, timeout: timeout)
    }

    public static func run(_ arguments: String...) throws -> ProcessResult { try run(arguments) }
}

public enum ZLabelCLIError: Error, CustomStringConvertible {
    case notBuilt(searched: [String])

    public var description: String {
        switch self {
        case .notBuilt(let searched):
            "the zlabel executable was not found (run `swift build`, or set ZLABEL_BIN); looked at:\n"
                + searched.joined(separator: "\n")
        }
    }
}

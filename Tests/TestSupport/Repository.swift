public import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where things are in a checkout of this repository, found from this source file's own path, so tests work from
/// any working directory and in any clone.
public enum Repository {
    /// The repository root: the directory holding `Package.swift`.
    public static let root: URL = {
        // #filePath is <root>/Tests/TestSupport/Repository.swift.
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.standardizedFileURL
    }()

    /// `Fixtures/`: the compressed images and `make-fixtures.sh`.
    public static var fixtures: URL { root.appending(path: "Fixtures", directoryHint: .isDirectory) }

    /// `Fixtures/.cache/`: decompressed images (git-ignored).
    public static var fixtureCache: URL { fixtures.appending(path: ".cache", directoryHint: .isDirectory) }

    /// `Tests/Oracle/`: the real-ZFS and GRUB oracle scripts.
    public static var oracle: URL { root.appending(path: "Tests/Oracle", directoryHint: .isDirectory) }
}

/// A fresh directory for a test's files, under a per-process directory in `$TMPDIR` (or /tmp).
///
/// Everything is removed when the test process exits (and directories left by test processes that died are removed
/// by the next one), never earlier: Swift may end an object's lifetime right after its last use, so deleting in
/// `deinit` could pull files away from a child process that still works on them.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "zlabel-test") throws {
        let url = try TestFilesRoot.url()
            .appending(path: "\(prefix)-\(UUID().uuidString)", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        self.url = url
    }

    /// A path inside the directory (nothing is created).
    public func file(_ name: String) -> URL { url.appending(path: name, directoryHint: .notDirectory) }

    /// Removes the directory now (optional: it goes at process exit anyway).
    public func remove() { try? FileManager.default.removeItem(at: url) }
}

/// `$TMPDIR/zlabel-tests-<pid>/`: created on first use, removed at exit.
enum TestFilesRoot {
    private static let root: URL? = {
        let env = ProcessInfo.processInfo.environment
        let base = URL(fileURLWithPath: env["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp", isDirectory: true)
        let fm = FileManager.default
        // sweep what test processes that no longer run left behind
        for name in (try? fm.contentsOfDirectory(atPath: base.path)) ?? [] where name.hasPrefix("zlabel-tests-") {
            if let pid = Int32(name.dropFirst("zlabel-tests-".count)), kill(pid, 0) != 0, errno == ESRCH {
                try? fm.removeItem(at: base.appending(path: name, directoryHint: .isDirectory))
            }
        }
        let url = base.appending(path: "zlabel-tests-\(getpid())", directoryHint: .isDirectory)
        guard (try? fm.createDirectory(at: url, withIntermediateDirectories: true)) != nil else { return nil }
        atexit { TestFilesRoot.removeAtExit() }
        return url
    }()

    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "cannot create the test files directory under $TMPDIR" }
    }

    static func url() throws -> URL {
        guard let root else { throw Unavailable() }
        return root
    }

    private static func removeAtExit() {
        if let root { try? FileManager.default.removeItem(at: root) }
    }
}

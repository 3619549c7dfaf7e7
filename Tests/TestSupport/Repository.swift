public import Foundation

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

/// A directory under `$TMPDIR` (or /tmp) that is deleted with everything in it when the last reference goes away.
///
/// Keep the value alive for as long as the files are needed, e.g. as a local constant in the test.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "zlabel-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let url = URL(fileURLWithPath: base, isDirectory: true)
            .appending(path: "\(prefix)-\(UUID().uuidString)", directoryHint: .isDirectory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        self.url = url
    }

    /// A path inside the directory (nothing is created).
    public func file(_ name: String) -> URL { url.appending(path: name, directoryHint: .notDirectory) }

    deinit { try? FileManager.default.removeItem(at: url) }
}

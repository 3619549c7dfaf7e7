// Real label bytes for the benchmarks, cut out of the compressed pool images in the repository's
// Fixtures/ folder. Only the first 256 KiB (label 0) of an image is decompressed.

public import Foundation

#if canImport(Glibc)
    import Glibc
#endif
public import NVList

/// Label 0 of a fixture image and the packed config nvlist it holds.
public struct LabelFixture: Sendable {
    /// The image's name without extensions, e.g. `rpool-kvm`.
    public let name: String
    /// The 256 KiB of label 0.
    public let label: [UInt8]
    /// The packed XDR config, exactly as many bytes as the stream occupies.
    public let stream: [UInt8]
    /// The decoded config and its header.
    public let decoded: NVDecodedStream

    /// The 112 KiB config area (`vdev_phys_t`), embedded checksum included.
    public var configArea: [UInt8] { Array(label[0x4000..<(0x4000 + 112 * 1024)]) }

    /// Loads `Fixtures/<name>.img.xz` (or `.dat.xz`, `.dat.bz2`, `.img.bz2`).
    ///
    /// - Throws: when the image is missing, cannot be decompressed, or its label 0 has no readable config.
    public init(_ name: String) throws {
        self.name = name
        let area = 0x4000..<(0x4000 + 112 * 1024 - 40)
        label = try Self.firstBytes(of: try Self.locate(name), count: 256 * 1024)
        decoded = try NVList.decode(xdr: Array(label[area]))
        stream = Array(label[area.lowerBound..<(area.lowerBound + decoded.byteCount)])
    }

    /// The repository's Fixtures/ folder (override with `ZLABEL_FIXTURES`).
    public static var directory: URL {
        if let path = ProcessInfo.processInfo.environment["ZLABEL_FIXTURES"] { return URL(fileURLWithPath: path) }
        // Benchmarks/Sources/BenchmarkFixtures/LabelFixture.swift -> the repository root
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures")
    }

    static func locate(_ name: String) throws -> URL {
        for suffix in [".img.xz", ".dat.xz", ".img.bz2", ".dat.bz2"] {
            let url = directory.appendingPathComponent(name + suffix)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw FixtureError(description: "no fixture image named \(name) in \(directory.path)")
    }

    /// The first `count` bytes of a compressed file, through `xz -dc` or `bzip2 -dc` and `head -c` in a
    /// shell pipeline (`popen`): `head` stops the decompressor once it has the bytes. (Foundation's `Process`
    /// is not used: its `waitUntilExit` hung inside the benchmark runner.)
    static func firstBytes(of url: URL, count: Int) throws -> [UInt8] {
        let tool = url.pathExtension == "bz2" ? "bzip2" : "xz"
        let quoted = "'" + url.path.replacingOccurrences(of: "'", with: "'\\''") + "'"
        guard let pipe = popen("\(tool) -dc \(quoted) | head -c \(count)", "r") else {
            throw FixtureError(description: "cannot start \(tool) for \(url.lastPathComponent)")
        }
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, count, pipe) }
        pclose(pipe)
        guard got == count else {
            throw FixtureError(description: "\(url.lastPathComponent) gave \(got) bytes, not \(count)")
        }
        return bytes
    }
}

/// A fixture could not be loaded.
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
}

public import Foundation

/// The bytes of an image file at one moment, to compare the file with later.
public struct ImageSnapshot: Sendable {
    public let url: URL
    public let bytes: Data

    public init(_ url: URL) throws {
        self.url = url
        self.bytes = try Data(contentsOf: url)
    }

    /// The first byte offset outside `allowed` at which the file now differs from the snapshot (a size change
    /// counts as a difference at the shorter length), or nil when every such byte is as it was.
    public func firstChange(outside allowed: [Range<Int>] = []) throws -> Int? {
        let now = try Data(contentsOf: url)
        let common = min(now.count, bytes.count)
        var cursor = 0
        for range in allowed.sorted(by: { $0.lowerBound < $1.lowerBound }) + [common..<common] {
            let end = min(max(range.lowerBound, cursor), common)
            if cursor < end, bytes[cursor..<end] != now[cursor..<end] {
                return (cursor..<end).first { bytes[$0] != now[$0] }
            }
            cursor = max(cursor, min(range.upperBound, common))
        }
        return now.count == bytes.count ? nil : common
    }

    /// Whether the whole file is byte for byte as it was.
    public func isUnchanged() throws -> Bool { try firstChange() == nil }

    /// The snapshot's bytes of `range`.
    public subscript(range: Range<Int>) -> Data { bytes[range] }
}

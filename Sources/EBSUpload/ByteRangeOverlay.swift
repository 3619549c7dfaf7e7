import Crypto
import Foundation

/// Byte ranges that replace the image's own bytes during an upload, leaving the image file untouched.
///
/// The publish command uses this to upload an image with edited ZFS labels: the label edits become patches,
/// and the uploader sends the patched blocks as if the file held them. A patch may cover a hole of a sparse
/// image; the blocks it touches are then read and sent like any data block.
///
/// Patches never overlap; adding one that overlaps an existing patch throws.
public struct ByteRangeOverlay: Sendable, Equatable {
    /// One replacement: `bytes` at `offset`.
    public struct Patch: Sendable, Equatable {
        /// Byte offset in the image.
        public var offset: UInt64
        /// The replacement bytes (not empty).
        public var bytes: [UInt8]
        /// The byte range replaced.
        public var range: Range<UInt64> { offset..<(offset + UInt64(bytes.count)) }
    }

    /// The patches, sorted by offset.
    public private(set) var patches: [Patch] = []

    /// An empty overlay.
    public init() {}

    /// An overlay made of `patches`.
    ///
    /// - Throws: ``OverlayError`` when two patches overlap, one is empty, or one runs past 2^64.
    public init(_ patches: [(offset: UInt64, bytes: [UInt8])]) throws(OverlayError) {
        for p in patches { try replace(at: p.offset, with: p.bytes) }
    }

    /// Adds a patch.
    ///
    /// - Throws: ``OverlayError`` when it is empty, overflows, or overlaps an existing patch.
    public mutating func replace(at offset: UInt64, with bytes: [UInt8]) throws(OverlayError) {
        guard !bytes.isEmpty else { throw OverlayError("empty patch at offset \(offset)") }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow else { throw OverlayError("patch at offset \(offset) runs past 2^64") }
        let i = patches.firstIndex(where: { $0.offset >= offset }) ?? patches.count
        if i > 0, patches[i - 1].range.upperBound > offset {
            throw OverlayError("patch \(offset)..<\(end) overlaps patch \(patches[i - 1].range)")
        }
        if i < patches.count, patches[i].offset < end {
            throw OverlayError("patch \(offset)..<\(end) overlaps patch \(patches[i].range)")
        }
        patches.insert(Patch(offset: offset, bytes: bytes), at: i)
    }

    /// True when there is nothing to replace.
    public var isEmpty: Bool { patches.isEmpty }

    /// The end of the last patch (0 when empty).
    public var upperBound: UInt64 { patches.last?.range.upperBound ?? 0 }

    /// Copies every patch byte that falls in `buffer`, which holds the image bytes at `offset`.
    public func apply(to buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) {
        let end = offset + UInt64(buffer.count)
        // First patch that ends after `offset` (patches are sorted and disjoint, so ends are sorted too).
        var lo = 0
        var hi = patches.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if patches[mid].range.upperBound <= offset { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while i < patches.count, patches[i].offset < end {
            let p = patches[i]
            let from = max(p.offset, offset)
            let to = min(p.range.upperBound, end)
            p.bytes.withUnsafeBytes { src in
                let s = Int(from - p.offset)
                let d = Int(from - offset)
                let n = Int(to - from)
                (buffer.baseAddress! + d).copyMemory(from: src.baseAddress! + s, byteCount: n)
            }
            i += 1
        }
    }

    /// The block index ranges the patches touch, for blocks of `blockSize` bytes.
    public func blockRanges(blockSize: UInt64) -> [Range<UInt64>] {
        patches.map { ($0.offset / blockSize)..<(($0.range.upperBound + blockSize - 1) / blockSize) }
    }

    /// Lower-case hex SHA-256 over every patch (offset, length, bytes), to tell overlays apart in the journal.
    public var digest: String {
        var h = SHA256()
        for p in patches {
            withUnsafeBytes(of: p.offset.littleEndian) { h.update(bufferPointer: $0) }
            withUnsafeBytes(of: UInt64(p.bytes.count).littleEndian) { h.update(bufferPointer: $0) }
            h.update(data: p.bytes)
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// An overlay that cannot be built or does not fit the image.
public struct OverlayError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What is wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { "overlay: \(message)" }
}

import CXXHash
import Crypto
import DiskContainers

/// Reads 512 KiB blocks of an image: only the data extents are read (holes become zeros without a read),
/// the part past the end of the image is zero padding, and overlay patches are applied last.
public struct ImageBlockReader: Sendable {
    /// The image.
    public let source: any ImageSource
    /// Its data extents, sorted and disjoint.
    public let extents: [Range<UInt64>]
    /// Replacement bytes.
    public let overlay: ByteRangeOverlay
    /// The block size (524288 for EBS).
    public let blockSize: Int

    /// Creates a reader; finds the extents once.
    ///
    /// - Throws: `ImageError` from the extent scan, ``OverlayError`` when the overlay runs past the image.
    public init(source: any ImageSource, overlay: ByteRangeOverlay = ByteRangeOverlay(), blockSize: Int = ebsBlockSize)
        throws
    {
        guard overlay.upperBound <= source.size else {
            throw OverlayError(
                "a patch ends at byte \(overlay.upperBound), past the end of the image (\(source.size) bytes)")
        }
        self.source = source
        self.extents = try source.dataExtents()
        self.overlay = overlay
        self.blockSize = blockSize
    }

    /// Bytes in data extents (what a full read of the image costs).
    public var dataBytes: UInt64 { extents.reduce(0) { $0 + UInt64($1.count) } }

    /// Fills `buffer` (``blockSize`` bytes) with block `index`.
    ///
    /// - Returns: the number of bytes read from the image (0 for a block that lies in a hole).
    @discardableResult
    public func read(block index: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        precondition(buffer.count == blockSize)
        let start = index * UInt64(blockSize)
        let end = start + UInt64(blockSize)
        var read = 0
        var cursor = start
        var i = firstExtent(endingAfter: start)
        while i < extents.count, extents[i].lowerBound < end {
            let lo = max(extents[i].lowerBound, start)
            let hi = min(extents[i].upperBound, end, source.size)
            if lo > cursor {
                (buffer.baseAddress! + Int(cursor - start)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(lo - cursor))
            }
            if hi > lo {
                try source.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[Int(lo - start)..<Int(hi - start)]), at: lo)
                read += Int(hi - lo)
                cursor = hi
            }
            i += 1
        }
        if cursor < end {
            (buffer.baseAddress! + Int(cursor - start)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(end - cursor))
        }
        if !overlay.isEmpty { overlay.apply(to: buffer, at: start) }
        return read
    }

    /// Asks the image to start reading the data extents of block `index` into the cache (holes need nothing).
    public func prefetch(block index: UInt64) {
        let start = index * UInt64(blockSize)
        let end = min(start + UInt64(blockSize), source.size)
        var i = firstExtent(endingAfter: start)
        while i < extents.count, extents[i].lowerBound < end {
            let lo = max(extents[i].lowerBound, start)
            let hi = min(extents[i].upperBound, end)
            if hi > lo { source.prefetch(lo..<hi) }
            i += 1
        }
    }

    /// Block index ranges that contain data or overlay patches, clipped to `blockLimit`, sorted and merged.
    public func candidateRanges(blockLimit: UInt64, extra: [Range<UInt64>] = []) -> [Range<UInt64>] {
        let bs = UInt64(blockSize)
        var ranges = extents.map { ($0.lowerBound / bs)..<(($0.upperBound + bs - 1) / bs) }
        ranges += overlay.blockRanges(blockSize: bs)
        ranges += extra
        return Self.merge(ranges, limit: blockLimit)
    }

    static func merge(_ input: [Range<UInt64>], limit: UInt64) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for r in input.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let c = r.clamped(to: 0..<limit)
            if c.isEmpty { continue }
            if let last = out.last, last.upperBound >= c.lowerBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, c.upperBound)
            } else {
                out.append(c)
            }
        }
        return out
    }

    private func firstExtent(endingAfter offset: UInt64) -> Int {
        var lo = 0
        var hi = extents.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if extents[mid].upperBound <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// Hashes of one block.
public struct BlockDigest: Sendable, Equatable {
    /// Raw SHA-256 (32 bytes).
    public var sha256: [UInt8]
    /// XXH3-64, for the local manifest.
    public var xxh3: UInt64
    /// True when every byte is zero.
    public var isZero: Bool

    /// Hashes `block`. SHA-256 is only computed when `needSHA` is true (a skipped block needs none).
    public static func of(_ block: UnsafeRawBufferPointer, needSHA: Bool = true) -> BlockDigest {
        let zero = isAllZero(block)
        let x = zlabel_xxh3_64(block.baseAddress, block.count)
        let s = needSHA ? Array(SHA256.hash(data: block)) : []
        return BlockDigest(sha256: s, xxh3: x, isZero: zero)
    }
}

// Random-access input for the partition parsers.
//
// The parsers read only the sectors that hold tables (MBR, EBRs, GPT headers and entry arrays, SMI labels), never
// the data between them, so a 1 TiB sparse image costs the same as a 64 MiB one. The image module conforms real
// files and block devices to `ByteSource`; tests and fuzz targets use `MemoryByteSource`.

/// A read-only, random-access view of a disk image or block device.
///
/// Conforming types return exactly the bytes asked for or throw. The parsers never ask for a range that ends past
/// ``size``.
public protocol ByteSource: Sendable {
    /// The size of the image or device in bytes.
    var size: UInt64 { get }

    /// Returns `count` bytes starting at byte `offset`.
    ///
    /// The corresponding C function is `pread`.
    ///
    /// - Parameters:
    ///   - offset: The absolute byte offset of the first byte.
    ///   - count: How many bytes to return; never negative.
    /// - Returns: An array of exactly `count` bytes.
    /// - Throws: Whatever the underlying I/O throws, or an error when the range is outside the source.
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8]
}

/// A ``ByteSource`` backed by an in-memory byte array, for tests and fuzzing.
public struct MemoryByteSource: ByteSource {
    /// The bytes of the image.
    public let storage: [UInt8]

    /// Wraps `storage` as a disk image.
    public init(_ storage: [UInt8]) {
        self.storage = storage
    }

    public var size: UInt64 { UInt64(storage.count) }

    /// Returns `count` bytes starting at `offset`.
    ///
    /// - Throws: ``PartitionTableError`` with code `.outOfBounds` when the range is not inside the array.
    public func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw PartitionTableError(
                .outOfBounds, at: offset, "read of \(count) bytes is outside the \(size)-byte in-memory image")
        }
        let start = Int(offset)
        return Array(storage[start..<(start + count)])
    }
}

extension ByteSource {
    /// Reads a range after checking it against ``size``, and checks the length of what came back.
    func read(at offset: UInt64, count: Int, what: String) throws -> [UInt8] {
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw PartitionTableError(
                .outOfBounds, at: offset,
                "\(what) (\(count) bytes) lies past the end of the image (\(size) bytes)")
        }
        let bytes = try bytes(at: offset, count: count)
        guard bytes.count == count else {
            throw PartitionTableError(
                .shortRead, at: offset, "short read of \(what): asked for \(count) bytes, got \(bytes.count)")
        }
        return bytes
    }
}

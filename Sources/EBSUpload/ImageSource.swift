// Where the bytes of an image come from, and which parts of it hold data. A raw image or block device is
// RawIO's `ImageFile` (its holes found with SEEK_DATA/SEEK_HOLE, never read); ContainerSource.swift presents a
// VM disk container's virtual disk.

public import RawIO

/// A random-access, read-only image.
public protocol ImageSource: Sendable {
    /// Size in bytes.
    var size: UInt64 { get }
    /// Byte ranges that may hold data, sorted and disjoint; everything else reads as zeros.
    func dataExtents() throws -> [Range<UInt64>]
    /// Fills `buffer` from `offset`; the range lies inside the image. Every byte of `buffer` must be written, or
    /// the call must throw: the uploader does not clear its buffers first.
    ///
    /// - Throws: `ImageError` on I/O errors or a short read.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    /// Asks the system to start reading `range` into its cache without waiting for it: a hint, which may do
    /// nothing. The default does nothing.
    func prefetch(_ range: Range<UInt64>)
}

extension ImageSource {
    public func prefetch(_ range: Range<UInt64>) {}
}

/// An I/O problem with the image, naming the file and the byte offset: RawIO's, shared with the label side.
public typealias ImageError = RawIO.ImageError
/// A regular file or block device (see `RawIO.ImageFile`); the uploader opens it read-only.
public typealias ImageFile = RawIO.ImageFile
/// What identifies a file's content cheaply, for the resume journal (see `RawIO.FileIdentity`).
public typealias FileIdentity = RawIO.FileIdentity

extension ImageFile: ImageSource {}

extension ImageError {
    /// A failure of a file the uploader keeps beside the image (its journal): `message`, then the system's
    /// sentence for `errno`.
    init(path: String, _ message: String, errno: Int32? = nil) {
        self.init(.other, path: path, errno: errno,
                  message: errno.map { "\(message): \(ImageError.describe(errno: $0))" } ?? message)
    }
}

/// An image held in memory, with explicit data extents (for tests and small images).
public struct InMemoryImage: ImageSource {
    /// The bytes.
    public var bytes: [UInt8]
    /// The extents reported as data; nil means "all of it".
    public var extents: [Range<UInt64>]?

    /// Creates an image.
    public init(bytes: [UInt8], extents: [Range<UInt64>]? = nil) {
        self.bytes = bytes
        self.extents = extents
    }

    public var size: UInt64 { UInt64(bytes.count) }

    public func dataExtents() throws -> [Range<UInt64>] { extents ?? (bytes.isEmpty ? [] : [0..<size]) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !overflow, end <= size else {
            throw ImageError(.range, path: "<memory>", offset: offset,
                             message: "a read of \(buffer.count) bytes runs past the end of the image (\(size) bytes)")
        }
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<(Int(offset) + buffer.count)]))
        }
    }
}

/// Random access to the bytes of a disk image or block device.
///
/// This is the seam between the pure label code and the system: `ImageFile` reads and writes real files
/// and devices with positional I/O, ``MemoryImage`` keeps the bytes in memory for tests, and a test can wrap
/// either to inject faults (stop after the k-th write, say).
public protocol ImageStorage: AnyObject, Sendable {
    /// A name for messages: the path of a file or device.
    var path: String { get }
    /// Size in bytes.
    var size: UInt64 { get }
    /// Whether ``write(_:at:)`` is allowed.
    var isWritable: Bool { get }

    /// Reads exactly `count` bytes at `offset`.
    ///
    /// - Throws: `ImageError` when the range passes the end or the read fails.
    func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8]

    /// Fills all of `buffer` with the bytes at `offset`: ``read(at:count:)`` into memory the caller reuses.
    ///
    /// - Throws: `ImageError` when the range passes the end or the read fails.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ImageError)

    /// Writes all of `bytes` at `offset`; never past the end of the image.
    func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError)

    /// Flushes written bytes to stable storage (`fsync`).
    func synchronize() throws(ImageError)
}

extension ImageStorage {
    /// The default: ``read(at:count:)`` copied into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ImageError) {
        let bytes = try read(at: offset, count: buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    /// Checks that `count` bytes at `offset` lie inside the image, without overflow.
    public func checkRange(_ offset: UInt64, _ count: Int, _ what: String) throws(ImageError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(max(count, 0)))
        guard count >= 0, !overflow, end <= size else {
            throw ImageError(.range, path: path, offset: offset,
                             message: "\(what) of \(count) bytes runs past the end of the image (\(size) bytes)")
        }
    }
}

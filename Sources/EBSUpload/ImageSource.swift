// Where the bytes of an image come from, and which parts of it hold data.
//
// A sparse file's holes are found with lseek(SEEK_DATA) / lseek(SEEK_HOLE) and never read. Glibc does not
// export those names to Swift, so their Linux values (3 and 4) are spelled out here. A file system that
// does not support them (EINVAL) is treated as all data; block devices report the whole device as data.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A random-access, read-only image.
public protocol ImageSource: Sendable {
    /// Size in bytes.
    var size: UInt64 { get }
    /// Byte ranges that may hold data, sorted and disjoint; everything else reads as zeros.
    func dataExtents() throws -> [Range<UInt64>]
    /// Fills `buffer` from `offset`; the range lies inside the image. Every byte of `buffer` must be written, or
    /// the call must throw: the uploader does not clear its buffers first.
    ///
    /// - Throws: ``ImageError`` on I/O errors or a short read.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    /// Asks the system to start reading `range` into its cache without waiting for it: a hint, which may do
    /// nothing. The default does nothing.
    func prefetch(_ range: Range<UInt64>)
}

extension ImageSource {
    public func prefetch(_ range: Range<UInt64>) {}
}

/// An I/O problem with the image.
public struct ImageError: Error, Sendable, CustomStringConvertible {
    /// The image path.
    public var path: String
    /// What failed.
    public var message: String
    /// The errno value, when there was one.
    public var errno: Int32?
    /// Creates an error.
    public init(path: String, _ message: String, errno: Int32? = nil) {
        self.path = path
        self.message = message
        self.errno = errno
    }
    public var description: String {
        var s = "\(path): \(message)"
        if let errno { s += " (\(String(cString: strerror(errno))))" }
        return s
    }
}

/// A regular file or block device, opened read-only.
///
/// Safe to share between tasks: it only uses `pread` and `lseek` with explicit offsets on a descriptor that
/// does not change after `init`. `dataExtents()` moves the file offset, which `pread` does not use.
public final class ImageFile: ImageSource, @unchecked Sendable {
    /// The path it was opened with.
    public let path: String
    /// Size in bytes (for a block device: the device size).
    public let size: UInt64
    /// Identity at open time, for the resume journal.
    public let identity: FileIdentity
    private let fd: Int32

    /// Linux `SEEK_DATA`.
    static let seekData: Int32 = 3
    /// Linux `SEEK_HOLE`.
    static let seekHole: Int32 = 4

    /// Opens `path` read-only.
    ///
    /// - Throws: ``ImageError`` when it cannot be opened or is neither a regular file nor a block device.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError(path: path, "cannot open", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw ImageError(path: path, "cannot stat", errno: e)
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            close(fd)
            throw ImageError(path: path, "not a regular file or block device")
        }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            let e = errno
            close(fd)
            throw ImageError(path: path, "cannot find the size", errno: e)
        }
        self.fd = fd
        self.path = path
        self.size = UInt64(end)
        self.identity = FileIdentity(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: UInt64(end),
            modifiedNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    deinit { close(fd) }

    public func dataExtents() throws -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        var pos: off_t = 0
        let end = off_t(size)
        while pos < end {
            let d = lseek(fd, pos, Self.seekData)
            if d < 0 {
                let e = errno
                if e == ENXIO { break }  // no data after pos
                if e == EINVAL && pos == 0 { return size == 0 ? [] : [0..<size] }  // not supported here
                throw ImageError(path: path, "SEEK_DATA at \(pos) failed", errno: e)
            }
            var h = lseek(fd, d, Self.seekHole)
            if h < 0 {
                let e = errno
                if e == ENXIO { h = end } else { throw ImageError(path: path, "SEEK_HOLE at \(d) failed", errno: e) }
            }
            let lo = UInt64(d)
            let hi = UInt64(min(h, end))
            if hi > lo {
                if let last = out.last, last.upperBound >= lo {
                    out[out.count - 1] = last.lowerBound..<max(last.upperBound, hi)
                } else {
                    out.append(lo..<hi)
                }
            }
            guard h > pos else { break }
            pos = h
        }
        return out
    }

    /// `posix_fadvise(POSIX_FADV_WILLNEED)`: the kernel starts reading the range, so that the `pread` that
    /// follows a little later finds it cached instead of blocking its thread on the disk.
    public func prefetch(_ range: Range<UInt64>) {
        guard !range.isEmpty, range.upperBound <= UInt64(Int64.max) else { return }
        _ = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_WILLNEED)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError(path: path, "read of \(buffer.count) bytes at \(offset) failed", errno: errno)
            }
            if n == 0 {
                throw ImageError(path: path, "unexpected end of file at \(offset + UInt64(done))")
            }
            done += n
        }
    }
}

/// What identifies a file's content cheaply: device, inode, size and modification time.
public struct FileIdentity: Sendable, Equatable, Codable {
    /// `st_dev`.
    public var device: UInt64
    /// `st_ino`.
    public var inode: UInt64
    /// Size in bytes.
    public var size: UInt64
    /// `st_mtim` in nanoseconds.
    public var modifiedNanoseconds: Int64

    /// Creates an identity.
    public init(device: UInt64, inode: UInt64, size: UInt64, modifiedNanoseconds: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
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
        guard offset + UInt64(buffer.count) <= size else {
            throw ImageError(path: "<memory>", "read past the end at \(offset)")
        }
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<(Int(offset) + buffer.count)]))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A disk image file or a block device, read and written with positional I/O (`pread`, `pwrite`).
///
/// Only the byte ranges asked for are touched, so a sparse 1 TiB image costs what a small one does.
/// Opening a block device for writing claims it exclusively (`O_EXCL`), which the kernel refuses while a
/// file system, a pool or another program holds it; a device with a mounted partition is refused as well.
public final class ImageFile: ImageStorage {
    /// The path the image was opened by.
    public let path: String
    /// Size in bytes: the file's length, or the device's capacity.
    public let size: UInt64
    /// Whether the image was opened for writing.
    public let isWritable: Bool
    /// Whether this is a block device rather than a regular file.
    public let isBlockDevice: Bool
    private let fd: Int32

    /// How to open an image.
    public enum Mode: Sendable {
        case readOnly
        case readWrite
    }

    /// Opens a file or block device.
    ///
    /// - Throws: ``ImageError`` when it cannot be opened, is neither a regular file nor a block device, its
    ///   size cannot be found, or (for writing) a device is in use.
    public init(path: String, mode: Mode = .readOnly) throws(ImageError) {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ImageError(.open, path: path, errno: errno, message: "cannot open: \(Self.describe(errno))")
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            throw ImageError(.open, path: path, message: "is neither a regular file nor a block device")
        }
        isBlockDevice = kind == S_IFBLK
        if isBlockDevice && mode == .readWrite {
            if let mount = Self.mountedPartition(of: st.st_rdev) {
                throw ImageError(.busy, path: path, message: "is in use: \(mount) is mounted")
            }
        }
        var flags = O_CLOEXEC | (mode == .readWrite ? O_RDWR : O_RDONLY)
        if isBlockDevice && mode == .readWrite { flags |= O_EXCL }
        let fd = Self.retrying { open(path, flags) }
        guard fd >= 0 else {
            let e = errno
            let code: ImageError.Code = e == EBUSY ? .busy : .open
            let why = e == EBUSY ? "is held open exclusively by another program or mounted" : Self.describe(e)
            throw ImageError(code, path: path, errno: e, message: "cannot open for \(mode == .readWrite ? "writing" : "reading"): \(why)")
        }
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            let e = errno
            close(fd)
            throw ImageError(.size, path: path, errno: e, message: "cannot find the size: \(Self.describe(e))")
        }
        self.fd = fd
        self.size = UInt64(end)
        self.isWritable = mode == .readWrite
    }

    deinit { close(fd) }

    public func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        try checkRange(offset, count, "a read")
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                Self.retrying { pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            }
            if n < 0 {
                let e = errno
                throw ImageError(.read, path: path, offset: offset + UInt64(done), errno: e, message: "read failed: \(Self.describe(e))")
            }
            if n == 0 {
                throw ImageError(.read, path: path, offset: offset + UInt64(done), message: "unexpected end of file")
            }
            done += n
        }
        return buffer
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        guard isWritable else {
            throw ImageError(.write, path: path, offset: offset, message: "image is open read-only")
        }
        try checkRange(offset, bytes.count, "a write")
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Self.retrying { pwrite(fd, raw.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
            }
            if n <= 0 {
                let e = errno
                throw ImageError(.write, path: path, offset: offset + UInt64(done), errno: e, message: "write failed: \(Self.describe(e))")
            }
            done += n
        }
    }

    public func synchronize() throws(ImageError) {
        guard Self.retrying({ fsync(fd) }) == 0 else {
            let e = errno
            throw ImageError(.flush, path: path, errno: e, message: "fsync failed: \(Self.describe(e))")
        }
    }

    private static func retrying<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let r = call()
            if r == -1 && errno == EINTR { continue }
            return r
        }
    }

    static func describe(_ e: Int32) -> String {
        guard let s = strerror(e) else { return "errno \(e)" }
        return String(cString: s)
    }

    /// The mount point of the device or of one of its partitions, from /proc/self/mountinfo and sysfs.
    private static func mountedPartition(of rdev: dev_t) -> String? {
        // glibc's encoding of dev_t (gnu_dev_major / gnu_dev_minor are macros Swift cannot see).
        let d = UInt64(rdev)
        let major = ((d >> 8) & 0xfff) | ((d >> 32) & ~UInt64(0xfff))
        let minor = (d & 0xff) | ((d >> 12) & ~UInt64(0xff))
        var devices: Set<String> = ["\(major):\(minor)"]
        // Partitions of a disk appear as subdirectories of its sysfs node holding a "dev" file.
        let base = "/sys/dev/block/\(major):\(minor)"
        if let dir = opendir(base) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasPrefix(".") { continue }
                if let dev = readSmallFile("\(base)/\(name)/dev") {
                    devices.insert(dev.trimmingWhitespace())
                }
            }
            closedir(dir)
        }
        guard let info = readSmallFile("/proc/self/mountinfo") else { return nil }
        for line in info.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, devices.contains(String(fields[2])) { return String(fields[4]) }
        }
        return nil
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > 16 << 20 { break }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

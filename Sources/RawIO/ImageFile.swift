// The one place that opens disk images and block devices: positional reads and writes through swift-system's
// `FileDescriptor` (which retries EINTR), the size of a file or a device, its holes and read-ahead hints.
// What differs between Linux, macOS and FreeBSD lives in ImageFile+Platform.swift.

import SystemPackage

/// A disk image file or a block device, read and written with positional I/O (`pread`, `pwrite`).
///
/// Only the byte ranges asked for are touched, so a sparse 1 TiB image costs what a small one does. Every read
/// and write is checked against ``size`` first and fills or writes all its bytes or throws; a short read (the
/// file shrank under us) throws too. Opening a block device for writing claims it exclusively on Linux
/// (`O_EXCL`), which the kernel refuses while a file system, a pool or another program holds it, and a device
/// with a mounted partition is refused as well.
///
/// Safe to share between tasks: the descriptor does not change after `init`, reads and writes carry their own
/// offsets, and ``dataExtents()`` only moves the file offset, which they do not use.
public final class ImageFile: Sendable {
    /// How to open an image.
    public enum Mode: Sendable {
        case readOnly
        case readWrite
    }

    /// The path the image was opened by.
    public let path: String
    /// Size in bytes: the file's length, or the device's capacity.
    public let size: UInt64
    /// Whether the image was opened for writing.
    public let isWritable: Bool
    /// Whether this is a block device rather than a regular file.
    public let isBlockDevice: Bool
    /// What identified the file when it was opened (device, inode, size, modification time).
    public let identity: FileIdentity
    private let descriptor: CInt

    private var fd: FileDescriptor { FileDescriptor(rawValue: descriptor) }

    /// Opens a regular file or a block device.
    ///
    /// - Throws: ``ImageError`` when it cannot be opened, is neither a regular file nor a block device, its
    ///   size cannot be found, or (for writing) a device is in use.
    public init(path: String, mode: Mode = .readOnly) throws(ImageError) {
        let before: Stat
        switch Self.status(path: path) {
        case .success(let info): before = info
        case .failure(let error): throw ImageError(.open, path: path, errno: error.rawValue, message: "cannot open: \(error)")
        }
        guard before.type == .regular || before.type == .blockSpecial else {
            throw ImageError(.open, path: path, message: "is neither a regular file nor a block device")
        }
        let isBlockDevice = before.type == .blockSpecial
        let writing = mode == .readWrite
        if isBlockDevice && writing, let mount = Self.mountedPartition(of: before.specialDeviceID.rawValue) {
            throw ImageError(.busy, path: path, message: "is in use: \(mount) is mounted")
        }
        var options: FileDescriptor.OpenOptions = [.closeOnExec]
        if isBlockDevice && writing { options.formUnion(Self.exclusiveDeviceOpen) }
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, writing ? .readWrite : .readOnly, options: options) } catch {
            let e = (error as? Errno)?.rawValue
            let busy = e == Errno.resourceBusy.rawValue
            let why = busy ? "is held open exclusively by another program or mounted" : Self.describe(error)
            throw ImageError(busy ? .busy : .open, path: path, errno: e,
                             message: "cannot open for \(writing ? "writing" : "reading"): \(why)")
        }
        // What was opened, not what the path named a moment before.
        let opened: Stat
        switch Self.status(fd.rawValue) {
        case .success(let info): opened = info
        case .failure(let error):
            try? fd.close()
            throw ImageError(.open, path: path, errno: error.rawValue, message: "cannot stat: \(error)")
        }
        guard opened.type == before.type else {
            try? fd.close()
            throw ImageError(.open, path: path, message: "changed while it was being opened")
        }
        let size: UInt64
        if isBlockDevice {
            switch Self.deviceSize(fd.rawValue) {
            case .success(let bytes): size = bytes
            case .failure(let e):
                try? fd.close()
                throw ImageError(.size, path: path, errno: e.rawValue, message: "cannot find the device's size: \(e)")
            }
        } else {
            size = UInt64(max(opened.size, 0))
        }
        let modified = opened.st_mtim  // portable: swift-system's Stat.st_mtim is st_mtimespec on macOS
        self.path = path
        self.descriptor = fd.rawValue
        self.size = size
        self.isWritable = writing
        self.isBlockDevice = isBlockDevice
        self.identity = FileIdentity(
            device: UInt64(truncatingIfNeeded: opened.deviceID.rawValue),
            inode: UInt64(truncatingIfNeeded: opened.inode.rawValue), size: size,
            modifiedNanoseconds: Int64(modified.tv_sec) * 1_000_000_000 + Int64(modified.tv_nsec))
    }

    deinit { try? fd.close() }

    /// Fills all of `buffer` with the bytes at `offset`.
    ///
    /// - Throws: ``ImageError`` when the range passes the end of the image (code ``ImageError/Code/range``), a
    ///   read fails, or the file ends early; the error names the byte offset.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ImageError) {
        try checkRange(offset, buffer.count, "a read")
        if buffer.count >= Self.holeAwareReadSize, !isBlockDevice, let seeking = Self.holeSeeking {
            try readAroundHoles(into: buffer, at: offset, seeking)
            return
        }
        try readAll(into: buffer, at: offset)
    }

    /// Reads of this many bytes or more ask the file system where its holes are and fill those with zeros
    /// themselves instead of reading them. A hole read through `pread` costs the kernel a page-cache page per
    /// 4 KiB, allocated and zeroed, and the labels of a freshly copied sparse image are mostly holes.
    static let holeAwareReadSize = 64 << 10

    /// ``read(into:at:)`` that reads only the data ranges of `buffer`'s span (`lseek(SEEK_DATA)` and
    /// `lseek(SEEK_HOLE)`) and zeroes the rest. Where the file system cannot tell (`EINVAL`), it reads
    /// everything. The file's offset moves, which no read or write uses.
    private func readAroundHoles(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                                 _ seeking: (data: FileDescriptor.SeekOrigin, hole: FileDescriptor.SeekOrigin))
        throws(ImageError)
    {
        let end = Int64(offset) + Int64(buffer.count)
        var pos = Int64(offset)
        func zero(_ from: Int64, _ to: Int64) {
            let lo = Int(from - Int64(offset)), hi = Int(to - Int64(offset))
            Self.clear(UnsafeMutableRawBufferPointer(rebasing: buffer[lo..<hi]))
        }
        var atData = false  // whether pos is known to be the start of data (SEEK_DATA just said so)
        while pos < end {
            let data: Int64
            if atData { data = pos } else { do { data = try fd.seek(offset: pos, from: seeking.data) } catch {
                let e = error as? Errno
                if e == .noSuchAddressOrDevice {  // ENXIO: no data from here to the end of the file
                    // ... or the file now ends before the read does (it shrank): that read fails, as pread's would.
                    let length = (try? Self.status(descriptor).get()).map { Int64($0.size) } ?? end
                    if length < end {
                        throw ImageError(.read, path: path, offset: UInt64(max(pos, length)), message: "unexpected end of file")
                    }
                    zero(pos, end)
                    return
                }
                if e == .invalidArgument {  // not supported here: read the rest
                    let at = Int(pos - Int64(offset))
                    try readAll(into: UnsafeMutableRawBufferPointer(rebasing: buffer[at...]), at: UInt64(pos))
                    return
                }
                throw ImageError(.read, path: path, offset: UInt64(pos), errno: e?.rawValue,
                                 message: "SEEK_DATA failed: \(Self.describe(error))")
            } }
            atData = false
            guard data > pos else {
                // Data at pos: read up to the next hole.
                let hole: Int64
                do { hole = try fd.seek(offset: pos, from: seeking.hole) } catch {
                    let e = error as? Errno
                    if e == .noSuchAddressOrDevice || e == .invalidArgument {
                        hole = end
                    } else {
                        throw ImageError(.read, path: path, offset: UInt64(pos), errno: e?.rawValue,
                                         message: "SEEK_HOLE failed: \(Self.describe(error))")
                    }
                }
                let stop = min(max(hole, pos + 1), end)
                let lo = Int(pos - Int64(offset)), hi = Int(stop - Int64(offset))
                try readAll(into: UnsafeMutableRawBufferPointer(rebasing: buffer[lo..<hi]), at: UInt64(pos))
                pos = stop
                continue
            }
            let stop = min(data, end)
            zero(pos, stop)
            pos = stop
            atData = stop == data
        }
    }

    /// Sets every byte of `bytes` to zero, writing only the memory pages that are not zero already. A label-sized
    /// buffer is a fresh mapping whose pages read as zeros without memory of their own until written: a hole
    /// read into it then costs a read of each page instead of a page allocated, cleared and zeroed again.
    static func clear(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        let page = 4096
        var at = 0
        while at < bytes.count {
            let end = min(bytes.count, at + page - Int(bitPattern: base + at) % page)  // to the next page boundary
            let chunk = UnsafeMutableRawBufferPointer(rebasing: bytes[at..<end])
            var bits: UInt64 = 0
            for i in stride(from: 0, to: chunk.count - 7, by: 8) { bits |= chunk.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
            for i in (chunk.count & ~7)..<chunk.count { bits |= UInt64(chunk[i]) }
            if bits != 0 { chunk.initializeMemory(as: UInt8.self, repeating: 0) }
            at = end
        }
    }

    /// `pread` until all of `buffer` is filled; a read of 0 bytes (the file ended) throws.
    private func readAll(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ImageError) {
        var done = 0
        while done < buffer.count {
            let n: Int
            do {
                n = try fd.read(fromAbsoluteOffset: Int64(offset) + Int64(done),
                                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            } catch {
                throw ImageError(.read, path: path, offset: offset + UInt64(done), errno: (error as? Errno)?.rawValue,
                                 message: "read failed: \(Self.describe(error))")
            }
            if n == 0 {
                throw ImageError(.read, path: path, offset: offset + UInt64(done), message: "unexpected end of file")
            }
            done += n
        }
    }

    /// Reads exactly `count` bytes at `offset`.
    ///
    /// - Throws: ``ImageError``, as ``read(into:at:)``.
    public func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        try checkRange(offset, count, "a read")
        var failure: ImageError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(ImageError) {
                try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Writes all of `bytes` at `offset`; never past the end of the image.
    ///
    /// - Throws: ``ImageError`` when the image is open read-only, the range passes its end, or a write fails.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        guard isWritable else {
            throw ImageError(.write, path: path, offset: offset, message: "image is open read-only")
        }
        try checkRange(offset, bytes.count, "a write")
        var done = 0
        while done < bytes.count {
            let n: Int
            do {
                n = try bytes.withUnsafeBytes { raw in
                    try fd.write(toAbsoluteOffset: Int64(offset) + Int64(done), UnsafeRawBufferPointer(rebasing: raw[done...]))
                }
            } catch {
                throw ImageError(.write, path: path, offset: offset + UInt64(done), errno: (error as? Errno)?.rawValue,
                                 message: "write failed: \(Self.describe(error))")
            }
            if n <= 0 {
                throw ImageError(.write, path: path, offset: offset + UInt64(done), message: "write failed: nothing written")
            }
            done += n
        }
    }

    /// Flushes written bytes to stable storage (`fdatasync` on Linux: writes never change an image's size; `fsync`
    /// elsewhere, on macOS `F_FULLFSYNC`, which also empties the drive's cache).
    ///
    /// - Throws: ``ImageError`` with code ``ImageError/Code/flush`` when the system reports a failure.
    public func synchronize() throws(ImageError) {
        if case .failure(let e) = Self.flush(descriptor) {
            throw ImageError(.flush, path: path, errno: e.rawValue, message: "flush failed: \(e)")
        }
    }

    /// The byte ranges that may hold data, sorted, disjoint and merged; everything else is a hole and reads as
    /// zeros.
    ///
    /// A sparse file's holes are found with `lseek(SEEK_DATA)` and `lseek(SEEK_HOLE)` and never read. A file
    /// system or platform without them reports the whole file as data, and so does a block device.
    ///
    /// - Throws: ``ImageError`` when the system reports a failure other than "not supported".
    public func dataExtents() throws(ImageError) -> [Range<UInt64>] {
        guard !isBlockDevice, size > 0, let (nextData, nextHole) = Self.holeSeeking else {
            return size == 0 ? [] : [0..<size]
        }
        var out: [Range<UInt64>] = []
        let end = Int64(size)
        var pos: Int64 = 0
        while pos < end {
            let data: Int64
            do { data = try fd.seek(offset: pos, from: nextData) } catch {
                let e = error as? Errno
                if e == .noSuchAddressOrDevice { break }  // ENXIO: no data after pos
                if e == .invalidArgument && pos == 0 { return [0..<size] }  // EINVAL: not supported here
                throw ImageError(.read, path: path, offset: UInt64(pos), errno: e?.rawValue,
                                 message: "SEEK_DATA failed: \(Self.describe(error))")
            }
            var hole: Int64
            do { hole = try fd.seek(offset: data, from: nextHole) } catch {
                let e = error as? Errno
                guard e == .noSuchAddressOrDevice else {
                    throw ImageError(.read, path: path, offset: UInt64(data), errno: e?.rawValue,
                                     message: "SEEK_HOLE failed: \(Self.describe(error))")
                }
                hole = end
            }
            let lo = UInt64(data)
            let hi = UInt64(min(hole, end))
            if hi > lo {
                if let last = out.last, last.upperBound >= lo {
                    out[out.count - 1] = last.lowerBound..<max(last.upperBound, hi)
                } else {
                    out.append(lo..<hi)
                }
            }
            guard hole > pos else { break }
            pos = hole
        }
        return out
    }

    /// Asks the system to start reading `range` into its cache without waiting for it, so that a read a little
    /// later finds it there instead of blocking on the disk. A hint: it may do nothing, and never fails.
    public func prefetch(_ range: Range<UInt64>) {
        guard !range.isEmpty, range.upperBound <= size else { return }
        Self.adviseWillNeed(descriptor, range)
    }

    private func checkRange(_ offset: UInt64, _ count: Int, _ what: String) throws(ImageError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(max(count, 0)))
        guard count >= 0, !overflow, end <= size else {
            throw ImageError(.range, path: path, offset: offset,
                             message: "\(what) of \(count) bytes runs past the end of the image (\(size) bytes)")
        }
    }

    static func describe(_ error: any Error) -> String {
        (error as? Errno)?.description ?? "\(error)"
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
    /// The modification time (`st_mtim`; `st_mtimespec` on macOS) in nanoseconds since 1970.
    public var modifiedNanoseconds: Int64

    /// Creates an identity.
    public init(device: UInt64, inode: UInt64, size: UInt64, modifiedNanoseconds: Int64) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
    }

    /// The identity as one string, for keying what a process remembers about a file's content.
    public var key: String { "\(device):\(inode):\(size):\(modifiedNanoseconds)" }
}

// What differs between the systems zlabel may run on. Linux is built and tested in CI; the macOS (Darwin) and
// FreeBSD branches are written from those systems' headers and manuals and have not been compiled here.
//
//                    Linux                      macOS                          FreeBSD
//   device size      ioctl BLKGETSIZE64         DKIOCGETBLOCKCOUNT × SIZE      ioctl DIOCGMEDIASIZE
//   holes            SEEK_DATA 3 / SEEK_HOLE 4  SEEK_DATA / SEEK_HOLE          SEEK_DATA / SEEK_HOLE
//   read-ahead       posix_fadvise WILLNEED     nothing                        posix_fadvise WILLNEED
//   flush            fdatasync                  fcntl F_FULLFSYNC, else fsync  fsync
//   exclusive device O_EXCL + /proc mountinfo   nothing                        nothing
//
// The request numbers are the values of C macros that Swift cannot import (_IOR(...)): Linux
// include/uapi/linux/fs.h, macOS <sys/disk.h>, FreeBSD <sys/disk.h>.

import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ImageFile {
    /// Extra open flags when a block device is opened for writing: on Linux, `O_EXCL` without `O_CREAT` makes the
    /// open fail with `EBUSY` while the device is mounted or claimed. Elsewhere the flag has no such meaning.
    static var exclusiveDeviceOpen: FileDescriptor.OpenOptions {
        #if os(Linux)
            return .exclusiveCreate
        #else
            return []
        #endif
    }

    /// `lseek` origins for the next data and the next hole, or nil where the system has none.
    static var holeSeeking: (data: FileDescriptor.SeekOrigin, hole: FileDescriptor.SeekOrigin)? {
        #if os(Linux)
            // Glibc defines SEEK_DATA and SEEK_HOLE only under _GNU_SOURCE, which Swift does not see.
            return (FileDescriptor.SeekOrigin(rawValue: 3), FileDescriptor.SeekOrigin(rawValue: 4))
        #elseif canImport(Darwin) || os(FreeBSD)
            return (.nextData, .nextHole)
        #else
            return nil
        #endif
    }

    /// `stat(2)` of `path`. Called directly rather than through swift-system's `FilePath.stat()`, whose
    /// `Result<stat, Errno>` costs every process a run-time generic instantiation and a scan of the binary's
    /// protocol conformances (to check that `Errno` is an `Error`).
    static func status(path: String) -> StatResult {
        var info = stat()
        while stat(path, &info) != 0 {
            if errno != EINTR { return .failure(Errno(rawValue: errno)) }
        }
        return .success(Stat(rawValue: info))
    }

    /// `fstat(2)` of `fd`, as ``status(path:)``.
    static func status(_ fd: CInt) -> StatResult {
        var info = stat()
        while fstat(fd, &info) != 0 {
            if errno != EINTR { return .failure(Errno(rawValue: errno)) }
        }
        return .success(Stat(rawValue: info))
    }

    /// The outcome of ``status(path:)``: not `Result`, for the reason given there.
    enum StatResult {
        case success(Stat)
        case failure(Errno)

        func get() throws(Errno) -> Stat {
            switch self {
            case .success(let info): return info
            case .failure(let error): throw error
            }
        }
    }

    /// The capacity of the block device open as `fd`, in bytes.
    static func deviceSize(_ fd: CInt) -> Result<UInt64, Errno> {
        #if os(Linux)
            var bytes: UInt64 = 0
            let blkGetSize64: UInt = 0x8008_1272  // _IOR(0x12, 114, size_t)
            guard ioctl(fd, blkGetSize64, &bytes) == 0 else { return .failure(Errno(rawValue: errno)) }
            return .success(bytes)
        #elseif canImport(Darwin)
            var blockSize: UInt32 = 0
            var blockCount: UInt64 = 0
            let getBlockSize: UInt = 0x4004_6418  // DKIOCGETBLOCKSIZE, _IOR('d', 24, uint32_t)
            let getBlockCount: UInt = 0x4008_6419  // DKIOCGETBLOCKCOUNT, _IOR('d', 25, uint64_t)
            guard ioctl(fd, getBlockSize, &blockSize) == 0, ioctl(fd, getBlockCount, &blockCount) == 0 else {
                return .failure(Errno(rawValue: errno))
            }
            let (bytes, overflow) = blockCount.multipliedReportingOverflow(by: UInt64(blockSize))
            return overflow ? .failure(.overflow) : .success(bytes)
        #elseif os(FreeBSD)
            var bytes: off_t = 0
            let getMediaSize: UInt = 0x4008_6481  // DIOCGMEDIASIZE, _IOR('d', 129, off_t)
            guard ioctl(fd, getMediaSize, &bytes) == 0 else { return .failure(Errno(rawValue: errno)) }
            return .success(UInt64(max(bytes, 0)))
        #else
            do { return .success(UInt64(max(try FileDescriptor(rawValue: fd).seek(offset: 0, from: .end), 0))) } catch {
                return .failure(error as? Errno ?? .ioError)
            }
        #endif
    }

    /// Flushes `fd` to stable storage.
    static func flush(_ fd: CInt) -> Result<Void, Errno> {
        while true {
            #if canImport(Darwin)
                // fsync leaves the data in the drive's cache on macOS; F_FULLFSYNC does not, where it is supported.
                if fcntl(fd, F_FULLFSYNC) == 0 { return .success(()) }
            #endif
            #if os(Linux)
                // An image's size never changes by our writes (they are range-checked), so the data and what is
                // needed to read it back are all there is to flush: fdatasync, which skips the timestamps'
                // journal commit that fsync would add on ext4 and xfs.
                if fdatasync(fd) == 0 { return .success(()) }
            #else
                if fsync(fd) == 0 { return .success(()) }
            #endif
            if errno != EINTR { return .failure(Errno(rawValue: errno)) }
        }
    }

    /// `posix_fadvise(POSIX_FADV_WILLNEED)` where the system has it; nothing elsewhere.
    static func adviseWillNeed(_ fd: CInt, _ range: Range<UInt64>) {
        #if os(Linux) || os(FreeBSD)
            guard range.upperBound <= UInt64(Int64.max) else { return }
            _ = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_WILLNEED)
        #endif
    }

    /// The mount point of the device numbered `rdev` or of one of its partitions: on Linux from
    /// /proc/self/mountinfo and sysfs; nil elsewhere (and when nothing is mounted).
    static func mountedPartition(of rdev: some BinaryInteger) -> String? {
        #if os(Linux)
            // glibc's encoding of dev_t (gnu_dev_major / gnu_dev_minor are macros Swift cannot see).
            let d = UInt64(truncatingIfNeeded: rdev)
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
                        devices.insert(String(dev.filter { !$0.isWhitespace }))
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
        #else
            return nil
        #endif
    }

    /// A small text file (at most 16 MiB is read), or nil when it cannot be read.
    private static func readSmallFile(_ path: String) -> String? {
        guard let fd = try? FileDescriptor.open(path, .readOnly, options: [.closeOnExec]) else { return nil }
        defer { try? fd.close() }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count <= 16 << 20 {
            guard let n = try? chunk.withUnsafeMutableBytes({ try fd.read(into: $0) }), n > 0 else { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

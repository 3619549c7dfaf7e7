import DiskPartitions
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A test-only file-backed ``ByteSource`` using `pread`, logging every read.
final class FileSource: ByteSource, @unchecked Sendable {
    // Safe to share: the descriptor is only used with pread, which has no shared file position.
    let fd: Int32
    let size: UInt64
    let log = ReadLog()

    init(path: String) throws {
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Tools.Failure(description: "cannot open \(path)") }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Tools.Failure(description: "cannot stat \(path)") }
        size = UInt64(info.st_size)
    }

    deinit { close(fd) }

    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        log.record(offset, count)
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            guard n > 0 else { throw Tools.Failure(description: "pread failed at \(offset)") }
            done += n
        }
        return buffer
    }
}

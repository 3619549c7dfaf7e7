import SystemPackage

/// A failure to open, read, write or flush an image, naming the file and the byte offset.
///
/// ``ImageFile`` throws it for every failed system call; the modules above it throw it too for what they find
/// wrong with an image (``Code/partitionTable`` and ``Code/container``), so that one type names every problem
/// with an image, whatever layer found it.
public struct ImageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Hashable {
        /// The file or device could not be opened.
        case open
        /// Its size could not be found.
        case size
        /// A read failed or came back short.
        case read
        /// A write failed or was short.
        case write
        /// Flushing to stable storage failed.
        case flush
        /// The device is mounted or held open exclusively by someone else.
        case busy
        /// The request does not fit the image (past its end, or a region that cannot hold a vdev).
        case range
        /// The partition table is broken, or names no such partition.
        case partitionTable
        /// The file is a VM disk container or a compressed image that cannot be used this way (its labels are
        /// read, never edited in place), or its container is malformed.
        case container
        /// Another system call on a file failed: one of the files a caller keeps beside the image (the
        /// uploader's journal, say).
        case other
    }

    /// What went wrong.
    public var code: Code
    /// The image's path.
    public var path: String
    /// The byte offset of the failed operation, when there is one.
    public var offset: UInt64?
    /// The system error number, when there is one.
    public var errno: Int32?
    /// A sentence saying what failed.
    public var message: String

    /// Creates an error about the image at `path`.
    public init(_ code: Code, path: String, offset: UInt64? = nil, errno: Int32? = nil, message: String) {
        self.code = code
        self.path = path
        self.offset = offset
        self.errno = errno
        self.message = message
    }

    /// The system's sentence for `errno` (`strerror`), e.g. "No such file or directory".
    public static func describe(errno: Int32) -> String {
        Errno(rawValue: errno).description
    }

    public var description: String {
        var s = "\(path): \(message)"
        if let offset { s += " at byte \(offset) (0x\(String(offset, radix: 16)))" }
        return s
    }
}

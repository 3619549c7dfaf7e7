import Synchronization

/// An image held in memory: for tests, and for building an image before it is written anywhere.
public final class MemoryImage: ImageStorage {
    /// A name for messages.
    public let path: String
    /// Size in bytes.
    public let size: UInt64
    /// Whether writes are allowed.
    public let isWritable: Bool
    private let storage: Mutex<[UInt8]>

    /// Creates an image over `bytes`.
    public init(_ bytes: [UInt8], path: String = "<memory>", writable: Bool = true) {
        self.path = path
        self.size = UInt64(bytes.count)
        self.isWritable = writable
        self.storage = Mutex(bytes)
    }

    /// A copy of the current bytes.
    public var bytes: [UInt8] { storage.withLock { $0 } }

    public func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        try checkRange(offset, count, "a read")
        return storage.withLock { Array($0[Int(offset)..<(Int(offset) + count)]) }
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        guard isWritable else { throw ImageError(.write, path: path, offset: offset, message: "image is read-only") }
        try checkRange(offset, bytes.count, "a write")
        storage.withLock { $0.replaceSubrange(Int(offset)..<(Int(offset) + bytes.count), with: bytes) }
    }

    public func synchronize() throws(ImageError) {}
}

/// Where a block sits in the pool's block tree, as ZFS names it in a bookmark (`zbookmark_phys_t`): the
/// object, the indirection level and the block id within that level.
public struct BlockLocation: Sendable, Hashable, CustomStringConvertible {
    /// The object set (`"MOS"` for the meta object set).
    public var objset: String
    /// The object number, or `nil` for the objset's own root block (`ub_rootbp`).
    public var object: UInt64?
    /// The indirection level: 0 for data blocks.
    public var level: Int
    /// The block id within the level.
    public var blkid: UInt64

    /// Names a block: its objset, object (`nil` for the objset's root block), indirection level and block id.
    public init(objset: String = "MOS", object: UInt64?, level: Int, blkid: UInt64) {
        self.objset = objset
        self.object = object
        self.level = level
        self.blkid = blkid
    }

    /// The objset's root block: the block `ub_rootbp` points at.
    public static let mosRoot = BlockLocation(object: nil, level: 0, blkid: 0)

    public var description: String {
        guard let object else { return "\(objset) root block (ub_rootbp)" }
        return "\(objset) object \(object) level \(level) blkid \(blkid)"
    }
}

/// A failure on the way from the uberblock to the MOS config: a block that does not verify, a format this
/// reader refuses, a structure that does not parse, or a device that is not there.
///
/// The description names the block (object, level, blkid), the DVAs tried and why each failed, so a user can
/// tell a damaged copy from a missing device.
public struct MOSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Code: String, Sendable, Hashable {
        /// Something this reader does not implement: a compression, checksum, gang block, encryption, a
        /// raidz with a missing column, a vdev type.
        case unsupported
        /// No copy of the block verified against its checksum.
        case checksum
        /// A structure read from disk is not what ZFS writes (a bad length, offset, magic or type).
        case malformed
        /// A device needed for the block is not among the images given.
        case missingDevice
        /// A read from a device failed.
        case io
        /// An entry the walk needs is not there (no `config` in the object directory, say).
        case notFound
    }

    /// What kind of failure.
    public var code: Code
    /// A sentence saying what failed.
    public var message: String
    /// The block being read, when the failure is about one.
    public var location: BlockLocation?
    /// For a block that could not be read: each DVA tried (`vdev:offset:asize`, hex as zdb prints it) and
    /// why it failed.
    public var attempts: [String]

    /// Creates an error, about the block at `location` when given, with the copies tried.
    public init(_ code: Code, _ message: String, location: BlockLocation? = nil, attempts: [String] = []) {
        self.code = code
        self.message = message
        self.location = location
        self.attempts = attempts
    }

    public var description: String {
        var s = ""
        if let location { s += "\(location): " }
        s += message
        if !attempts.isEmpty { s += " (" + attempts.joined(separator: "; ") + ")" }
        return s
    }
}

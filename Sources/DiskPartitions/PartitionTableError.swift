/// A partition table that cannot be used, with the byte offset of the structure at fault.
///
/// Every failure names what is wrong and where, for example "primary GPT header CRC32 is 0x1234abcd, computed
/// 0x9f00ee01 (at byte 512)". The set of causes is open, so the error is a struct holding a ``Code``.
public struct PartitionTableError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of failure.
    public enum Code: String, Sendable, Equatable {
        /// A structure or partition lies past the end of the image or of its parent.
        case outOfBounds
        /// The byte source returned fewer bytes than asked for.
        case shortRead
        /// A magic number or signature is wrong (`EFI PART`, `0xDABE`, `VTOC_SANE`, `0x55AA`).
        case badSignature
        /// A CRC32 or XOR checksum does not match.
        case badChecksum
        /// A header field is invalid or absurd (sizes, counts, LBAs).
        case badHeader
        /// A partition or slice entry is invalid (for example first LBA after last LBA).
        case badEntry
        /// Two partitions overlap.
        case overlap
        /// The chain of extended boot records loops or is too long.
        case loop
        /// Arithmetic on values read from disk overflowed.
        case overflow
    }

    /// The class of failure.
    public var code: Code
    /// The byte offset in the image of the structure or field at fault.
    public var offset: UInt64
    /// What is wrong, in words.
    public var message: String

    /// Makes an error.
    public init(_ code: Code, at offset: UInt64, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String {
        "\(message) (at byte \(offset), 0x\(String(offset, radix: 16)))"
    }
}

/// Something odd about a partition table that did not stop the parse, such as a damaged primary GPT header that
/// the backup replaced.
public struct PartitionWarning: Sendable, Equatable, CustomStringConvertible {
    /// The byte offset of the structure concerned, when there is one.
    public var offset: UInt64?
    /// What was found and what was done about it.
    public var message: String

    /// Makes a warning.
    public init(at offset: UInt64?, _ message: String) {
        self.offset = offset
        self.message = message
    }

    public var description: String {
        guard let offset else { return message }
        return "\(message) (at byte \(offset), 0x\(String(offset, radix: 16)))"
    }
}

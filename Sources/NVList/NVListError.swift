/// Why an XDR nvlist stream could not be decoded, and where.
///
/// `offset` counts bytes from the start of the stream (its 4-byte header); `context` names the pair being
/// read, as a path such as `vdev_tree.children[1].path`.
public struct NVListError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of malformed input.
    public enum Kind: Sendable, Hashable {
        /// The stream ends before a field that must be there.
        case truncated
        /// The header's encoding byte is not XDR (1); native-encoded lists are not read.
        case unsupportedEncoding
        /// `nvl_version` is not 0 (`NV_VERSION`).
        case unsupportedVersion
        /// A pair's type number is not one of the 27 libnvpair types.
        case unknownType
        /// A pair's element count does not fit its type or the bytes that remain.
        case badElementCount
        /// A stored size (`encode_size`, `decode_size`, name length, array count) disagrees with the data.
        case sizeMismatch
        /// A name or string is not valid UTF-8, is empty where a name is needed, or contains NUL.
        case badString
        /// A boolean holds something other than 0 or 1.
        case badBoolean
        /// A name occurs twice in a list whose flags say names are unique.
        case duplicateName
        /// Lists are nested deeper than ``NVList/maximumDepth``.
        case tooDeep
    }

    /// What is wrong.
    public var kind: Kind
    /// The byte offset in the stream where the problem was found.
    public var offset: Int
    /// The pair being read, as a path (empty at the top of the stream).
    public var context: String
    /// A sentence with the details.
    public var detail: String

    /// Creates an error at `offset` bytes into the stream, inside the pair `context`.
    public init(_ kind: Kind, offset: Int, context: String, detail: String) {
        self.kind = kind
        self.offset = offset
        self.context = context
        self.detail = detail
    }

    public var description: String {
        let hex = "0x" + String(offset, radix: 16)
        let at = context.isEmpty ? "" : " in '\(context)'"
        return "\(detail) at byte \(hex) of the nvlist\(at)"
    }
}

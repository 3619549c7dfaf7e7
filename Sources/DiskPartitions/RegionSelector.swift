// Choosing one region when an image holds more than one vdev: by name (`--partition p2`, `s0`) or by an explicit
// byte range (`IMAGE@OFFSET:SIZE`, for layouts no table describes).

/// How the user picks a region: a name from the partition map, or an explicit byte range.
public enum RegionSelector: Sendable, Equatable, CustomStringConvertible {
    /// A region name such as `p1`, `s0`, `p1s0` or `disk`.
    case named(String)
    /// A byte range: offset and size, in bytes.
    case range(offset: UInt64, size: UInt64)

    /// Parses `OFFSET:SIZE` (decimal, or hexadecimal with `0x`) as a range; anything else is taken as a name.
    ///
    /// - Throws: ``PartitionTableError`` with code `.badEntry` for a malformed range or an empty name.
    public init(parsing text: String) throws {
        if let range = try Self.parseRange(text) {
            self = .range(offset: range.offset, size: range.size)
        } else {
            guard !text.isEmpty else { throw PartitionTableError(.badEntry, at: 0, "empty partition name") }
            self = .named(text)
        }
    }

    public var description: String {
        switch self {
        case .named(let name): name
        case .range(let offset, let size): "\(offset):\(size)"
        }
    }

    /// Splits `IMAGE@OFFSET:SIZE` into the image path and the range. A path without such a suffix (even one
    /// containing `@`) comes back whole with no range.
    ///
    /// - Throws: ``PartitionTableError`` when the suffix looks like a range but a number is malformed.
    public static func splitImageArgument(_ argument: String) throws -> (path: String, range: RegionSelector?) {
        guard let at = argument.lastIndex(of: "@") else { return (argument, nil) }
        let suffix = String(argument[argument.index(after: at)...])
        let path = String(argument[..<at])
        guard !path.isEmpty, let range = try parseRange(suffix) else { return (argument, nil) }
        return (path, .range(offset: range.offset, size: range.size))
    }

    /// Returns nil when `text` has no `:` (not meant as a range); throws when it has one but is malformed.
    static func parseRange(_ text: String) throws -> (offset: UInt64, size: UInt64)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        guard let offset = parseNumber(parts[0]), let size = parseNumber(parts[1]) else {
            throw PartitionTableError(
                .badEntry, at: 0, "\"\(text)\" is not OFFSET:SIZE in bytes (decimal, or hexadecimal with 0x)")
        }
        guard size > 0 else { throw PartitionTableError(.badEntry, at: offset, "the size in \"\(text)\" is 0") }
        return (offset, size)
    }

    static func parseNumber(_ text: Substring) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            let digits = text.dropFirst(2)
            return digits.isEmpty ? nil : UInt64(digits, radix: 16)
        }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(text)
    }
}

extension DiskLayout {
    /// Resolves a selector against this layout.
    ///
    /// A name must match a region (``region(named:)``). A range must lie inside the image; it becomes a region
    /// named `OFFSET:SIZE` with scheme `.none`, or the matching region when one has exactly that range.
    ///
    /// - Throws: ``PartitionTableError`` naming the unknown region or the range past the end of the image.
    public func select(_ selector: RegionSelector) throws -> DiskRegion {
        switch selector {
        case .named(let name):
            guard let region = region(named: name) else {
                let known = regions.map(\.name).joined(separator: ", ")
                throw PartitionTableError(
                    .badEntry, at: 0,
                    "no region named \"\(name)\" in this image (regions: \(known.isEmpty ? "none" : known))")
            }
            return region
        case .range(let offset, let size):
            let (end, overflow) = offset.addingReportingOverflow(size)
            guard !overflow, end <= diskSize else {
                throw PartitionTableError(
                    .outOfBounds, at: offset,
                    "range \(offset):\(size) ends past the end of the image (\(diskSize) bytes)")
            }
            if let match = regions.first(where: { $0.start == offset && $0.size == size && !$0.isContainer }) {
                return match
            }
            return DiskRegion(name: "\(offset):\(size)", scheme: .none, start: offset, size: size, type: .wholeDisk)
        }
    }
}

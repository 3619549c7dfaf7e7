/// The 4-byte header in front of a packed nvlist stream.
public struct NVStreamHeader: Sendable, Hashable {
    /// Byte order of the host that packed the list. XDR itself is always big-endian; libnvpair records the
    /// writer's order anyway (1 = little, 0 = big), so an exact re-encoding keeps it.
    public var hostByteOrder: NVByteOrder

    /// Creates a header recording the packing host's byte order.
    public init(hostByteOrder: NVByteOrder) { self.hostByteOrder = hostByteOrder }
}

/// A byte order.
public enum NVByteOrder: Sendable, Hashable {
    /// Least significant byte first (x86, and libnvpair's value 1).
    case little
    /// Most significant byte first (SPARC, and libnvpair's value 0).
    case big
}

/// The result of decoding a packed stream: the list, its header, and how many bytes it occupied.
public struct NVDecodedStream: Sendable, Hashable {
    /// The decoded list.
    public var list: NVList
    /// The stream's 4-byte header.
    public var header: NVStreamHeader
    /// The packed size as libnvpair computes it (`nvlist_size`): the bytes up to the end of the top-level
    /// terminator, plus 4 for every empty numeric array, which libnvpair counts but does not write. It can
    /// exceed the bytes read by that much (and falls short of them by the bytes after a NUL inside a string,
    /// which are not part of the value).
    public var byteCount: Int
}

extension NVList {
    /// The deepest nesting of lists the decoder accepts.
    public static let maximumDepth = 64

    /// Decodes a packed XDR nvlist (`nvlist_unpack`) that starts at the first byte of `bytes`; bytes after
    /// the list's terminator are ignored, as in a label's 112 KiB area.
    ///
    /// The decoder accepts what libnvpair's `nvlist_unpack` accepts and refuses what it refuses (version,
    /// types, element counts, `decode_size`, unique names); like libnvpair it reads pairs in sequence and
    /// does not check `encode_size`. String values keep their exact bytes, UTF-8 or not (``NVString``), as
    /// libnvpair takes any bytes but NUL; pair names must be valid UTF-8 (every name ZFS writes is ASCII).
    ///
    /// A string value with a NUL inside ends at the NUL, as libnvpair's C string does; like libnvpair, the
    /// decoder accepts such a pair only when its `decode_size` matches that shorter length. Such a stream, and
    /// any other that no ZFS writes because it is not in canonical form (nonzero XDR padding, 8- and 16-bit
    /// values with stray high bits), decodes to the values libnvpair reads and re-encodes in canonical form,
    /// as libnvpair itself would pack it again; every stream ZFS writes re-encodes to the identical bytes.
    ///
    /// - Throws: ``NVListError`` with the byte offset and the pair being read.
    public static func decode(xdr bytes: [UInt8]) throws(NVListError) -> NVDecodedStream {
        try decode(xdr: bytes, in: bytes.startIndex..<bytes.endIndex)
    }

    /// ``decode(xdr:)`` of the stream held by `bytes[range]`, read in place: the 112 KiB config area of a label
    /// is decoded straight from the label's buffer, without a copy. Offsets in errors count from the range's
    /// start, as if the range had been passed alone.
    ///
    /// - Throws: ``NVListError``; a range outside `bytes` is refused as a truncated stream.
    public static func decode(xdr bytes: [UInt8], in range: Range<Int>) throws(NVListError) -> NVDecodedStream {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else {
            throw NVListError(.truncated, offset: 0, context: "",
                              detail: "the stream's range \(range) lies outside the \(bytes.count) bytes given")
        }
        let first = range.lowerBound
        guard range.count >= 4 else {
            throw NVListError(.truncated, offset: 0, context: "",
                              detail: "stream is \(range.count) bytes, shorter than its 4-byte header")
        }
        guard bytes[first] == 1 else {
            throw NVListError(.unsupportedEncoding, offset: 0, context: "",
                              detail: "encoding byte is \(bytes[first]), not 1 (NV_ENCODE_XDR)")
        }
        let header = NVStreamHeader(hostByteOrder: bytes[first + 1] == 0 ? .big : .little)
        var reader = XDRReader(bytes, base: first, from: first + 4, to: range.upperBound)
        let (list, slack) = try decodeBody(&reader, depth: 0, context: ListPath(""))
        return NVDecodedStream(list: list, header: header, byteCount: reader.position + slack - reader.hiddenBytes)
    }

    /// Decodes an embedded list body; also returns its *slack*: the bytes libnvpair counts in sizes but does
    /// not write (4 for every empty array with a count word, at any depth).
    static func decodeBody(_ r: inout XDRReader, depth: Int, context listPath: ListPath)
        throws(NVListError) -> (NVList, Int)
    {
        // The list's path is rendered only for errors and for the paths of nested lists.
        var context: String { listPath.description }
        guard depth < maximumDepth else {
            throw NVListError(.tooDeep, offset: r.position, context: context,
                              detail: "lists are nested more than \(maximumDepth) deep")
        }
        let versionAt = r.position
        let version = try r.readInt32("the list version", context: context)
        guard version == 0 else {
            throw NVListError(.unsupportedVersion, offset: versionAt, context: context,
                              detail: "list version is \(version), not 0")
        }
        let flags = Flags(rawValue: try r.readUInt32("the list flags", context: context))
        var pairs: [NVPair] = []
        // Room for a typical list up front (the smallest pair takes 24 stream bytes), not grown pair by pair.
        pairs.reserveCapacity(min(16, r.remaining / 24))
        // Names seen so far, for the uniqueness flags. Lists in labels hold a few dozen pairs, for which a
        // linear scan is cheaper than hashing every name into a set; a longer list switches to the set.
        var seen: Set<String>? = nil
        var seenTyped: Set<NVTypedName>? = nil
        var slack = 0
        while true {
            let start = r.position
            _ = try r.readInt32("a pair's encode_size", context: context)
            let decodeSize = try r.readInt32("a pair's decode_size", context: context)
            // libnvpair ends a list at a decode_size of 0 and otherwise ignores encode_size (`nvs_xdr_nvp_size`),
            // so the decoder does too; the encoder always writes both exactly.
            if decodeSize == 0 { break }
            let (pair, pairSlack) = try decodePair(&r, start: start, depth: depth, context: listPath)
            let name = pair.name
            // The pair's path, for errors only: building it for every pair costs more than decoding the pair.
            func here() -> String { path(listPath, name) }
            slack += pairSlack
            let decodedSize = pair.decodedSize
            guard Int(decodeSize) == decodedSize else {
                throw NVListError(.sizeMismatch, offset: start + 4, context: here(),
                                  detail: "decode_size is \(decodeSize) but libnvpair computes \(decodedSize)")
            }
            if flags.contains(.uniqueNameAndType) {
                let type = pair.value.type
                let duplicate: Bool
                if seenTyped == nil, pairs.count < linearScanLimit {
                    duplicate = pairs.contains { $0.value.type == type && sameName($0.name, name) }
                } else {
                    if seenTyped == nil { seenTyped = Set(pairs.map { NVTypedName(name: $0.name, type: $0.value.type) }) }
                    duplicate = !seenTyped!.insert(NVTypedName(name: name, type: type)).inserted
                }
                guard !duplicate else {
                    throw NVListError(.duplicateName, offset: start, context: here(),
                                      detail: "name and type occur twice in a list flagged NV_UNIQUE_NAME_TYPE")
                }
            } else if flags.contains(.uniqueName) {
                let duplicate: Bool
                if seen == nil, pairs.count < linearScanLimit {
                    duplicate = pairs.contains { sameName($0.name, name) }
                } else {
                    if seen == nil { seen = Set(pairs.map(\.name)) }
                    duplicate = !seen!.insert(name).inserted
                }
                guard !duplicate else {
                    throw NVListError(.duplicateName, offset: start, context: here(),
                                      detail: "name occurs twice in a list flagged NV_UNIQUE_NAME")
                }
            }
            pairs.append(pair)
        }
        return (NVList(flags: flags, pairs: pairs), slack)
    }

    private static func decodePair(_ r: inout XDRReader, start: Int, depth: Int, context listPath: ListPath)
        throws(NVListError) -> (NVPair, Int)
    {
        var context: String { listPath.description }
        let nameAt = r.position
        let nameLength = try r.readUInt32("a pair's name length", context: context)
        guard nameLength > 0, nameLength <= r.remaining else {
            throw NVListError(.sizeMismatch, offset: nameAt, context: context,
                              detail: "name length \(nameLength) is zero or runs past the stream (\(r.remaining) left)")
        }
        let rawName = try r.readOpaque(count: Int(nameLength), "a pair name", context: context)
        let name = try XDRReader.string(rawName, at: nameAt + 4, "a pair name", context: context)
        let typeAt = r.position
        let rawType = try r.readInt32("the type", context: path(listPath, name))
        guard let type = NVDataType(rawValue: rawType) else {
            throw NVListError(.unknownType, offset: typeAt, context: path(listPath, name),
                              detail: "type \(rawType) is not a libnvpair type")
        }
        let countAt = r.position
        let nelem = try r.readInt32("the element count", context: path(listPath, name))
        let (value, slack) = try decodeValue(
            &r, type: type, nelem: nelem, countAt: countAt, depth: depth, context: listPath, name: name)
        return (NVPair(name, value), slack)
    }

    private static func decodeValue(
        _ r: inout XDRReader, type: NVDataType, nelem: Int32, countAt: Int, depth: Int, context: ListPath,
        name: String
    ) throws(NVListError) -> (NVValue, Int) {
        let value: NVValue
        switch type {
        case .nvlist:
            let here = path(context, name)
            guard nelem == 1 else {
                throw NVListError(.badElementCount, offset: countAt, context: here,
                                  detail: "element count \(nelem) is not 1 for type \(type)")
            }
            let (list, slack) = try decodeBody(&r, depth: depth + 1, context: ListPath(here))
            return (.nvlist(list), slack)
        case .nvlistArray:
            let here = path(context, name)
            guard nelem >= 0, Int(nelem) <= r.remaining / 16 else {
                throw NVListError(.badElementCount, offset: countAt, context: here,
                                  detail: "element count \(nelem) does not fit the \(r.remaining) bytes left for type \(type)")
            }
            var out: [NVList] = []
            out.reserveCapacity(Int(nelem))
            var slack = 0
            for i in 0..<Int(nelem) {
                let (list, s) = try decodeBody(&r, depth: depth + 1, context: ListPath(here, index: i))
                out.append(list)
                slack += s
            }
            return (.nvlistArray(out), slack)
        default:
            value = try decodeScalarOrArray(
                &r, type: type, nelem: nelem, countAt: countAt, context: PairPath(list: context, name: name))
        }
        return (value, value.hasCountWord && value.elementCount == 0 ? 4 : 0)
    }

    private static func decodeScalarOrArray(
        _ r: inout XDRReader, type: NVDataType, nelem: Int32, countAt: Int, context pairPath: PairPath
    ) throws(NVListError) -> NVValue {
        // Every use of `context` below is an autoclosure or an error path, so the string is built only when
        // something is wrong.
        var context: String { pairPath.description }
        func badCount(_ why: String) -> NVListError {
            NVListError(.badElementCount, offset: countAt, context: context,
                        detail: "element count \(nelem) \(why) for type \(type)")
        }
        // Scalars hold exactly one element, a boolean flag none.
        switch type {
        case .boolean:
            guard nelem == 0 else { throw badCount("is not 0") }
            return .boolean
        case .byte, .int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64, .hrtime, .double, .string,
            .nvlist, .booleanValue:
            guard nelem == 1 else { throw badCount("is not 1") }
        default:
            guard nelem >= 0 else { throw badCount("is negative") }
            // Every element takes at least 4 stream bytes (a byte array: 1), so a count the stream cannot hold
            // is refused before anything is allocated.
            let minimum = type == .byteArray ? 1 : (type == .nvlistArray ? 16 : 4)
            guard Int(nelem) <= r.remaining / minimum else { throw badCount("cannot fit in the \(r.remaining) bytes left") }
        }
        let n = Int(nelem)
        switch type {
        case .boolean: return .boolean
        case .booleanValue: return .booleanValue(try readBool(&r, context: pairPath))
        case .byte: return .byte(UInt8(truncatingIfNeeded: try r.readUInt32("a byte", context: context)))
        case .int8: return .int8(Int8(truncatingIfNeeded: try r.readInt32("an int8", context: context)))
        case .uint8: return .uint8(UInt8(truncatingIfNeeded: try r.readUInt32("a uint8", context: context)))
        case .int16: return .int16(Int16(truncatingIfNeeded: try r.readInt32("an int16", context: context)))
        case .uint16: return .uint16(UInt16(truncatingIfNeeded: try r.readUInt32("a uint16", context: context)))
        case .int32: return .int32(try r.readInt32("an int32", context: context))
        case .uint32: return .uint32(try r.readUInt32("a uint32", context: context))
        case .int64: return .int64(Int64(bitPattern: try r.readUInt64("an int64", context: context)))
        case .uint64: return .uint64(try r.readUInt64("a uint64", context: context))
        case .hrtime: return .hrtime(Int64(bitPattern: try r.readUInt64("an hrtime", context: context)))
        case .double: return .double(Double(bitPattern: try r.readUInt64("a double", context: context)))
        case .string: return .string(try r.readString("the string value", context: context))
        case .byteArray: return .byteArray(Array(try r.readOpaque(count: n, "a byte array", context: context)))
        case .int8Array:
            return .int8Array(try readWords(&r, n, pairPath) { Int8(truncatingIfNeeded: Int32(bitPattern: $0)) })
        case .uint8Array: return .uint8Array(try readWords(&r, n, pairPath) { UInt8(truncatingIfNeeded: $0) })
        case .int16Array:
            return .int16Array(try readWords(&r, n, pairPath) { Int16(truncatingIfNeeded: Int32(bitPattern: $0)) })
        case .uint16Array: return .uint16Array(try readWords(&r, n, pairPath) { UInt16(truncatingIfNeeded: $0) })
        case .int32Array: return .int32Array(try readWords(&r, n, pairPath) { Int32(bitPattern: $0) })
        case .uint32Array: return .uint32Array(try readWords(&r, n, pairPath) { $0 })
        case .booleanArray:
            try readCount(&r, n, pairPath)
            var out: [Bool] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try readBool(&r, context: pairPath)) }
            return .booleanArray(out)
        case .int64Array, .uint64Array:
            try readCount(&r, n, pairPath)
            guard n <= r.remaining / 8 else { throw badCount("cannot fit in the \(r.remaining) bytes left") }
            var out: [UInt64] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try r.readUInt64("an array element", context: context)) }
            return type == .uint64Array ? .uint64Array(out) : .int64Array(out.map { Int64(bitPattern: $0) })
        case .stringArray:
            var out: [NVString] = []
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try r.readString("string \(i)", context: context)) }
            return .stringArray(out)
        case .nvlist, .nvlistArray:
            preconditionFailure("nested lists are decoded by decodeValue")
        }
    }

    /// Reads the count word that precedes a non-empty array of 4- or 8-byte elements and checks it.
    private static func readCount(_ r: inout XDRReader, _ n: Int, _ context: PairPath) throws(NVListError) {
        guard n > 0 else { return }  // libnvpair writes no count word for an empty array
        let at = r.position
        let count = try r.readUInt32("an array count", context: context.description)
        guard count == UInt32(n) else {
            throw NVListError(.sizeMismatch, offset: at, context: context.description,
                              detail: "array count word is \(count) but the element count is \(n)")
        }
    }

    private static func readWords<T>(_ r: inout XDRReader, _ n: Int, _ context: PairPath, _ convert: (UInt32) -> T)
        throws(NVListError) -> [T]
    {
        try readCount(&r, n, context)
        guard n <= r.remaining / 4 else {
            throw NVListError(.badElementCount, offset: r.position, context: context.description,
                              detail: "\(n) elements cannot fit in the \(r.remaining) bytes left")
        }
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(convert(try r.readUInt32("an array element", context: context.description))) }
        return out
    }

    private static func readBool(_ r: inout XDRReader, context: PairPath) throws(NVListError) -> Bool {
        let at = r.position
        switch try r.readInt32("a boolean", context: context.description) {
        case 0: return false
        case 1: return true
        case let v: throw NVListError(.badBoolean, offset: at, context: context.description, detail: "boolean holds \(v), not 0 or 1")
        }
    }
}

/// Lists with fewer pairs than this check name uniqueness by a linear scan.
private let linearScanLimit = 32

/// Name equality as the set of names uses it: `String` equality, which is Unicode canonical equivalence
/// (so two byte-different spellings of one name count as a duplicate, as they always have here).
@inline(__always)
private func sameName(_ a: String, _ b: String) -> Bool { a == b }

/// The path of a pair, `list.name`, as error contexts spell it.
private func path(_ list: ListPath, _ name: String) -> String {
    let base = list.description
    return base.isEmpty ? name : base + "." + name
}

/// The path of a list being decoded, kept in parts until an error or a nested list needs it as one string:
/// `vdev_tree`, or `vdev_tree.children` with index 1 for `vdev_tree.children[1]`.
struct ListPath: CustomStringConvertible {
    var base: String
    var index: Int?

    init(_ base: String, index: Int? = nil) {
        self.base = base
        self.index = index
    }

    var description: String { index.map { base + "[" + String($0) + "]" } ?? base }
}

/// A pair's path, kept in parts until an error needs it as one string.
private struct PairPath: CustomStringConvertible {
    var list: ListPath
    var name: String
    var description: String { path(list, name) }
}

private struct NVTypedName: Hashable {
    var name: String
    var type: NVDataType
}

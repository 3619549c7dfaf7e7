// The two sizes libnvpair stores in front of every pair (`nvs_xdr_nvp_size`, `i_get_value_size`):
//
//   encode_size  bytes of the pair in the XDR stream, these two words included;
//   decode_size  bytes of the in-memory `nvpair_t` an LP64 libnvpair allocates for it. libnvpair rejects a
//                pair whose decode_size differs from what it computes itself (`i_validate_nvpair`).

@inline(__always) func align4(_ n: Int) -> Int { (n + 3) & ~3 }
@inline(__always) func align8(_ n: Int) -> Int { (n + 7) & ~7 }

extension NVPair {
    /// The pair's `encode_size`, as libnvpair writes it.
    public var encodedSize: Int { 20 + align4(name.utf8.count) + value.encodedValueSize }

    /// The pair's `decode_size`: `align8(sizeof (nvpair_t) + strlen(name) + 1) + align8(value size)`.
    public var decodedSize: Int { align8(16 + name.utf8.count + 1) + align8(value.nativeSize) }
}

extension NVList {
    /// Bytes of this list as an embedded XDR body: version, flags, the pairs and the 8-byte terminator.
    public var encodedBodySize: Int { 16 + pairs.reduce(0) { $0 + $1.encodedSize } }

    /// Bytes of the packed stream (`nvlist_size(..., NV_ENCODE_XDR)`): the 4-byte header plus the body.
    public var encodedSize: Int { 4 + encodedBodySize }
}

extension NVValue {
    /// Stream bytes of the value as counted in `encode_size`. For an empty array with a count word libnvpair
    /// counts the word although it does not write it; this size follows libnvpair.
    var encodedValueSize: Int {
        switch self {
        case .boolean: 0
        case .booleanValue, .byte, .int8, .uint8, .int16, .uint16, .int32, .uint32: 4
        case .int64, .uint64, .hrtime, .double: 8
        case .string(let s): 4 + align4(s.byteCount)
        case .byteArray(let a): align4(a.count)
        case .int8Array(let a): 4 + 4 * a.count
        case .uint8Array(let a): 4 + 4 * a.count
        case .int16Array(let a): 4 + 4 * a.count
        case .uint16Array(let a): 4 + 4 * a.count
        case .int32Array(let a): 4 + 4 * a.count
        case .uint32Array(let a): 4 + 4 * a.count
        case .booleanArray(let a): 4 + 4 * a.count
        case .int64Array(let a): 4 + 8 * a.count
        case .uint64Array(let a): 4 + 8 * a.count
        case .stringArray(let a): a.reduce(0) { $0 + 4 + align4($1.byteCount) }
        case .nvlist(let l): l.encodedBodySize
        case .nvlistArray(let a): a.reduce(0) { $0 + $1.encodedBodySize }
        }
    }

    /// Whether the stream holds a count word before the elements (written only when there are elements).
    var hasCountWord: Bool {
        switch self {
        case .int8Array, .uint8Array, .int16Array, .uint16Array, .int32Array, .uint32Array, .booleanArray,
            .int64Array, .uint64Array:
            true
        default: false
        }
    }

    /// The in-memory value size libnvpair computes (`i_get_value_size`), LP64.
    var nativeSize: Int {
        switch self {
        case .boolean: 0
        case .booleanValue: 4
        case .byte, .int8, .uint8: 1
        case .int16, .uint16: 2
        case .int32, .uint32: 4
        case .int64, .uint64, .hrtime, .double: 8
        case .string(let s): s.byteCount + 1
        case .byteArray(let a): a.count
        case .int8Array(let a): a.count
        case .uint8Array(let a): a.count
        case .int16Array(let a): 2 * a.count
        case .uint16Array(let a): 2 * a.count
        case .int32Array(let a): 4 * a.count
        case .uint32Array(let a): 4 * a.count
        case .booleanArray(let a): 4 * a.count
        case .int64Array(let a): 8 * a.count
        case .uint64Array(let a): 8 * a.count
        case .stringArray(let a): a.reduce(8 * a.count) { $0 + $1.byteCount + 1 }
        case .nvlist: 24
        case .nvlistArray(let a): 32 * a.count
        }
    }
}

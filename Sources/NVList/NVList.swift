// An nvlist is libnvpair's ordered list of typed name/value pairs. ZFS stores a vdev's configuration as one,
// packed with XDR, in each of the four labels of every leaf vdev, and keeps the pool's own copy in the MOS.
//
// This module knows nothing of ZFS: it models nvlists as values, decodes and encodes the XDR stream exactly
// as libnvpair does (`module/nvpair/nvpair.c`), and renders them as JSON.

/// An ordered list of name/value pairs, as libnvpair's `nvlist_t`.
///
/// Pairs keep the order in which they were decoded or added; that order carries no meaning to ZFS, but
/// keeping it is what makes a decoded list re-encode to the identical bytes.
public struct NVList: Sendable, Hashable {
    /// The list's uniqueness flags (`nvl_nvflag`).
    public var flags: Flags
    /// The pairs, in stream order.
    public var pairs: [NVPair]

    /// Creates a list.
    ///
    /// - Parameters:
    ///   - flags: the uniqueness rule; every list ZFS writes uses ``Flags/uniqueName``.
    ///   - pairs: the pairs, in order.
    public init(flags: Flags = .uniqueName, pairs: [NVPair] = []) {
        self.flags = flags
        self.pairs = pairs
    }

    /// The uniqueness flags of a list (`NV_UNIQUE_NAME`, `NV_UNIQUE_NAME_TYPE`).
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Names are unique within the list (`NV_UNIQUE_NAME`, 1).
        public static let uniqueName = Flags(rawValue: 1)
        /// Name and type together are unique (`NV_UNIQUE_NAME_TYPE`, 2).
        public static let uniqueNameAndType = Flags(rawValue: 2)
    }
}

/// One name/value pair of an ``NVList``.
public struct NVPair: Sendable, Hashable {
    /// The pair's name; never contains a NUL byte.
    public var name: String
    /// The typed value.
    public var value: NVValue

    /// Creates a pair.
    public init(_ name: String, _ value: NVValue) {
        self.name = name
        self.value = value
    }
}

/// A typed nvpair value: one case for each of libnvpair's 27 data types (`data_type_t`).
public enum NVValue: Sendable, Hashable {
    /// `DATA_TYPE_BOOLEAN` (1): a flag whose presence is the value.
    case boolean
    /// `DATA_TYPE_BYTE` (2).
    case byte(UInt8)
    /// `DATA_TYPE_INT16` (3).
    case int16(Int16)
    /// `DATA_TYPE_UINT16` (4).
    case uint16(UInt16)
    /// `DATA_TYPE_INT32` (5).
    case int32(Int32)
    /// `DATA_TYPE_UINT32` (6).
    case uint32(UInt32)
    /// `DATA_TYPE_INT64` (7).
    case int64(Int64)
    /// `DATA_TYPE_UINT64` (8).
    case uint64(UInt64)
    /// `DATA_TYPE_STRING` (9): any bytes but NUL, kept exactly (see ``NVString``).
    case string(NVString)
    /// `DATA_TYPE_BYTE_ARRAY` (10).
    case byteArray([UInt8])
    /// `DATA_TYPE_INT16_ARRAY` (11).
    case int16Array([Int16])
    /// `DATA_TYPE_UINT16_ARRAY` (12).
    case uint16Array([UInt16])
    /// `DATA_TYPE_INT32_ARRAY` (13).
    case int32Array([Int32])
    /// `DATA_TYPE_UINT32_ARRAY` (14).
    case uint32Array([UInt32])
    /// `DATA_TYPE_INT64_ARRAY` (15).
    case int64Array([Int64])
    /// `DATA_TYPE_UINT64_ARRAY` (16).
    case uint64Array([UInt64])
    /// `DATA_TYPE_STRING_ARRAY` (17).
    case stringArray([NVString])
    /// `DATA_TYPE_HRTIME` (18): nanoseconds.
    case hrtime(Int64)
    /// `DATA_TYPE_NVLIST` (19).
    case nvlist(NVList)
    /// `DATA_TYPE_NVLIST_ARRAY` (20).
    case nvlistArray([NVList])
    /// `DATA_TYPE_BOOLEAN_VALUE` (21).
    case booleanValue(Bool)
    /// `DATA_TYPE_INT8` (22).
    case int8(Int8)
    /// `DATA_TYPE_UINT8` (23).
    case uint8(UInt8)
    /// `DATA_TYPE_BOOLEAN_ARRAY` (24).
    case booleanArray([Bool])
    /// `DATA_TYPE_INT8_ARRAY` (25).
    case int8Array([Int8])
    /// `DATA_TYPE_UINT8_ARRAY` (26).
    case uint8Array([UInt8])
    /// `DATA_TYPE_DOUBLE` (27).
    case double(Double)

    /// The libnvpair type of this value.
    public var type: NVDataType {
        switch self {
        case .boolean: .boolean
        case .byte: .byte
        case .int16: .int16
        case .uint16: .uint16
        case .int32: .int32
        case .uint32: .uint32
        case .int64: .int64
        case .uint64: .uint64
        case .string: .string
        case .byteArray: .byteArray
        case .int16Array: .int16Array
        case .uint16Array: .uint16Array
        case .int32Array: .int32Array
        case .uint32Array: .uint32Array
        case .int64Array: .int64Array
        case .uint64Array: .uint64Array
        case .stringArray: .stringArray
        case .hrtime: .hrtime
        case .nvlist: .nvlist
        case .nvlistArray: .nvlistArray
        case .booleanValue: .booleanValue
        case .int8: .int8
        case .uint8: .uint8
        case .booleanArray: .booleanArray
        case .int8Array: .int8Array
        case .uint8Array: .uint8Array
        case .double: .double
        }
    }

    /// The element count libnvpair records for this value (`nvp_value_elem`): 0 for a boolean flag, 1 for
    /// scalars and nested lists, the array length for arrays.
    public var elementCount: Int {
        switch self {
        case .boolean: 0
        case .byteArray(let a): a.count
        case .int16Array(let a): a.count
        case .uint16Array(let a): a.count
        case .int32Array(let a): a.count
        case .uint32Array(let a): a.count
        case .int64Array(let a): a.count
        case .uint64Array(let a): a.count
        case .stringArray(let a): a.count
        case .nvlistArray(let a): a.count
        case .booleanArray(let a): a.count
        case .int8Array(let a): a.count
        case .uint8Array(let a): a.count
        default: 1
        }
    }
}

/// libnvpair's `data_type_t`, with its on-disk numbers.
public enum NVDataType: Int32, Sendable, CaseIterable {
    case boolean = 1
    case byte = 2
    case int16 = 3
    case uint16 = 4
    case int32 = 5
    case uint32 = 6
    case int64 = 7
    case uint64 = 8
    case string = 9
    case byteArray = 10
    case int16Array = 11
    case uint16Array = 12
    case int32Array = 13
    case uint32Array = 14
    case int64Array = 15
    case uint64Array = 16
    case stringArray = 17
    case hrtime = 18
    case nvlist = 19
    case nvlistArray = 20
    case booleanValue = 21
    case int8 = 22
    case uint8 = 23
    case booleanArray = 24
    case int8Array = 25
    case uint8Array = 26
    case double = 27
}

import Foundation
import NVList
import Testing

/// Streams packed by the system libnvpair (`Fixtures/nvlist/make-vectors.c`), decoded and re-encoded.
@Suite struct LibnvpairVectorTests {
    static func vector(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/nvlist/\(name).xdr")
        return [UInt8](try Data(contentsOf: url))
    }

    /// The list `make-vectors.c` builds as "all-types", written out by hand.
    static var allTypes: NVList {
        let inner = NVList(pairs: [NVPair("type", .string("disk")), NVPair("guid", .uint64(0x1234_5678_90ab_cdef))])
        return NVList(pairs: [
            NVPair("flag", .boolean),
            NVPair("yes", .booleanValue(true)),
            NVPair("no", .booleanValue(false)),
            NVPair("byte", .byte(0xab)),
            NVPair("int8", .int8(-5)),
            NVPair("uint8", .uint8(250)),
            NVPair("int16", .int16(-1234)),
            NVPair("uint16", .uint16(65000)),
            NVPair("int32", .int32(-100_000)),
            NVPair("uint32", .uint32(4_000_000_000)),
            NVPair("int64", .int64(-5_000_000_000)),
            NVPair("uint64", .uint64(.max)),
            NVPair("hrtime", .hrtime(1_234_567_890_123)),
            NVPair("double", .double(3.25)),
            NVPair("string", .string("/dev/dsk/c1t0d0s0")),
            NVPair("empty", .string("")),
            NVPair("byte_array", .byteArray([1, 2, 3, 0xfe, 0xff])),
            NVPair("int8_array", .int8Array([-1, 0, 127])),
            NVPair("uint8_array", .uint8Array([0, 128, 255])),
            NVPair("int16_array", .int16Array([-32768, 32767])),
            NVPair("uint16_array", .uint16Array([0, 65535])),
            NVPair("int32_array", .int32Array([-1, 0, 2_147_483_647])),
            NVPair("uint32_array", .uint32Array([1, 4_294_967_295])),
            NVPair("int64_array", .int64Array([.min, 42])),
            NVPair("uint64_array", .uint64Array([0, 1, .max])),
            NVPair("boolean_array", .booleanArray([true, false, true])),
            NVPair("string_array", .stringArray(["a", "", "three"])),
            NVPair("nested", .nvlist(inner)),
            NVPair("nvlist_array", .nvlistArray([
                NVList(pairs: [NVPair("id", .uint64(0))]),
                NVList(pairs: [NVPair("id", .uint64(1)), NVPair("inner", .nvlist(inner))]),
            ])),
        ])
    }

    @Test func everyTypeDecodesToTheValuesLibnvpairPacked() throws {
        let bytes = try Self.vector("all-types")
        let decoded = try NVList.decode(xdr: bytes)
        #expect(decoded.list == Self.allTypes)
        #expect(decoded.byteCount == bytes.count)
        #expect(decoded.header.hostByteOrder == .little)
        #expect(Set(decoded.list.pairs.map(\.value.type)) == Set(NVDataType.allCases))
    }

    @Test func everyTypeEncodesToLibnvpairsBytes() throws {
        let bytes = try Self.vector("all-types")
        #expect(Self.allTypes.encodeXDR() == bytes)
        #expect(Self.allTypes.encodedSize == bytes.count)
    }

    @Test(arguments: ["all-types", "empty-arrays", "nested-empty", "no-unique-flag", "unique-name-type", "empty-list",
                     "non-utf8-strings"])
    func roundTripIsByteExact(_ name: String) throws {
        let bytes = try Self.vector(name)
        let decoded = try NVList.decode(xdr: bytes)
        #expect(decoded.list.encodeXDR(hostByteOrder: decoded.header.hostByteOrder) == bytes)
    }

    @Test func emptyArraysFollowLibnvpairsEncodeSizeQuirk() throws {
        let list = NVList(pairs: [
            NVPair("u64", .uint64Array([])), NVPair("strs", .stringArray([])), NVPair("lists", .nvlistArray([])),
            NVPair("bytes", .byteArray([])), NVPair("after", .uint64(7)),
        ])
        let bytes = try Self.vector("empty-arrays")
        #expect(list.encodeXDR() == bytes)
        // The uint64 array's encode_size counts a count word the stream does not hold.
        #expect(bytes[12..<16] == [0, 0, 0, 0x1c])
        // ... and nvlist_pack sizes the buffer by that count, leaving 4 zero bytes at the end.
        #expect(bytes.count == list.encodedSize)
        #expect(try NVList.decode(xdr: bytes).byteCount == bytes.count)
    }

    @Test func nestedEmptyArraysCountInEveryEnclosingSize() throws {
        let inner = NVList(pairs: [NVPair("none", .uint64Array([])), NVPair("x", .uint64(1))])
        let list = NVList(pairs: [NVPair("outer", .nvlistArray([inner, inner])), NVPair("y", .string("z"))])
        let bytes = try Self.vector("nested-empty")
        #expect(list.encodeXDR() == bytes)
        #expect(bytes.count == list.encodedSize)
        #expect(try NVList.decode(xdr: bytes).list == list)
        // The outer pair's encode_size counts both inner quirks.
        #expect(bytes[12..<16] == withUnsafeBytes(of: UInt32(list.pairs[0].encodedSize).bigEndian) { Array($0) }[...])
    }

    @Test func flagsAreKept() throws {
        #expect(try NVList.decode(xdr: Self.vector("no-unique-flag")).list.flags == [])
        let typed = try NVList.decode(xdr: Self.vector("unique-name-type")).list
        #expect(typed.flags == .uniqueNameAndType)
        #expect(typed.pairs.map(\.name) == ["x", "x"])
    }
}

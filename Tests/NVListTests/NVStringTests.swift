import Foundation
import NVList
import Testing

/// Strings are bytes: libnvpair packs any bytes but NUL, and the codec keeps them exactly.
@Suite struct NVStringTests {
    static func bytes(_ s: String) -> NVString { NVString(bytes: Array(s.utf8))! }
    static func raw(_ b: [UInt8]) -> NVString { NVString(bytes: b)! }

    /// `Fixtures/nvlist/non-utf8-strings.xdr` as `make-vectors.c` builds it.
    static var nonUTF8: NVList {
        NVList(pairs: [
            NVPair("hostname", .string(raw(Array("omni".utf8) + [0xf6] + Array("s".utf8)))),
            NVPair("comment", .string(raw([0x80] + Array(" lone, ".utf8) + [0xe2, 0x82] + Array(" cut, ".utf8)
                + [0xc0, 0xaf] + Array(" overlong, \\x41 literal".utf8)))),
            NVPair("precomposed", .string("caf\u{e9}")),
            NVPair("decomposed", .string("cafe\u{301}")),
            NVPair("strings", .stringArray(["ok", raw([0xff, 0xfe]), "", raw(Array("ende".utf8) + [0xe9])])),
            NVPair("vdev_tree", .nvlist(NVList(pairs: [
                NVPair("path", .string(raw(Array("/dev/dsk/c1t0d0s0-".utf8) + [0xe9, 0x74, 0xe9]))),
            ]))),
        ])
    }

    @Test func libnvpairsNonUTF8StringsDecodeToTheirBytes() throws {
        let bytes = try LibnvpairVectorTests.vector("non-utf8-strings")
        let decoded = try NVList.decode(xdr: bytes)
        #expect(decoded.list == Self.nonUTF8)
        #expect(decoded.byteCount == bytes.count)
        #expect(decoded.list.string("hostname")?.bytes == [0x6f, 0x6d, 0x6e, 0x69, 0xf6, 0x73])
        #expect(decoded.list.string("hostname")?.string == nil)
        #expect(decoded.list.string("precomposed")?.string == "caf\u{e9}")
    }

    @Test func nonUTF8StringsEncodeToLibnvpairsBytes() throws {
        let bytes = try LibnvpairVectorTests.vector("non-utf8-strings")
        #expect(Self.nonUTF8.encodeXDR() == bytes)
        #expect(Self.nonUTF8.encodedSize == bytes.count)
        let decoded = try NVList.decode(xdr: bytes)
        #expect(decoded.list.encodeXDR(hostByteOrder: decoded.header.hostByteOrder) == bytes)
    }

    @Test func canonicallyEquivalentSpellingsAreDifferentStrings() {
        let pre: NVString = "caf\u{e9}"
        let de: NVString = "cafe\u{301}"
        #expect("caf\u{e9}" == "cafe\u{301}" as String)  // what Swift's String says
        #expect(pre != de)
        #expect(Set([pre, de]).count == 2)
        #expect(pre.byteCount == 5 && de.byteCount == 6)
    }

    @Test func literalsCompareAsBefore() {
        let list = NVList(pairs: [NVPair("type", .string("disk"))])
        #expect(list.string("type") == "disk")
        #expect(list.string("type") != "file")
        #expect("\(list.string("type")!)" == "disk")
    }

    @Test(arguments: [
        ([0x6f, 0xf6], #"o\xf6"#),
        ([0x80], #"\x80"#),
        ([0xe2, 0x82, 0x41], #"\xe2\x82A"#),
        ([0xc0, 0xaf], #"\xc0\xaf"#),
        ([0xed, 0xa0, 0x80], #"\xed\xa0\x80"#),  // a UTF-16 surrogate is not UTF-8
        ([0x5c, 0xff], #"\\\xff"#),  // a backslash in a non-UTF-8 string doubles
        (Array("caf\u{e9} \u{1F600}".utf8), "caf\u{e9} \u{1F600}"),
        (Array(#"a\b"#.utf8), #"a\\b"#),
    ] as [([UInt8], String)])
    func escapedFormIsExactAndReversible(_ bytes: [UInt8], _ escaped: String) throws {
        let s = try #require(NVString(bytes: bytes))
        #expect(s.escaped == escaped)
        #expect(NVString(escaped: escaped) == s)
        #expect(s.matches(escaped))
        #expect(NVString(base64: s.base64) == s)
        #expect(s.bytes == bytes)
        if let text = String(validating: bytes, as: UTF8.self) {
            #expect(s.string == text && s.description == text && s.json == .string(text))
        } else {
            #expect(s.string == nil && s.description == escaped)
            #expect(s.json == .object([("base64", .string(Data(bytes).base64EncodedString()))]))
        }
    }

    @Test func escapesMatchInEitherCaseAndTextMatchesExactly() {
        let s = Self.raw([0x68, 0xf6, 0x73, 0x74])
        #expect(s.matches(#"h\xf6st"#))
        #expect(s.matches(#"h\xF6st"#))
        #expect(!s.matches(#"h\xf6s"#))
        #expect(!s.matches("h\u{f6}st"))  // U+00F6 is two UTF-8 bytes, not the Latin-1 byte
        let literal: NVString = #"a\x41"#
        #expect(literal.matches(#"a\x41"#))  // the text itself
        #expect(literal.matches(#"a\\x41"#))  // its escaped form
        #expect(!Self.bytes("aA").matches(#"a\\x41"#))
    }

    @Test func base64MatchesFoundationForEveryLength() {
        for n in 0..<10 {
            let bytes = (0..<n).map { UInt8(0x80 | ($0 * 37 & 0x7f)) }
            let s = Self.raw(bytes)
            #expect(s.base64 == Data(bytes).base64EncodedString(), "\(n)")
            #expect(NVString(base64: s.base64)?.bytes == bytes, "\(n)")
        }
        #expect(NVString(base64: "AA==") == nil)  // a NUL byte
        #expect(NVString(base64: "ab=c") == nil)
        #expect(NVString(base64: "abc") == nil)
    }

    @Test func nulIsRefused() {
        #expect(NVString(bytes: [0x61, 0, 0x62]) == nil)
        #expect(NVString(validating: "a\u{0}b") == nil)
        #expect(NVString(escaped: #"a\x00"#) == nil)
        #expect(NVString(escaped: #"a\q"#) == nil)
        #expect(NVString(escaped: #"a\x4"#) == nil)
    }

    @Test func aNULInsideAStringEndsItAsInLibnvpair() throws {
        var bytes = Self.nonUTF8.encodeXDR()
        let needle: [UInt8] = Array("omni".utf8) + [0xf6]
        let at = try #require(bytes.indices.first { bytes[$0...].starts(with: needle) })
        bytes[at + 4] = 0  // "omni\0s": strlen 4, decode_size unchanged (align8(5) == align8(7))
        let decoded = try NVList.decode(xdr: bytes)
        #expect(decoded.list.string("hostname") == "omni")
        // re-encoded in canonical form, as libnvpair packs the list it unpacked: 4 bytes shorter
        var expected = Self.nonUTF8
        expected["hostname"] = .string("omni")
        #expect(decoded.list == expected)
        #expect(decoded.byteCount == expected.encodedSize)
        #expect(decoded.list.encodeXDR() == expected.encodeXDR())
        #expect(expected.encodedSize == bytes.count - 4)
    }

    @Test func sizesCountBytes() {
        let list = NVList(pairs: [NVPair("s", .string(Self.raw([0xff, 0xfe, 0xfd])))])
        // 8 size words + name (4 + 4) + type + nelem + length word + 3 bytes padded to 4
        #expect(list.pairs[0].encodedSize == 8 + 8 + 8 + 4 + 4)
        #expect(list.pairs[0].decodedSize == 24 + 8)
    }
}

import NVList
import Testing

/// Malformed streams throw an error with the kind and the byte offset; none of them traps.
@Suite struct DecodingErrorTests {
    static let sample = NVList(pairs: [
        NVPair("version", .uint64(5000)), NVPair("name", .string("rpool")),
        NVPair("vdev_tree", .nvlist(NVList(pairs: [NVPair("type", .string("disk")), NVPair("children", .nvlistArray([]))]))),
    ]).encodeXDR()

    func error(_ bytes: [UInt8]) -> NVListError? {
        do { _ = try NVList.decode(xdr: bytes); return nil } catch { return error }
    }

    @Test("a stream decoded in place inside a larger buffer reads as the same stream alone, errors at the same offsets")
    func decodeInPlace() throws {
        let alone = try NVList.decode(xdr: Self.sample)
        let front: [UInt8] = [0xAA, 0xBB, 0xCC, 0xDD, 0xEE], back = [UInt8](repeating: 0x5A, count: 9)
        let buffer = front + Self.sample + back
        let range = front.count..<(front.count + Self.sample.count)
        #expect(try NVList.decode(xdr: buffer, in: range) == alone)
        // The bytes after the list (a label's zero fill) are ignored either way.
        #expect(try NVList.decode(xdr: buffer, in: front.count..<buffer.count) == alone)
        // Every truncation and a damaged byte throw with the offset the stream alone gives.
        for n in 0..<Self.sample.count - 1 {
            let inPlace = #expect(throws: NVListError.self) { try NVList.decode(xdr: buffer, in: front.count..<(front.count + n)) }
            #expect(inPlace == error(Array(Self.sample[..<n])), "prefix of \(n) bytes")
        }
        var damaged = buffer
        damaged[front.count + 7] = 1
        var damagedAlone = Self.sample
        damagedAlone[7] = 1
        let e = #expect(throws: NVListError.self) { try NVList.decode(xdr: damaged, in: range) }
        #expect(e == error(damagedAlone) && e?.offset == 4)
        // A range outside the buffer throws, never traps.
        #expect(throws: NVListError.self) { try NVList.decode(xdr: buffer, in: (buffer.count - 2)..<(buffer.count + 8)) }
        #expect(throws: NVListError.self) { try NVList.decode(xdr: buffer, in: -4..<8) }
    }

    @Test func emptyAndShortStreams() {
        #expect(error([])?.kind == .truncated)
        #expect(error([1, 1, 0])?.kind == .truncated)
        #expect(error([1, 1, 0, 0])?.kind == .truncated)
    }

    @Test func nativeEncodingIsRefused() {
        var b = Self.sample
        b[0] = 0
        #expect(error(b)?.kind == .unsupportedEncoding)
    }

    @Test func everyTruncationThrows() {
        for n in 0..<Self.sample.count - 1 {
            let e = error(Array(Self.sample[..<n]))
            #expect(e != nil, "prefix of \(n) bytes decoded")
            if let e { #expect(e.offset <= n) }
        }
    }

    @Test func badVersionNamesTheOffset() {
        var b = Self.sample
        b[7] = 1
        let e = error(b)
        #expect(e?.kind == .unsupportedVersion)
        #expect(e?.offset == 4)
    }

    @Test func wrongDecodeSizeIsRefusedAsLibnvpairDoes() {
        var b = Self.sample
        b[19] &+= 8  // decode_size of "version": header 4, version 4, flags 4, encode_size 4
        let e = error(b)
        #expect(e?.kind == .sizeMismatch)
        #expect(e?.context == "version")
        #expect(e?.offset == 16)
    }

    @Test func encodeSizeIsIgnoredAsLibnvpairDoes() throws {
        var b = Self.sample
        b[15] &+= 4
        // nvlist_unpack reads pairs in sequence and never checks encode_size; re-encoding writes it right.
        let list = try NVList.decode(xdr: b).list
        #expect(list.encodeXDR() == Self.sample)
    }

    @Test func unknownType() {
        var b = Self.sample
        // "version" pair: sizes (8) + name length (4) + "version\0" (8) → type at 4+8+8+4+8 = 32
        b[35] = 99
        let e = error(b)
        #expect(e?.kind == .unknownType)
        #expect(e?.offset == 32)
    }

    @Test func absurdElementCountsAreRefusedBeforeAllocating() {
        let list = NVList(pairs: [NVPair("a", .uint64Array([1, 2]))])
        var b = list.encodeXDR()
        // nelem at 4 + 8 + 8 + 4 + 4 + 4 = 32
        b.replaceSubrange(32..<36, with: [0x7f, 0xff, 0xff, 0xff])
        #expect(error(b)?.kind == .badElementCount)
        b.replaceSubrange(32..<36, with: [0xff, 0xff, 0xff, 0xff])
        #expect(error(b)?.kind == .badElementCount)
    }

    @Test func nameLengthPastTheEnd() {
        var b = Self.sample
        b.replaceSubrange(20..<24, with: [0x40, 0, 0, 0])
        #expect(error(b)?.kind == .sizeMismatch)
    }

    @Test func duplicateNamesInAUniqueList() {
        let dup = NVList(flags: .uniqueName, pairs: [NVPair("a", .uint64(1)), NVPair("a", .uint64(2))])
        #expect(error(dup.encodeXDR())?.kind == .duplicateName)
        let allowed = NVList(flags: [], pairs: dup.pairs)
        #expect(error(allowed.encodeXDR()) == nil)
    }

    @Test func nulInsideAStringAndInvalidUTF8() throws {
        var b = NVList(pairs: [NVPair("s", .string("abcd"))]).encodeXDR()
        let at = try #require(b.firstIndex(of: UInt8(ascii: "b")))
        // A NUL inside a value ends it, as in libnvpair (checked with nvlist_unpack): decode_size still matches
        // the length up to the NUL (align8(strlen + 1) is 8 either way), so the pair is accepted as "a".
        b[at] = 0
        #expect(error(b) == nil)
        #expect(try NVList.decode(xdr: b).list.string("s") == "a")
        #expect(try NVList.decode(xdr: b).byteCount == NVList(pairs: [NVPair("s", .string("a"))]).encodedSize)
        // When the shorter length changes decode_size, libnvpair refuses the pair (EFAULT), and so does the decoder.
        var long = NVList(pairs: [NVPair("s", .string("abcdefgh"))]).encodeXDR()
        let longAt = try #require(long.firstIndex(of: UInt8(ascii: "b")))
        long[longAt] = 0
        #expect(error(long)?.kind == .sizeMismatch)
        b[at] = UInt8(ascii: "b")
        // A value that is not UTF-8 is what libnvpair accepts: it decodes, with its bytes.
        b[at] = 0xff
        #expect(error(b) == nil)
        #expect(try NVList.decode(xdr: b).list.string("s")?.bytes == [0x61, 0xff, 0x63, 0x64])
        // A pair name must still be UTF-8.
        var n = NVList(pairs: [NVPair("name", .string("v"))]).encodeXDR()
        let nameAt = try #require(n.firstIndex(of: UInt8(ascii: "m")))
        n[nameAt] = 0xff
        #expect(error(n)?.kind == .badString)
    }

    @Test func booleansOtherThanZeroOrOne() {
        var b = NVList(pairs: [NVPair("b", .booleanValue(true))]).encodeXDR()
        b[b.count - 9] = 2
        #expect(error(b)?.kind == .badBoolean)
    }

    @Test func deepNestingIsBounded() {
        var list = NVList(pairs: [NVPair("leaf", .uint64(1))])
        for _ in 0..<(NVList.maximumDepth + 5) { list = NVList(pairs: [NVPair("n", .nvlist(list))]) }
        #expect(error(list.encodeXDR())?.kind == .tooDeep)
        var ok = NVList(pairs: [NVPair("leaf", .uint64(1))])
        for _ in 0..<(NVList.maximumDepth - 2) { ok = NVList(pairs: [NVPair("n", .nvlist(ok))]) }
        #expect(error(ok.encodeXDR()) == nil)
    }

    @Test func descriptionNamesOffsetAndPair() {
        var b = Self.sample
        b[19] &+= 8
        #expect(error(b)?.description == "decode_size is 40 but libnvpair computes 32 at byte 0x10 of the nvlist in 'version'")
    }

    @Test func seededRandomMutationsNeverTrap() {
        var rng = SplitMix64(seed: 0x5eed)
        for _ in 0..<20_000 {
            var b = Self.sample
            for _ in 0..<Int(rng.next() % 4 + 1) {
                b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if let list = try? NVList.decode(xdr: b).list {
                // Whatever decodes re-encodes to something that decodes to the same list.
                #expect((try? NVList.decode(xdr: list.encodeXDR()).list) == list)
            }
        }
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

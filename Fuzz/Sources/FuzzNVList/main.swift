// Fuzzes the XDR nvlist decoder, and the encoder on everything the decoder accepts.
//
// Input: a packed stream, as `NVList.decode(xdr:)` takes it. Malformed input must throw, never trap. For
// every stream that decodes, these must hold, or the target traps and libFuzzer keeps the input:
//   - the decoded size is the size libnvpair would compute (`encodedSize`), and the part of it that is
//     actually written lies inside the input;
//   - re-encoding gives exactly `encodedSize` bytes, which decode again to the identical list (doubles are
//     compared by bit pattern, so a NaN is equal to itself), occupying the whole re-encoding;
//   - encoding is a fixed point: encoding the second decode gives the same bytes again;
//   - every string value (UTF-8 or not) reads back from its escaped and its base64 form as the same bytes;
//   - JSON rendering and path lookup of every top-level name complete.

import FuzzSupport
import NVList

func fuzzOne(_ bytes: [UInt8]) {
    let first: NVDecodedStream
    do { first = try NVList.decode(xdr: bytes) } catch { return }
    let list = first.list
    // libnvpair's size (and so `byteCount`) counts a word for each empty array that the stream never holds.
    let written = first.byteCount - unwrittenBytes(list)
    fuzzRequire(written <= bytes.count, "decoded \(written) written bytes of a \(bytes.count)-byte input")
    fuzzRequire(
        first.byteCount == list.encodedSize,
        "decode consumed \(first.byteCount) bytes but encodedSize is \(list.encodedSize)")

    let order = first.header.hostByteOrder
    let encoded = list.encodeXDR(hostByteOrder: order)
    fuzzRequire(encoded.count == list.encodedSize, "encoded \(encoded.count) bytes, encodedSize \(list.encodedSize)")

    let second: NVDecodedStream
    do { second = try NVList.decode(xdr: encoded) } catch { fuzzFail("the re-encoded stream does not decode: \(error)") }
    fuzzRequire(second.byteCount == encoded.count, "re-decode consumed \(second.byteCount) of \(encoded.count) bytes")
    fuzzRequire(second.header == first.header, "header changed: \(first.header) -> \(second.header)")
    fuzzRequire(identical(list, second.list), "decode(encode(list)) differs from list")
    fuzzRequire(second.list.encodeXDR(hostByteOrder: order) == encoded, "encoding is not a fixed point")

    checkStrings(list)
    _ = list.json.rendered(pretty: true)
    for name in list.names {
        if let path = try? NVPath(parsing: name) { _ = list.value(at: path) }
    }
}

/// The text forms of every string value give back its exact bytes.
func checkStrings(_ list: NVList) {
    func check(_ s: NVString) {
        fuzzRequire(NVString(escaped: s.escaped) == s, "escaped form \(s.escaped.debugDescription) does not read back")
        fuzzRequire(NVString(base64: s.base64) == s, "base64 form \(s.base64) does not read back")
        fuzzRequire(s.matches(s.escaped) && s.matches(s.description), "\(s.debugDescription) does not match its text")
    }
    for pair in list.pairs {
        switch pair.value {
        case .string(let s): check(s)
        case .stringArray(let a): a.forEach(check)
        case .nvlist(let l): checkStrings(l)
        case .nvlistArray(let a): a.forEach(checkStrings)
        default: break
        }
    }
}

/// Structural equality in which doubles compare by bit pattern (`NVValue`'s `==` follows IEEE, so a list
/// holding a NaN is not equal to itself).
func identical(_ a: NVList, _ b: NVList) -> Bool {
    guard a.flags == b.flags, a.pairs.count == b.pairs.count else { return false }
    for (p, q) in zip(a.pairs, b.pairs) {
        guard p.name == q.name, identical(p.value, q.value) else { return false }
    }
    return true
}

func identical(_ a: NVValue, _ b: NVValue) -> Bool {
    switch (a, b) {
    case (.double(let x), .double(let y)): x.bitPattern == y.bitPattern
    case (.nvlist(let x), .nvlist(let y)): identical(x, y)
    case (.nvlistArray(let x), .nvlistArray(let y)): x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    default: a == b
    }
}

fuzzMain { data, size in
    fuzzOne(fuzzBytes(data, size))
    return 0
}

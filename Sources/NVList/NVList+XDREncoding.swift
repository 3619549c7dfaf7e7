extension NVList {
    /// Packs the list as an XDR stream (`nvlist_pack(..., NV_ENCODE_XDR)`): the 4-byte header, then the body.
    ///
    /// The output is byte for byte what libnvpair writes for the same list, sizes included, so a list decoded
    /// from a label re-encodes to the identical bytes.
    ///
    /// - Parameter hostByteOrder: recorded in the header; use the order of the stream you decoded.
    public func encodeXDR(hostByteOrder: NVByteOrder = .little) -> [UInt8] {
        var w = XDRWriter()
        w.bytes.reserveCapacity(encodedSize)
        w.bytes.append(contentsOf: [1, hostByteOrder == .little ? 1 : 0, 0, 0])
        let slack = w.writeBody(self)
        // libnvpair sizes its buffer by the sizes it computes, which count a word for each empty array that
        // is never written; the unwritten tail stays zero.
        w.bytes.append(contentsOf: repeatElement(0, count: slack))
        return w.bytes
    }
}

struct XDRWriter {
    var bytes: [UInt8] = []

    @inline(__always) mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }

    @inline(__always) mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func opaque<C: Collection<UInt8>>(_ data: C) {
        bytes.append(contentsOf: data)
        let pad = align4(data.count) - data.count
        if pad > 0 { bytes.append(contentsOf: repeatElement(0, count: pad)) }
    }

    mutating func string(_ s: String) {
        let utf8 = s.utf8
        u32(UInt32(utf8.count))
        opaque(utf8)
    }

    /// Writes a list body and returns its slack: bytes counted in encode sizes but not written.
    @discardableResult
    mutating func writeBody(_ list: NVList) -> Int {
        i32(0)  // NV_VERSION
        u32(list.flags.rawValue)
        var slack = 0
        for pair in list.pairs { slack += writePair(pair) }
        u64(0)  // terminator: encode_size 0, decode_size 0
        return slack
    }

    mutating func writePair(_ pair: NVPair) -> Int {
        let start = bytes.count
        u64(0)  // encode_size and decode_size, patched below
        string(pair.name)
        i32(pair.value.type.rawValue)
        i32(Int32(pair.value.elementCount))
        let slack = writeValue(pair.value)
        let encodeSize = bytes.count - start + slack
        let sizes = (UInt64(UInt32(encodeSize)) << 32) | UInt64(UInt32(pair.decodedSize))
        withUnsafeBytes(of: sizes.bigEndian) { raw in
            for i in 0..<8 { bytes[start + i] = raw[i] }
        }
        return slack
    }

    // 8- and 16-bit values go out as XDR ints the way userland libnvpair (libtirpc) writes them: bytes and
    // int8/uint8 as a signed char, int16 sign-extended, uint16 zero-extended.
    mutating func writeValue(_ value: NVValue) -> Int {
        switch value {
        case .nvlist(let l): return writeBody(l)
        case .nvlistArray(let a): return a.reduce(0) { $0 + writeBody($1) }
        default: break
        }
        switch value {
        case .boolean: break
        case .booleanValue(let b): i32(b ? 1 : 0)
        case .byte(let v): i32(Int32(Int8(bitPattern: v)))
        case .int8(let v): i32(Int32(v))
        case .uint8(let v): i32(Int32(Int8(bitPattern: v)))
        case .int16(let v): i32(Int32(v))
        case .uint16(let v): u32(UInt32(v))
        case .int32(let v): i32(v)
        case .uint32(let v): u32(v)
        case .int64(let v): u64(UInt64(bitPattern: v))
        case .uint64(let v): u64(v)
        case .hrtime(let v): u64(UInt64(bitPattern: v))
        case .double(let v): u64(v.bitPattern)
        case .string(let s): string(s)
        case .byteArray(let a): opaque(a)
        case .int8Array(let a): words(a) { Int32($0) }
        case .uint8Array(let a): words(a) { Int32(Int8(bitPattern: $0)) }
        case .int16Array(let a): words(a) { Int32($0) }
        case .uint16Array(let a): words(a) { Int32(bitPattern: UInt32($0)) }
        case .int32Array(let a): words(a) { $0 }
        case .uint32Array(let a): words(a) { Int32(bitPattern: $0) }
        case .booleanArray(let a): words(a) { $0 ? 1 : 0 }
        case .int64Array(let a):
            if !a.isEmpty { u32(UInt32(a.count)) }
            for v in a { u64(UInt64(bitPattern: v)) }
        case .uint64Array(let a):
            if !a.isEmpty { u32(UInt32(a.count)) }
            for v in a { u64(v) }
        case .stringArray(let a): for s in a { string(s) }
        case .nvlist, .nvlistArray: break
        }
        return value.hasCountWord && value.elementCount == 0 ? 4 : 0
    }

    private mutating func words<T>(_ a: [T], _ convert: (T) -> Int32) {
        if !a.isEmpty { u32(UInt32(a.count)) }
        for v in a { i32(convert(v)) }
    }
}

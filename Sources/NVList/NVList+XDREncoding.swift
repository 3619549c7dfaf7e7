extension NVList {
    /// Packs the list as an XDR stream (`nvlist_pack(..., NV_ENCODE_XDR)`): the 4-byte header, then the body.
    ///
    /// The output is byte for byte what libnvpair writes for the same list, sizes included, so a list decoded
    /// from a label re-encodes to the identical bytes.
    ///
    /// - Parameter hostByteOrder: recorded in the header; use the order of the stream you decoded.
    public func encodeXDR(hostByteOrder: NVByteOrder = .little) -> [UInt8] {
        // The size is known up front, so the stream is written straight into an array of exactly that size.
        // libnvpair sizes its buffer by the sizes it computes, which count a word for each empty array that
        // is never written; that unwritten tail stays zero.
        let size = encodedSize
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initializedCount in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            var w = XDRWriter(raw)
            w.u32(hostByteOrder == .little ? 0x0101_0000 : 0x0100_0000)  // NV_ENCODE_XDR, host order, 2 reserved
            let slack = w.writeBody(self)
            precondition(w.position + slack == size, "encoded \(w.position) + \(slack) bytes, sized \(size)")
            initializedCount = size
        }
    }
}

/// A forward-only writer of big-endian XDR words into a buffer sized by ``NVList/encodedSize``. Every write
/// is bounds-checked; running out of room would mean the size computation and the writer disagree, a bug.
struct XDRWriter {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var position = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    @inline(__always) private func reserve(_ count: Int) {
        precondition(count <= buffer.count - position, "XDR writer overran its \(buffer.count)-byte buffer")
    }

    @inline(__always) mutating func u32(_ v: UInt32) {
        reserve(4)
        buffer.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt32.self)
        position += 4
    }

    @inline(__always) mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }

    @inline(__always) mutating func u64(_ v: UInt64) {
        reserve(8)
        buffer.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt64.self)
        position += 8
    }

    /// Overwrites 8 bytes at `offset`, already written (a pair's two size words).
    @inline(__always) mutating func patchU64(_ v: UInt64, at offset: Int) {
        precondition(offset >= 0 && offset + 8 <= position, "patch outside the written stream")
        buffer.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Writes bytes and zero padding to the next multiple of 4 (the buffer starts zeroed).
    mutating func opaque(_ bytes: UnsafeRawBufferPointer) {
        let padded = align4(bytes.count)
        reserve(padded)
        if let base = bytes.baseAddress, !bytes.isEmpty {
            (buffer.baseAddress! + position).copyMemory(from: base, byteCount: bytes.count)
        }
        position += padded
    }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u32(UInt32(utf8.count))
            opaque(UnsafeRawBufferPointer(utf8))
        }
    }

    mutating func string(_ s: NVString) {
        s.withBytes { bytes in
            u32(UInt32(bytes.count))
            opaque(bytes)
        }
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
        let start = position
        u64(0)  // encode_size and decode_size, patched below
        string(pair.name)
        i32(pair.value.type.rawValue)
        i32(Int32(pair.value.elementCount))
        let slack = writeValue(pair.value)
        let encodeSize = position - start + slack
        patchU64((UInt64(UInt32(encodeSize)) << 32) | UInt64(UInt32(pair.decodedSize)), at: start)
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
        case .byteArray(let a): a.withUnsafeBytes { opaque($0) }
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

/// A forward-only, bounds-checked reader of big-endian XDR words over a byte array.
struct XDRReader {
    let bytes: [UInt8]
    /// The index in `bytes` of the stream's first byte: offsets (``position``, those in errors) count from it.
    let base: Int
    /// Where the next read starts, as an index in `bytes`.
    private var cursor: Int
    /// Where the next read starts, as a byte offset in the stream.
    var position: Int { cursor - base }
    /// The index in `bytes` where the stream ends.
    let end: Int
    /// Stream bytes of strings after a NUL inside them, which libnvpair reads past but does not count (its C
    /// string ends at the NUL): the re-encoded list is that much shorter.
    private(set) var hiddenBytes = 0

    /// A reader of the stream held by `bytes[base..<end]`, starting at the index `start`.
    init(_ bytes: [UInt8], base: Int = 0, from start: Int, to end: Int) {
        self.bytes = bytes
        self.base = base
        self.cursor = start
        self.end = end
    }

    var remaining: Int { end - cursor }

    @inline(__always)
    mutating func readUInt32(_ what: @autoclosure () -> String, context: @autoclosure () -> String)
        throws(NVListError) -> UInt32
    {
        guard remaining >= 4 else {
            throw NVListError(.truncated, offset: position, context: context(),
                              detail: "stream ends inside \(what()) (4 bytes needed, \(remaining) left)")
        }
        var v: UInt32 = 0
        bytes.withUnsafeBufferPointer { p in
            v = UInt32(bigEndian: UnsafeRawPointer(p.baseAddress! + cursor).loadUnaligned(as: UInt32.self))
        }
        cursor += 4
        return v
    }

    @inline(__always)
    mutating func readInt32(_ what: @autoclosure () -> String, context: @autoclosure () -> String)
        throws(NVListError) -> Int32
    {
        Int32(bitPattern: try readUInt32(what(), context: context()))
    }

    @inline(__always)
    mutating func readUInt64(_ what: @autoclosure () -> String, context: @autoclosure () -> String)
        throws(NVListError) -> UInt64
    {
        guard remaining >= 8 else {
            throw NVListError(.truncated, offset: position, context: context(),
                              detail: "stream ends inside \(what()) (8 bytes needed, \(remaining) left)")
        }
        var v: UInt64 = 0
        bytes.withUnsafeBufferPointer { p in
            v = UInt64(bigEndian: UnsafeRawPointer(p.baseAddress! + cursor).loadUnaligned(as: UInt64.self))
        }
        cursor += 8
        return v
    }

    /// Reads `count` bytes and skips the XDR padding to the next multiple of 4.
    mutating func readOpaque(count: Int, _ what: @autoclosure () -> String, context: @autoclosure () -> String)
        throws(NVListError) -> ArraySlice<UInt8>
    {
        let padded = (count &+ 3) & ~3
        guard count >= 0, padded >= count, remaining >= padded else {
            throw NVListError(.truncated, offset: position, context: context(),
                              detail: "stream ends inside \(what()) (\(count) bytes needed, \(remaining) left)")
        }
        let slice = bytes[cursor..<(cursor + count)]
        cursor += padded
        return slice
    }

    /// Reads an XDR string (`uint32` length, bytes, padding): any bytes but NUL.
    mutating func readString(_ what: @autoclosure () -> String, context: @autoclosure () -> String)
        throws(NVListError) -> NVString
    {
        let at = position
        let length = try readUInt32("the length of \(what())", context: context())
        guard length <= remaining else {
            throw NVListError(.sizeMismatch, offset: at, context: context(),
                              detail: "\(what()) claims \(length) bytes but only \(remaining) remain")
        }
        let raw = try readOpaque(count: Int(length), what(), context: context())
        // libnvpair keeps a string as a C string: a NUL inside ends it, and the bytes after it are read past
        // but are not part of the value. Whether libnvpair accepts the pair then depends on decode_size, which
        // it checks against the length up to the NUL; the caller does the same.
        let (nul, ascii) = Self.prefixScan(raw)
        let value = nul.map { raw[raw.startIndex..<(raw.startIndex + $0)] } ?? raw
        if let nul { hiddenBytes += align4(raw.count) - align4(nul) }
        return value.withUnsafeBufferPointer { NVString(checkedBytes: $0, ascii: ascii) }
    }

    /// The index of the first NUL, if any, and whether the bytes before it are all ASCII.
    static func prefixScan(_ raw: ArraySlice<UInt8>) -> (nul: Int?, ascii: Bool) {
        raw.withUnsafeBufferPointer { buffer -> (Int?, Bool) in
            var high: UInt8 = 0
            for (i, byte) in buffer.enumerated() {
                if byte == 0 { return (i, high < 0x80) }
                high |= byte
            }
            return (nil, high < 0x80)
        }
    }

    /// Throws when `raw` holds a NUL byte; otherwise tells whether it is all ASCII.
    static func scan(_ raw: ArraySlice<UInt8>, at offset: Int, _ what: @autoclosure () -> String,
                     context: @autoclosure () -> String) throws(NVListError) -> Bool
    {
        // One pass finds a NUL and tells whether the bytes are ASCII, which nearly every string ZFS writes is;
        // ASCII needs no UTF-8 validation. (The generic `String(validating:as:)` over a slice also goes through
        // runtime metadata lookups, which made it the decoder's largest cost.)
        let (nul, ascii) = raw.withUnsafeBufferPointer { buffer -> (Int?, Bool) in
            var high: UInt8 = 0
            for (i, byte) in buffer.enumerated() {
                if byte == 0 { return (i, false) }
                high |= byte
            }
            return (nil, high < 0x80)
        }
        if let nul {
            throw NVListError(.badString, offset: offset + nul, context: context(),
                              detail: "\(what()) contains a NUL byte")
        }
        return ascii
    }

    /// Reads a pair name: bytes without NUL that must be valid UTF-8.
    static func string(_ raw: ArraySlice<UInt8>, at offset: Int, _ what: @autoclosure () -> String,
                       context: @autoclosure () -> String) throws(NVListError) -> String
    {
        let ascii = try scan(raw, at: offset, what(), context: context())
        let string = raw.withUnsafeBufferPointer { buffer in
            ascii ? String(decoding: buffer, as: UTF8.self) : String(validating: buffer, as: UTF8.self)
        }
        guard let string else {
            throw NVListError(.badString, offset: offset, context: context(), detail: "\(what()) is not valid UTF-8")
        }
        return string
    }
}

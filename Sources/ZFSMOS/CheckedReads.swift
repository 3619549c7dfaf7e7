import ZFSChecksum

// Checked little helpers over `[UInt8]`: every read from disk bytes goes through these, so an offset or
// length from disk can never trap. Each returns `nil` (or throws `.malformed`) when the range is outside.

extension [UInt8] {
    /// The `UInt64` at `offset` in `order`, or `nil` when 8 bytes are not there.
    func u64(at offset: Int, _ order: ByteOrder) -> UInt64? {
        guard offset >= 0, offset <= count - 8 else { return nil }
        return loadUInt64(at: offset, order)
    }

    func u32(at offset: Int, _ order: ByteOrder) -> UInt32? {
        guard offset >= 0, offset <= count - 4 else { return nil }
        var v: UInt32 = 0
        withUnsafeBytes { v = $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
        return order == .little ? UInt32(littleEndian: v) : UInt32(bigEndian: v)
    }

    func u16(at offset: Int, _ order: ByteOrder) -> UInt16? {
        guard offset >= 0, offset <= count - 2 else { return nil }
        let a = UInt16(self[offset]), b = UInt16(self[offset + 1])
        return order == .little ? a | b << 8 : a << 8 | b
    }

    func u8(at offset: Int) -> UInt8? {
        guard offset >= 0, offset < count else { return nil }
        return self[offset]
    }

    /// `count` bytes at `offset`, or `nil` when they are not all there.
    func slice(_ offset: Int, _ length: Int) -> [UInt8]? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        return Array(self[offset..<(offset + length)])
    }
}

/// A `UInt64` from disk as an `Int`, or `nil` when it does not fit.
func intValue(_ v: UInt64) -> Int? { v <= UInt64(Int.max) ? Int(v) : nil }

func hex(_ v: UInt64) -> String { String(v, radix: 16) }

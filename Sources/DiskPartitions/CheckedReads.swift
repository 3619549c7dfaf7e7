// Bounds-checked little-endian reads from a buffer read off the image, and overflow-checked arithmetic on values
// that came from disk. Every failure names the absolute byte offset.

/// A buffer read from the image at `base`; every read is bounds-checked and little-endian.
struct LittleEndianBytes {
    let bytes: [UInt8]
    /// Absolute byte offset of `bytes[0]` in the image.
    let base: UInt64
    /// What the buffer holds, for error messages.
    let what: String

    func u8(_ offset: Int) throws -> UInt8 {
        guard offset >= 0, offset < bytes.count else { throw truncated(offset, 1) }
        return bytes[offset]
    }

    func u16(_ offset: Int) throws -> UInt16 {
        UInt16(truncatingIfNeeded: try unsigned(offset, width: 2))
    }

    func u32(_ offset: Int) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try unsigned(offset, width: 4))
    }

    func u64(_ offset: Int) throws -> UInt64 {
        try unsigned(offset, width: 8)
    }

    func slice(_ offset: Int, count: Int) throws -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw truncated(offset, count)
        }
        return bytes[offset..<(offset + count)]
    }

    /// The absolute image offset of `offset` in this buffer (saturating; used only in messages).
    func at(_ offset: Int) -> UInt64 {
        let (sum, overflow) = base.addingReportingOverflow(UInt64(max(offset, 0)))
        return overflow ? UInt64.max : sum
    }

    private func unsigned(_ offset: Int, width: Int) throws -> UInt64 {
        guard offset >= 0, offset <= bytes.count - width else { throw truncated(offset, width) }
        var value: UInt64 = 0
        for index in 0..<width {
            value |= UInt64(bytes[offset + index]) << (8 * UInt64(index))
        }
        return value
    }

    private func truncated(_ offset: Int, _ width: Int) -> PartitionTableError {
        PartitionTableError(
            .outOfBounds, at: at(offset), "\(what) is too short for a \(width)-byte field at offset \(offset)")
    }
}

/// Overflow-checked arithmetic for sizes and offsets read from disk.
enum Checked {
    static func multiply(_ a: UInt64, _ b: UInt64, at offset: UInt64, _ what: @autoclosure () -> String) throws
        -> UInt64
    {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else {
            throw PartitionTableError(.overflow, at: offset, "\(what()) overflows 64 bits (\(a) × \(b))")
        }
        return product
    }

    static func add(_ a: UInt64, _ b: UInt64, at offset: UInt64, _ what: @autoclosure () -> String) throws -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else {
            throw PartitionTableError(.overflow, at: offset, "\(what()) overflows 64 bits (\(a) + \(b))")
        }
        return sum
    }
}

extension UInt64 {
    var hex: String { "0x" + String(self, radix: 16) }
}

extension UInt32 {
    var hex: String { "0x" + String(self, radix: 16) }
}

extension UInt16 {
    var hex: String { "0x" + String(self, radix: 16) }
}

extension UInt8 {
    var hex2: String {
        let digits = String(self, radix: 16)
        return "0x" + (digits.count == 1 ? "0" + digits : digits)
    }
}

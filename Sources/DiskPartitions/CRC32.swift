// CRC-32 as used by the UEFI GPT header and entry array: the IEEE 802.3 polynomial, reflected (0xEDB88320),
// initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF. "123456789" gives 0xCBF43926.

/// The 256-entry lookup table for the reflected polynomial 0xEDB8_8320, built once.
private let crc32Table: [UInt32] = (0..<256).map { (index: Int) -> UInt32 in
    var value = UInt32(index)
    for _ in 0..<8 {
        value = (value & 1) != 0 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1
    }
    return value
}

/// Computes the CRC-32 used by GPT headers and entry arrays.
///
/// - Parameter bytes: The bytes to check.
/// - Returns: The CRC-32 (IEEE, reflected) of `bytes`.
public func gptCRC32<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
    }
    return crc ^ 0xFFFF_FFFF
}

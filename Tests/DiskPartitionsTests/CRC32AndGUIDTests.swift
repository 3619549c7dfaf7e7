import DiskPartitions
import Testing

@Suite struct CRC32AndGUIDTests {
    @Test func crc32KnownAnswers() {
        #expect(gptCRC32([UInt8]()) == 0)
        #expect(gptCRC32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(gptCRC32(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        #expect(gptCRC32([UInt8](repeating: 0, count: 16384)) == 0xAB54_D286)
    }

    @Test func guidTextRoundTripsThroughMixedEndianBytes() throws {
        let guid = try #require(GUID("6A898CC3-1DD2-11B2-99A6-080020736631"))
        #expect(
            guid.bytes == [
                0xC3, 0x8C, 0x89, 0x6A, 0xD2, 0x1D, 0xB2, 0x11, 0x99, 0xA6, 0x08, 0x00, 0x20, 0x73, 0x66, 0x31,
            ])
        #expect(guid.description == "6A898CC3-1DD2-11B2-99A6-080020736631")
        #expect(GUID("6a898cc3-1dd2-11b2-99a6-080020736631") == guid)
        #expect(guid == .illumosUsr)
        #expect(guid.typeName == "illumos usr (ZFS)")
        #expect(guid.isZFSDataType)
    }

    @Test(arguments: [
        "", "6A898CC3", "6A898CC3-1DD2-11B2-99A6-08002073663", "6A898CC3-1DD2-11B2-99A6-0800207366311",
        "6A898CC3-1DD2-11B2-99A6-08002073663G", "6A898CC31DD2-11B2-99A6-080020736631",
        "é6A898C3-1DD2-11B2-99A6-080020736631",
    ])
    func malformedGUIDTextIsRejected(text: String) {
        #expect(GUID(text) == nil)
    }

    @Test func guidFromBytesNeedsSixteen() {
        #expect(GUID(onDisk: [UInt8](repeating: 1, count: 15)) == nil)
        #expect(GUID(onDisk: [UInt8](repeating: 0, count: 16))?.isZero == true)
    }
}

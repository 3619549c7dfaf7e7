import Testing
import ZFSChecksum

@Suite struct EmbeddedChecksumTests {
    static func block(_ size: Int, seed: UInt8) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    @Test(arguments: [ByteOrder.little, .big])
    func sealedBlocksVerifyAtTheirOffsetOnly(order: ByteOrder) {
        var b = Self.block(1024, seed: 7)
        EmbeddedChecksum.seal(&b, offset: 0x20400, order: order)
        #expect(EmbeddedChecksum.byteOrder(of: b) == order)
        #expect(EmbeddedChecksum.verify(b, offset: 0x20400) == .valid(order))
        // The verifier is the block's own offset: the same bytes elsewhere do not verify.
        #expect(!EmbeddedChecksum.verify(b, offset: 0x20800).isValid)
        b[3] ^= 1
        #expect(!EmbeddedChecksum.verify(b, offset: 0x20400).isValid)
    }

    @Test("a block checked where it lies inside a larger buffer gets the verdict of its own copy", arguments: [ByteOrder.little, .big])
    func verifyInPlace(order: ByteOrder) {
        var block = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        EmbeddedChecksum.seal(&block, offset: 0x4000, order: order)
        let buffer = [UInt8](repeating: 0x77, count: 100) + block + [1, 2, 3]
        buffer.withUnsafeBytes { raw in
            let inPlace = UnsafeRawBufferPointer(rebasing: raw[100..<(100 + block.count)])
            #expect(EmbeddedChecksum.verify(inPlace, offset: 0x4000) == .valid(order))
            #expect(EmbeddedChecksum.verify(inPlace, offset: 0x4200) == EmbeddedChecksum.verify(block, offset: 0x4200))
            #expect(EmbeddedChecksum.byteOrder(of: inPlace) == order)
            #expect(zfsSHA256(inPlace) == zfsSHA256(block))
            #expect(!isAllZero(inPlace))
            #expect(isAllZero(UnsafeRawBufferPointer(rebasing: raw[0..<0])))
        }
        let zeros = [UInt8](repeating: 0, count: 4099)
        zeros.withUnsafeBytes { #expect(isAllZero($0) && EmbeddedChecksum.verify($0, offset: 0) == .noMagic) }
    }

    @Test("one block sealed at several offsets at once equals sealing a copy at each", arguments: [ByteOrder.little, .big])
    func sealedAtSeveralOffsets(order: ByteOrder) {
        let block = Self.block(114_688, seed: 9)
        let offsets: [UInt64] = [0x4000, 0x44000, 0x3FC4000, 0x3FE4000]
        let together = EmbeddedChecksum.sealed(block, offsets: offsets, order: order)
        #expect(together.count == offsets.count)
        for (offset, area) in zip(offsets, together) {
            var alone = block
            EmbeddedChecksum.seal(&alone, offset: offset, order: order)
            #expect(area == alone)
            #expect(EmbeddedChecksum.verify(area, offset: offset) == .valid(order))
            #expect(EmbeddedChecksum.storedChecksum(of: area, order: order) == EmbeddedChecksum.compute(area, offset: offset, order: order))
        }
        let sums = together[0].withUnsafeBytes { EmbeddedChecksum.compute($0, offsets: offsets, order: order) }
        #expect(sums == offsets.map { EmbeddedChecksum.compute(together[0], offset: $0, order: order) })
        #expect(EmbeddedChecksum.sealed(block, offsets: [], order: order).isEmpty)
    }

    @Test func magicIsWrittenInTheBlocksOrder() {
        var le = [UInt8](repeating: 0, count: 64)
        EmbeddedChecksum.seal(&le, offset: 0, order: .little)
        #expect(Array(le[24..<32]) == [0x11, 0x7a, 0x0c, 0xb1, 0x7a, 0xda, 0x10, 0x02])
        var be = [UInt8](repeating: 0, count: 64)
        EmbeddedChecksum.seal(&be, offset: 0, order: .big)
        #expect(Array(be[24..<32]) == [0x02, 0x10, 0xda, 0x7a, 0xb1, 0x0c, 0x7a, 0x11])
    }

    /// On a big-endian block the stored bytes are the SHA-256 digest verbatim; on a little-endian one each
    /// 8-byte group is reversed (zfs-on-disk.md §2).
    @Test func digestWordsAreStoredInTheBlocksOrder() {
        var le = Self.block(512, seed: 1), be = le
        EmbeddedChecksum.seal(&le, offset: 0x4000, order: .little)
        EmbeddedChecksum.seal(&be, offset: 0x4000, order: .big)
        // Big-endian: the stored tail is the digest of the block with the verifier in place, verbatim.
        var probe = be
        probe.replaceSubrange(480..<512, with: [0, 0, 0, 0, 0, 0, 0x40, 0] + [UInt8](repeating: 0, count: 24))
        let digest = zfsSHA256(probe)
        let w = [digest.words.0, digest.words.1, digest.words.2, digest.words.3]
        #expect(Array(be[480..<512]) == w.flatMap { v in withUnsafeBytes(of: v.bigEndian) { Array($0) } })
        // Little-endian: the same words, each stored little-endian (the 8-byte groups appear reversed).
        var probeLE = le
        probeLE.replaceSubrange(480..<512, with: [0, 0x40, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 24))
        let d2 = zfsSHA256(probeLE)
        let w2 = [d2.words.0, d2.words.1, d2.words.2, d2.words.3]
        #expect(Array(le[480..<512]) == w2.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } })
        #expect(EmbeddedChecksum.verify(le, offset: 0x4000) == .valid(.little))
        #expect(EmbeddedChecksum.verify(be, offset: 0x4000) == .valid(.big))
    }

    @Test func emptyBlockHasNoMagic() {
        #expect(EmbeddedChecksum.verify([UInt8](repeating: 0, count: 1024), offset: 0) == .noMagic)
        #expect(EmbeddedChecksum.verify([1, 2, 3], offset: 0) == .noMagic)
    }

    @Test func sha256IsTheStandardDigest() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        let c = zfsSHA256(Array("abc".utf8))
        #expect(c == Checksum256(0xba78_16bf_8f01_cfea, 0x4141_40de_5dae_2223, 0xb003_61a3_9617_7a9c, 0xb410_ff61_f200_15ad))
    }

    @Test func fletcherSums() {
        // Words 1, 2, 3 (little-endian): a = 6, b = 1+3+6 = 10, c = 1+4+10 = 15, d = 1+5+15 = 21.
        let bytes: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
        #expect(fletcher4(bytes, order: .little) == Checksum256(6, 10, 15, 20 + 1))
        #expect(fletcher4([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3], order: .big) == Checksum256(6, 10, 15, 21))
        let pairs: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]
        // a0 = 1+3, a1 = 2+4, b0 = 1+4, b1 = 2+6
        #expect(fletcher2(pairs, order: .little) == Checksum256(4, 6, 5, 8))
    }
}

import Testing
import ZFSChecksum
@testable import ZFSMOS

private func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

/// The 512 bytes the gzip vectors compress: the text 12 times, then zeros.
private let gzipPlain: [UInt8] = Array(String(repeating: "zlabel reads the MOS. ", count: 12).utf8)
    + [UInt8](repeating: 0, count: 512 - 264)

@Suite struct DecompressionTests {
    // Made with python3: zlib.compress(plain, level) for levels 1, 6 and 9.
    @Test(arguments: [
        (5 as UInt8, "7801abca494c4acd51284a4d4c295628c94855f0f50fd653a81a71a20c23140000757458d5"),
        (10, "789cabca494c4acd51284a4d4c295628c94855f0f50fd653a81a71a20c23140000757458d5"),
        (13, "78daabca494c4acd51284a4d4c295628c94855f0f50fd653a81a71a20c23140000757458d5"),
    ])
    func gzipInflatesPythonZlibStreams(function: UInt8, hex: String) throws {
        var stored = bytes(hex: hex)
        stored += [UInt8](repeating: 0, count: 512 - stored.count)  // the block is padded to its psize
        #expect(try Decompression.decompress(stored, function: function, logicalSize: 512) == gzipPlain)
    }

    @Test func gzipRejectsCorruptStream() {
        var stored = bytes(hex: "789cabca494c4acd51284a4d4c295628c94855f0f50fd653a81a71a20c23140000757458d5")
        stored[20] ^= 0xFF
        #expect(throws: MOSError.self) { try Decompression.gzip(stored, logicalSize: 512) }
        #expect(throws: MOSError.self) { try Decompression.gzip(Array(stored.prefix(10)), logicalSize: 512) }
    }

    @Test func lz4LiteralsAndOverlappingMatch() throws {
        // token 0x34: 3 literals "abc", match length 4+4=8 at offset 3 (overlaps its own output); then a last
        // literal-only sequence "Z".
        let block: [UInt8] = [0x34, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x5A]
        let stored = [0, 0, 0, UInt8(block.count)] + block + [0, 0, 0]
        let out = try Decompression.lz4(stored, logicalSize: 16)
        #expect(out == Array("abcabcabcabZ".utf8) + [0, 0, 0, 0])
    }

    @Test func lz4LongLiteralRun() throws {
        // 15 + 255 + 10 = 280 literals in one sequence.
        let literals = (0..<280).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let block: [UInt8] = [0xF0, 255, 10] + literals
        let stored = [0, 0, 0x01, 0x1B] + block
        #expect(block.count == 0x11B)
        #expect(try Decompression.lz4(stored, logicalSize: 280) == literals)
    }

    @Test func lz4RejectsBadInput() {
        // offset 0
        #expect(throws: MOSError.self) { try Decompression.lz4Block([0x14, 0x61, 0x00, 0x00], logicalSize: 64) }
        // offset past the output
        #expect(throws: MOSError.self) { try Decompression.lz4Block([0x14, 0x61, 0x09, 0x00], logicalSize: 64) }
        // output overrun
        #expect(throws: MOSError.self) { try Decompression.lz4Block([0x1F, 0x61, 0x01, 0x00, 200], logicalSize: 64) }
        // header longer than the block
        #expect(throws: MOSError.self) { try Decompression.lz4([0, 0, 1, 0, 0x10], logicalSize: 64) }
        // truncated literal run
        #expect(throws: MOSError.self) { try Decompression.lz4Block([0x50, 0x61], logicalSize: 64) }
    }

    @Test func lzjbCopymapLiteralsAndMatch() throws {
        // copymap 0b0000_1000: items 0-2 literals "xyz", item 3 a match of (0>>2)+3 = 3 bytes at distance 3,
        // items 4-7 literals "1234".
        let stored: [UInt8] = [0x08, 0x78, 0x79, 0x7A, 0x00, 0x03, 0x31, 0x32, 0x33, 0x34]
        #expect(try Decompression.lzjb(stored, logicalSize: 10) == Array("xyzxyz1234".utf8))
        // A longer match: (b0 >> 2) + 3 = 7 bytes at distance 1 repeats the last byte.
        let run: [UInt8] = [0x02, 0x41, 0x10, 0x01]
        #expect(try Decompression.lzjb(run, logicalSize: 8) == Array("AAAAAAAA".utf8))
    }

    @Test func lzjbRejectsBadInput() {
        // match reaching before the start of the output
        #expect(throws: MOSError.self) { try Decompression.lzjb([0x01, 0x00, 0x05], logicalSize: 8) }
        // input ends before the output is full
        #expect(throws: MOSError.self) { try Decompression.lzjb([0x00, 0x41], logicalSize: 8) }
    }

    @Test func zleLiteralsAndZeroRuns() throws {
        // L=2: 3 literals; L=64+4: 5 zeros... (L+1-64 = 5 for L = 68); L=0: 1 literal.
        let stored: [UInt8] = [2, 1, 2, 3, 68, 0, 9]
        #expect(try Decompression.zle(stored, logicalSize: 9) == [1, 2, 3, 0, 0, 0, 0, 0, 9])
        #expect(throws: MOSError.self) { try Decompression.zle(stored, logicalSize: 12) }  // ends short
        #expect(throws: MOSError.self) { try Decompression.zle([10, 1], logicalSize: 11) }  // literal past input
        #expect(throws: MOSError.self) { try Decompression.zle([200], logicalSize: 4) }  // zeros past output
    }

    @Test func offCopiesAndOthersAreRefused() throws {
        #expect(try Decompression.decompress([1, 2, 3, 4], function: 2, logicalSize: 2) == [1, 2])
        for function: UInt8 in [0, 1, 4, 16, 17, 127] {
            let error = #expect(throws: MOSError.self) {
                try Decompression.decompress([0, 0, 0, 0], function: function, logicalSize: 4)
            }
            #expect(error?.code == .unsupported)
        }
        let zstd = #expect(throws: MOSError.self) { try Decompression.decompress([], function: 16, logicalSize: 4) }
        #expect(zstd?.message.contains("zstd") == true)
    }
}

@Suite struct BlockChecksumTests {
    /// Swaps each `width`-byte word of `data`.
    private func swapped(_ data: [UInt8], width: Int) -> [UInt8] {
        stride(from: 0, to: data.count, by: width).flatMap { data[$0..<($0 + width)].reversed() }
    }

    private let sample: [UInt8] = (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    @Test func fletcher4IsTheSameSumInEitherByteOrder() throws {
        let little = try BlockChecksum.compute(sample, function: 7, order: .little)
        let big = try BlockChecksum.compute(swapped(sample, width: 4), function: 7, order: .big)
        #expect(little == big)
        #expect(little != (try BlockChecksum.compute(sample, function: 7, order: .big)))
        // a = sum of the words: a small vector checked by hand.
        let words: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0]
        #expect(try BlockChecksum.compute(words, function: 7, order: .little) == Checksum256(3, 4, 5, 6))
    }

    @Test func fletcher2IsTheSameSumInEitherByteOrder() throws {
        let little = try BlockChecksum.compute(sample, function: 6, order: .little)
        #expect(little == (try BlockChecksum.compute(swapped(sample, width: 8), function: 6, order: .big)))
        var pair = [UInt8](repeating: 0, count: 32)
        pair[0] = 1; pair[8] = 2; pair[16] = 3; pair[24] = 4
        // a0 = 1+3, a1 = 2+4, b0 = 1 + 4, b1 = 2 + 6
        #expect(try BlockChecksum.compute(pair, function: 6, order: .little) == Checksum256(4, 6, 5, 8))
    }

    @Test func sha256IsTheDigestAsBigEndianWords() throws {
        let abc = try BlockChecksum.compute(Array("abc".utf8), function: 8, order: .big)
        #expect(abc == Checksum256(0xba78_16bf_8f01_cfea, 0x4141_40de_5dae_2223, 0xb003_61a3_9617_7a9c, 0xb410_ff61_f200_15ad))
        #expect(abc == (try BlockChecksum.compute(Array("abc".utf8), function: 8, order: .little)))
    }

    @Test(arguments: [0 as UInt8, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14, 200])
    func otherFunctionsAreRefused(function: UInt8) {
        let error = #expect(throws: MOSError.self) { try BlockChecksum.compute([], function: function, order: .little) }
        #expect(error?.code == .unsupported)
    }
}

// Block pointers (`blkptr_t`, include/sys/spa.h)
//
// A block pointer is 128 bytes: sixteen 64-bit words in the byte order of the block that holds it (for
// `ub_rootbp`, the uberblock's). It names up to three copies of a block (DVAs), the block's sizes,
// compression, checksum function, type, level and byte order, and its checksum:
//
//     w0..w5   dva[3]      each: vdev(24) grid(8) asize(24, sectors) | gang(1) offset(63, sectors)
//     w6       prop        B(1) D(1) X(1) level(5) type(8) cksum(8) E(1) comp(7) psize(16) lsize(16)
//     w7..w8   pad
//     w9       physical birth txg (0 = the logical one)
//     w10      logical birth txg
//     w11      fill count
//     w12..w15 checksum
//
// An *embedded* block pointer (E = 1) carries up to 112 bytes of (compressed) data in place of its DVAs,
// pad, physical birth, fill and checksum words; its sizes are then in bytes, and it has no checksum.
// A *hole* has an all-zero first DVA and names no data.

public import ZFSChecksum

/// One copy of a block on a top-level vdev (`dva_t`).
public struct DVA: Sendable, Hashable, CustomStringConvertible {
    /// The top-level vdev's id (`DVA_GET_VDEV`).
    public var vdev: UInt64
    /// Gang-block id bits (`DVA_GET_GRID`); unused by current ZFS.
    public var grid: UInt8
    /// Allocated size in bytes (`DVA_GET_ASIZE`).
    public var allocatedSize: UInt64
    /// Byte offset in the top-level vdev's allocatable space, after the 4 MiB label area (`DVA_GET_OFFSET`).
    public var offset: UInt64
    /// Whether the DVA points at a gang header rather than the data (`DVA_GET_GANG`).
    public var isGang: Bool

    /// Decodes a DVA from its two words.
    public init(word0: UInt64, word1: UInt64) {
        vdev = (word0 >> 32) & 0xFF_FFFF
        grid = UInt8((word0 >> 24) & 0xFF)
        allocatedSize = (word0 & 0xFF_FFFF) << 9
        offset = (word1 & ~(1 << 63)) << 9
        isGang = word1 >> 63 == 1
    }

    /// Whether the DVA is unused (`DVA_IS_VALID` false: an allocated size of 0).
    public var isEmpty: Bool { allocatedSize == 0 }

    /// `vdev:offset:asize` in hex, as `zdb` prints a DVA.
    public var description: String { "<\(vdev):\(hex(offset)):\(hex(allocatedSize))>" + (isGang ? " gang" : "") }
}

/// A decoded block pointer (`blkptr_t`).
public struct BlockPointer: Sendable, Hashable {
    /// The checksum functions this reader verifies (`enum zio_checksum`); others are refused.
    public enum ChecksumFunction: UInt8, Sendable {
        case fletcher2 = 6, fletcher4 = 7, sha256 = 8
    }

    /// `ZIO_CHECKSUM_*` names, for messages.
    public static func checksumName(_ v: UInt8) -> String {
        let names = ["inherit", "on", "off", "label", "gang_header", "zilog", "fletcher2", "fletcher4", "sha256",
                     "zilog2", "noparity", "sha512", "skein", "edonr", "blake3"]
        return Int(v) < names.count ? names[Int(v)] : "unknown (\(v))"
    }

    /// `ZIO_COMPRESS_*` names, for messages.
    public static func compressionName(_ v: UInt8) -> String {
        let names = ["inherit", "on", "off", "lzjb", "empty", "gzip-1", "gzip-2", "gzip-3", "gzip-4", "gzip-5",
                     "gzip-6", "gzip-7", "gzip-8", "gzip-9", "zle", "lz4", "zstd"]
        return Int(v) < names.count ? names[Int(v)] : "unknown (\(v))"
    }

    /// The sixteen words, in host order.
    public var words: [UInt64]

    /// Decodes the 16 words of a block pointer (already in host order).
    ///
    /// - Precondition: `words.count == 16`.
    public init(words: [UInt64]) {
        precondition(words.count == 16, "a block pointer is 16 words")
        self.words = words
    }

    /// Decodes the block pointer at `offset` in `bytes`, whose words are in `order`.
    ///
    /// - Throws: ``MOSError`` (`.malformed`) when 128 bytes are not there.
    public init(bytes: [UInt8], at offset: Int, order: ByteOrder) throws(MOSError) {
        var w: [UInt64] = []
        w.reserveCapacity(16)
        for i in 0..<16 {
            guard let v = bytes.u64(at: offset + i * 8, order) else {
                throw MOSError(.malformed, "a block pointer at byte \(offset) runs past the end of its \(bytes.count)-byte block")
            }
            w.append(v)
        }
        words = w
    }

    /// The three DVAs (some may be empty).
    public var dvas: [DVA] { (0..<3).map { DVA(word0: words[$0 * 2], word1: words[$0 * 2 + 1]) } }
    /// `blk_prop`.
    public var properties: UInt64 { words[6] }
    /// Whether the data is in the block pointer itself (`BP_IS_EMBEDDED`).
    public var isEmbedded: Bool { properties >> 39 & 1 == 1 }
    /// Whether the block pointer names no data (`BP_IS_HOLE`).
    public var isHole: Bool { !isEmbedded && words[0] == 0 && words[1] == 0 }
    /// Whether the first DVA points at a gang header (`BP_IS_GANG`).
    public var isGang: Bool { !isEmbedded && dvas[0].isGang }
    /// Logical size in bytes (`BP_GET_LSIZE`; `BPE_GET_LSIZE` when embedded).
    public var logicalSize: Int {
        isEmbedded ? Int(properties & 0x1FF_FFFF) + 1 : (Int(properties & 0xFFFF) + 1) << 9
    }
    /// Physical (stored) size in bytes (`BP_GET_PSIZE`; `BPE_GET_PSIZE` when embedded).
    public var physicalSize: Int {
        isEmbedded ? Int(properties >> 25 & 0x7F) + 1 : (Int(properties >> 16 & 0xFFFF) + 1) << 9
    }
    /// Compression function (`BP_GET_COMPRESS`, `enum zio_compress`).
    public var compression: UInt8 { UInt8(properties >> 32 & 0x7F) }
    /// Checksum function (`BP_GET_CHECKSUM`, `enum zio_checksum`); not meaningful when embedded.
    public var checksumFunction: UInt8 { UInt8(properties >> 40 & 0xFF) }
    /// Embedded payload type (`BPE_GET_ETYPE`): 0 is data.
    public var embeddedType: UInt8 { UInt8(properties >> 40 & 0xFF) }
    /// DMU object type of the block (`BP_GET_TYPE`).
    public var type: UInt8 { UInt8(properties >> 48 & 0xFF) }
    /// Indirection level (`BP_GET_LEVEL`).
    public var level: Int { Int(properties >> 56 & 0x1F) }
    /// Whether the block is encrypted or authenticated (`BP_USES_CRYPT`, the X bit).
    public var usesCrypt: Bool { properties >> 61 & 1 == 1 }
    /// Whether the block is deduplicated (`BP_GET_DEDUP`).
    public var isDedup: Bool { properties >> 62 & 1 == 1 }
    /// The byte order of the block's contents (`BP_GET_BYTEORDER`: 1 = little-endian).
    public var byteOrder: ByteOrder { properties >> 63 == 1 ? .little : .big }
    /// Physical birth txg (0 when it equals the logical one).
    public var physicalBirth: UInt64 { words[9] }
    /// Logical birth txg.
    public var logicalBirth: UInt64 { words[10] }
    /// Fill count.
    public var fill: UInt64 { words[11] }
    /// The stored checksum.
    public var checksum: Checksum256 { Checksum256(words[12], words[13], words[14], words[15]) }

    /// The payload of an embedded block pointer: ``physicalSize`` bytes taken from words 0–5, 7–9 and
    /// 11–15, low byte of each word first (`decode_embedded_bp_compressed`).
    public var embeddedPayload: [UInt8] {
        let payloadWords = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 14, 15].map { words[$0] }
        let n = min(physicalSize, payloadWords.count * 8)
        return (0..<n).map { i in UInt8(truncatingIfNeeded: payloadWords[i / 8] >> (UInt64(i % 8) * 8)) }
    }

    /// A one-line summary in `zdb`'s vocabulary, for messages.
    public var summary: String {
        if isEmbedded {
            return "EMBEDDED et=\(embeddedType) L\(level) type=\(type) \(Self.compressionName(compression)) size=\(hex(UInt64(logicalSize)))L/\(hex(UInt64(physicalSize)))P birth=\(logicalBirth)L"
        }
        if isHole { return "HOLE" }
        let d = dvas.enumerated().filter { !$0.element.isEmpty }.map { "DVA[\($0.offset)]=\($0.element)" }
        return d.joined(separator: " ")
            + " L\(level) type=\(type) \(Self.checksumName(checksumFunction)) \(Self.compressionName(compression))"
            + " \(byteOrder == .little ? "LE" : "BE") size=\(hex(UInt64(logicalSize)))L/\(hex(UInt64(physicalSize)))P"
            + " birth=\(logicalBirth)L cksum=\(checksum)"
    }
}

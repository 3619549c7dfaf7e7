// Checksums ZFS uses in the places zlabel reads: the SHA-256 "label" checksum embedded at the end of label
// nvlists, uberblock slots and the bootenv block (`zio_eck_t`, `ZIO_CHECKSUM_LABEL`), and fletcher2/4 for
// metadata blocks. Facts: `include/sys/zio.h`, `module/zfs/zio_checksum.c`, `module/zfs/sha2_zfs.c`,
// `module/zcommon/zfs_fletcher.c`.

import Crypto

/// A byte order, as ZFS records it: blocks are written in the writer's native order.
public enum ByteOrder: String, Sendable, Hashable, Codable {
    case little
    case big

    /// The order of this machine.
    public static var host: ByteOrder { 1.littleEndian == 1 ? .little : .big }
}

/// A 256-bit checksum as ZFS keeps it (`zio_cksum_t`): four 64-bit words.
public struct Checksum256: Sendable, Hashable, CustomStringConvertible {
    /// The four 64-bit words, in ZFS's order (`zc_word[0]` first).
    public var words: (UInt64, UInt64, UInt64, UInt64)

    /// Creates a checksum from its four words.
    public init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) { words = (w0, w1, w2, w3) }

    /// A SHA-256 digest (32 bytes) as ZFS keeps it: four big-endian words.
    init(digest d: UnsafeRawBufferPointer) {
        func word(_ at: Int) -> UInt64 { UInt64(bigEndian: d.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        self.init(word(0), word(8), word(16), word(24))
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into h: inout Hasher) {
        h.combine(words.0); h.combine(words.1); h.combine(words.2); h.combine(words.3)
    }

    /// The words as `zdb` prints them: four hex numbers joined by `:`.
    public var description: String {
        [words.0, words.1, words.2, words.3].map { String($0, radix: 16) }.joined(separator: ":")
    }
}

extension [UInt8] {
    // Shared with the other zlabel modules (`package`), not part of the public API.
    @inline(__always)
    package func loadUInt64(at offset: Int, _ order: ByteOrder) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeBytes { v = $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        return order == .little ? UInt64(littleEndian: v) : UInt64(bigEndian: v)
    }

    @inline(__always)
    package mutating func storeUInt64(_ value: UInt64, at offset: Int, _ order: ByteOrder) {
        let v = order == .little ? value.littleEndian : value.bigEndian
        withUnsafeMutableBytes { $0.storeBytes(of: v, toByteOffset: offset, as: UInt64.self) }
    }
}

/// The embedded checksum (`zio_eck_t`, 40 bytes) that ends a label nvlist area, an uberblock slot or the
/// bootenv block, and the SHA-256 it carries.
///
/// The stored checksum is the SHA-256 of the whole block computed while its 32 checksum bytes hold the
/// *verifier* `{offset, 0, 0, 0}`: the block's byte offset from the start of the leaf vdev
/// (`zio_checksum_label_verifier`). So the same bytes written at another offset do not verify. The magic
/// and the words are in the writer's byte order; the SHA-256 digest is taken as four big-endian words.
public enum EmbeddedChecksum {
    /// `ZEC_MAGIC`.
    public static let magic: UInt64 = 0x0210_da7a_b10c_7a11
    /// Size of `zio_eck_t`: the magic and four checksum words.
    public static let size = 40

    /// What a block's embedded checksum says.
    public enum Verdict: Sendable, Hashable {
        /// The checksum matches; the block was written in this byte order.
        case valid(ByteOrder)
        /// The magic is there but the checksum is not what the contents give.
        case mismatch(ByteOrder, stored: Checksum256, computed: Checksum256)
        /// Neither byte order of `ZEC_MAGIC` is at the tail: no embedded checksum here.
        case noMagic

        /// Whether the checksum matched.
        public var isValid: Bool { if case .valid = self { return true } else { return false } }
    }

    /// The byte order of the block's embedded checksum, from its magic, or `nil` if there is none.
    public static func byteOrder(of block: [UInt8]) -> ByteOrder? {
        block.withUnsafeBytes { byteOrder(of: $0) }
    }

    /// ``byteOrder(of:)-([UInt8])`` of a block in memory.
    public static func byteOrder(of block: UnsafeRawBufferPointer) -> ByteOrder? {
        guard block.count >= size else { return nil }
        let raw = UInt64(littleEndian: block.loadUnaligned(fromByteOffset: block.count - size, as: UInt64.self))
        if raw == magic { return .little }
        if raw == magic.byteSwapped { return .big }
        return nil
    }

    /// Checks the embedded checksum of `block` (the whole checksummed block, tail included).
    ///
    /// - Parameters:
    ///   - block: the checksummed block, its 40-byte tail included.
    ///   - offset: the block's byte offset from the start of the leaf vdev (the verifier).
    public static func verify(_ block: [UInt8], offset: UInt64) -> Verdict {
        block.withUnsafeBytes { verify($0, offset: offset) }
    }

    /// ``verify(_:offset:)-([UInt8],_)`` of a block in memory, such as a config area inside a label's buffer,
    /// without copying it out.
    public static func verify(_ block: UnsafeRawBufferPointer, offset: UInt64) -> Verdict {
        guard let order = byteOrder(of: block) else { return .noMagic }
        let stored = storedChecksum(of: block, order: order)
        let computed = compute(block, offset: offset, order: order)
        return stored == computed ? .valid(order) : .mismatch(order, stored: stored, computed: computed)
    }

    /// The checksum ZFS would store in `block` at `offset`, in `order` (the stored words are ignored).
    public static func compute(_ block: [UInt8], offset: UInt64, order: ByteOrder) -> Checksum256 {
        block.withUnsafeBytes { compute($0, offset: offset, order: order) }
    }

    /// ``compute(_:offset:order:)-([UInt8],_,_)`` of a block in memory.
    public static func compute(_ block: UnsafeRawBufferPointer, offset: UInt64, order: ByteOrder) -> Checksum256 {
        compute(block, offsets: [offset], order: order)[0]
    }

    /// The checksums ZFS would store in `block` at each of `offsets`, in `order`: what
    /// ``compute(_:offset:order:)-(UnsafeRawBufferPointer,_,_)`` gives for each, with the block's bytes hashed
    /// once. The verifier (the offset) is the last thing hashed, so the hash of everything before it is shared;
    /// the four config areas of a label edit are one block at four offsets.
    public static func compute(_ block: UnsafeRawBufferPointer, offsets: [UInt64], order: ByteOrder) -> [Checksum256] {
        precondition(block.count >= size, "a checksummed block holds at least its 40-byte tail")
        var body = SHA256()
        body.update(bufferPointer: UnsafeRawBufferPointer(rebasing: block[..<(block.count - 32)]))
        return offsets.map { offset in
            var verifier: (UInt64, UInt64, UInt64, UInt64) = (order == .little ? offset.littleEndian : offset.bigEndian, 0, 0, 0)
            var hasher = body  // a copy of the state after the body (swift-crypto copies its context on write)
            withUnsafeBytes(of: &verifier) { hasher.update(bufferPointer: $0) }
            return hasher.finalize().withUnsafeBytes(Checksum256.init(digest:))
        }
    }

    /// The checksum stored in the tail of `block`, read in `order` (whether it is right or not).
    public static func storedChecksum(of block: [UInt8], order: ByteOrder) -> Checksum256 {
        block.withUnsafeBytes { storedChecksum(of: $0, order: order) }
    }

    /// The stored checksum of a block in memory, read in `order`.
    static func storedChecksum(of block: UnsafeRawBufferPointer, order: ByteOrder) -> Checksum256 {
        precondition(block.count >= size, "a checksummed block holds at least its 40-byte tail")
        let tail = block.count - 32
        func word(_ at: Int) -> UInt64 {
            let v = block.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            return order == .little ? UInt64(littleEndian: v) : UInt64(bigEndian: v)
        }
        return Checksum256(word(tail), word(tail + 8), word(tail + 16), word(tail + 24))
    }

    /// ``seal(_:offset:order:)`` of copies of `block`, one per offset: the magic and each offset's checksum
    /// written into the tail of its copy, the block's bytes hashed once.
    public static func sealed(_ block: [UInt8], offsets: [UInt64], order: ByteOrder) -> [[UInt8]] {
        precondition(block.count >= size, "a checksummed block holds at least its 40-byte tail")
        var body = block
        body.storeUInt64(magic, at: body.count - size, order)
        let checksums = body.withUnsafeBytes { compute($0, offsets: offsets, order: order) }
        let tail = body.count - 32
        return checksums.map { c in
            var out = body
            out.storeUInt64(c.words.0, at: tail, order)
            out.storeUInt64(c.words.1, at: tail + 8, order)
            out.storeUInt64(c.words.2, at: tail + 16, order)
            out.storeUInt64(c.words.3, at: tail + 24, order)
            return out
        }
    }

    /// Writes the magic and a freshly computed checksum into the tail of `block`, in `order`.
    ///
    /// - Parameters:
    ///   - block: the whole checksummed block; its last 40 bytes are overwritten.
    ///   - offset: the block's byte offset from the start of the leaf vdev.
    ///   - order: the byte order to write in; keep the order the block was read in.
    public static func seal(_ block: inout [UInt8], offset: UInt64, order: ByteOrder) {
        precondition(block.count >= size, "a checksummed block holds at least its 40-byte tail")
        block.storeUInt64(magic, at: block.count - size, order)
        let c = compute(block, offset: offset, order: order)
        let tail = block.count - 32
        block.storeUInt64(c.words.0, at: tail, order)
        block.storeUInt64(c.words.1, at: tail + 8, order)
        block.storeUInt64(c.words.2, at: tail + 16, order)
        block.storeUInt64(c.words.3, at: tail + 24, order)
    }
}

/// Plain SHA-256 as ZFS stores it for `ZIO_CHECKSUM_SHA256` blocks: the digest as four big-endian words.
public func zfsSHA256(_ bytes: [UInt8]) -> Checksum256 {
    bytes.withUnsafeBytes { zfsSHA256($0) }
}

/// ``zfsSHA256(_:)-([UInt8])`` of bytes in memory.
public func zfsSHA256(_ bytes: UnsafeRawBufferPointer) -> Checksum256 {
    var hasher = SHA256()
    hasher.update(bufferPointer: bytes)
    return hasher.finalize().withUnsafeBytes(Checksum256.init(digest:))
}

/// Whether every byte of `bytes` is zero (eight at a time). Package-only: DiskContainers has a public function of
/// the same name, and a program importing both ZLabel (which re-exports this module) and DiskContainers would
/// find the two ambiguous.
package func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let words = bytes.count / 8
    var any: UInt64 = 0
    for i in 0..<words { any |= bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
    for i in (words * 8)..<bytes.count { any |= UInt64(bytes[i]) }
    return any == 0
}

/// Fletcher-4 over 32-bit words read in `order` (`fletcher_4_native` / `fletcher_4_byteswap`):
/// `a += w; b += a; c += b; d += c`, wrapping, over `bytes.count / 4` words.
public func fletcher4(_ bytes: [UInt8], order: ByteOrder) -> Checksum256 {
    var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0, d: UInt64 = 0
    bytes.withUnsafeBytes { raw in
        let n = raw.count / 4
        if order == .little {
            for i in 0..<n {
                a &+= UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                b &+= a; c &+= b; d &+= c
            }
        } else {
            for i in 0..<n {
                a &+= UInt64(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                b &+= a; c &+= b; d &+= c
            }
        }
    }
    return Checksum256(a, b, c, d)
}

/// Fletcher-2 over pairs of 64-bit words read in `order`: `a0 += w[2i]; a1 += w[2i+1]; b0 += a0; b1 += a1`.
public func fletcher2(_ bytes: [UInt8], order: ByteOrder) -> Checksum256 {
    var a0: UInt64 = 0, a1: UInt64 = 0, b0: UInt64 = 0, b1: UInt64 = 0
    bytes.withUnsafeBytes { raw in
        let n = raw.count / 16
        for i in 0..<n {
            var w0 = raw.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self)
            var w1 = raw.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self)
            if order == .little { w0 = UInt64(littleEndian: w0); w1 = UInt64(littleEndian: w1) } else {
                w0 = UInt64(bigEndian: w0); w1 = UInt64(bigEndian: w1)
            }
            a0 &+= w0; a1 &+= w1; b0 &+= a0; b1 &+= a1
        }
    }
    return Checksum256(a0, a1, b0, b1)
}

// SHA-256 of several messages at once. On x86-64 with the SHA extensions two or four messages are run through
// the compression function side by side (CSHA256), which on the machines measured hashes about 1.5 (two) or 1.8
// (four) times as many bytes per second as one message at a time; elsewhere each message goes to swift-crypto.
// The digests are the same either way (tests compare them with swift-crypto's over many lengths).

import CSHA256
import Crypto

/// SHA-256 digests of two or more messages, computed side by side where the CPU allows it.
public enum SHA256Lanes {
    /// Whether this CPU runs two or four messages side by side (x86-64 with SHA, SSSE3 and SSE4.1); when not,
    /// every function here hashes one message after the other with swift-crypto.
    public static let sideBySide: Bool = zlabel_sha256_available() != 0

    /// The SHA-256 digests (32 bytes each) of `first` and `second`, which may have any lengths.
    public static func hash(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> ([UInt8], [UInt8]) {
        hash(first, then: UnsafeRawBufferPointer(start: nil, count: 0), second, then: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// The SHA-256 digests of two messages that are each given in two parts, `first` followed by
    /// `firstSuffix` and `second` followed by `secondSuffix`, without joining the parts. A suffix holds at most
    /// 64 bytes (a ZFS embedded checksum's verifier, say, hashed after the block it ends).
    public static func hash(
        _ first: UnsafeRawBufferPointer, then firstSuffix: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer, then secondSuffix: UnsafeRawBufferPointer
    ) -> ([UInt8], [UInt8]) {
        precondition(firstSuffix.count <= 64 && secondSuffix.count <= 64, "a suffix holds at most 64 bytes")
        guard sideBySide else {
            func one(_ m: UnsafeRawBufferPointer, _ s: UnsafeRawBufferPointer) -> [UInt8] {
                var h = SHA256()
                h.update(bufferPointer: m)
                h.update(bufferPointer: s)
                return Array(h.finalize())
            }
            return (one(first, firstSuffix), one(second, secondSuffix))
        }
        var a = RunningState(), b = RunningState()
        let common = min(first.count, second.count) / 64
        if common > 0 {
            a.withWords { wa in
                b.withWords { wb in
                    zlabel_sha256_blocks_x2(
                        wa, first.baseAddress!.assumingMemoryBound(to: UInt8.self), wb,
                        second.baseAddress!.assumingMemoryBound(to: UInt8.self), common)
                }
            }
        }
        a.finish(first, from: common * 64, suffix: firstSuffix)
        b.finish(second, from: common * 64, suffix: secondSuffix)
        return (a.digest, b.digest)
    }

    /// The SHA-256 digests of `messages`, in their order: four at a time side by side, then two, then one.
    public static func hash(all messages: [UnsafeRawBufferPointer]) -> [[UInt8]] {
        var out = [[UInt8]](repeating: [], count: messages.count)
        var k = 0
        if sideBySide {
            while messages.count - k >= 4 {
                let four = hashFour(messages[k], messages[k + 1], messages[k + 2], messages[k + 3])
                out.replaceSubrange(k..<(k + 4), with: four)
                k += 4
            }
        }
        while messages.count - k >= 2 {
            (out[k], out[k + 1]) = hash(messages[k], messages[k + 1])
            k += 2
        }
        if k < messages.count { out[k] = hash(messages[k]) }
        return out
    }

    /// Four messages through the four-lane kernel for the whole blocks they have in common, then each finished
    /// alone.
    private static func hashFour(
        _ m0: UnsafeRawBufferPointer, _ m1: UnsafeRawBufferPointer, _ m2: UnsafeRawBufferPointer,
        _ m3: UnsafeRawBufferPointer
    ) -> [[UInt8]] {
        let messages = [m0, m1, m2, m3]
        let common = messages.map(\.count).min()! / 64
        var states = [RunningState](repeating: RunningState(), count: 4)
        if common > 0 {
            var words = [UInt32](repeating: 0, count: 32)
            words.withUnsafeMutableBufferPointer { w in
                for k in 0..<4 { states[k].withWords { (w.baseAddress! + 8 * k).update(from: $0, count: 8) } }
                func p(_ m: UnsafeRawBufferPointer) -> UnsafePointer<UInt8> {
                    UnsafePointer(m.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
                zlabel_sha256_blocks_x4(w.baseAddress!, p(m0), p(m1), p(m2), p(m3), common)
                for k in 0..<4 { states[k].withWords { $0.update(from: w.baseAddress! + 8 * k, count: 8) } }
            }
        }
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        return (0..<4).map { k in
            states[k].finish(messages[k], from: common * 64, suffix: none)
            return states[k].digest
        }
    }

    /// The SHA-256 digest (32 bytes) of one message, with the same code as ``hash(_:_:)`` where the CPU has
    /// the SHA extensions.
    public static func hash(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        guard sideBySide else { return Array(SHA256.hash(data: message)) }
        var s = RunningState()
        s.finish(message, from: 0, suffix: UnsafeRawBufferPointer(start: nil, count: 0))
        return s.digest
    }
}

/// H0…H7 of a message being hashed with CSHA256.
private struct RunningState {
    var words: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19
    )

    mutating func withWords<R>(_ body: (UnsafeMutablePointer<UInt32>) -> R) -> R {
        withUnsafeMutableBytes(of: &words) { body($0.baseAddress!.assumingMemoryBound(to: UInt32.self)) }
    }

    /// Compresses the whole blocks of `message` from byte `start` (a multiple of 64) on, then its tail with
    /// `suffix` (at most 64 bytes) and the padding.
    mutating func finish(_ message: UnsafeRawBufferPointer, from start: Int, suffix: UnsafeRawBufferPointer) {
        let whole = (message.count - start) / 64
        if whole > 0 {
            let p = message.baseAddress!.assumingMemoryBound(to: UInt8.self) + start
            withWords { zlabel_sha256_blocks($0, p, whole) }
        }
        let tailStart = start + whole * 64
        let tail = message.count - tailStart
        // The tail, the suffix, 0x80, zeros, and the message length in bits (big-endian) ending the last of one
        // to three blocks.
        withUnsafeTemporaryAllocation(byteCount: 192, alignment: 16) { pad in
            pad.initializeMemory(as: UInt8.self, repeating: 0)
            if tail > 0 {
                pad.baseAddress!.copyMemory(from: message.baseAddress! + tailStart, byteCount: tail)
            }
            if suffix.count > 0 {
                (pad.baseAddress! + tail).copyMemory(from: suffix.baseAddress!, byteCount: suffix.count)
            }
            let used = tail + suffix.count
            pad[used] = 0x80
            let blocks = (used + 9 + 63) / 64
            let bits = UInt64(message.count + suffix.count) &* 8
            pad.storeBytes(of: bits.bigEndian, toByteOffset: blocks * 64 - 8, as: UInt64.self)
            let p = pad.baseAddress!.assumingMemoryBound(to: UInt8.self)
            withWords { zlabel_sha256_blocks($0, p, blocks) }
        }
    }

    var digest: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        withUnsafeBytes(of: words) { w in
            for i in 0..<8 {
                out.withUnsafeMutableBytes {
                    $0.storeBytes(of: w.load(fromByteOffset: 4 * i, as: UInt32.self).bigEndian, toByteOffset: 4 * i, as: UInt32.self)
                }
            }
        }
        return out
    }
}

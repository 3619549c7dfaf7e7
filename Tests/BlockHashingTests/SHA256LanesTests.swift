import BlockHashing
import CSHA256
import Crypto
import Testing

@Suite struct SHA256LanesTests {
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed &+ 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    static func hex(_ d: [UInt8]) -> String { d.map { String($0, radix: 16).leftPadded(2) }.joined() }

    static func reference(_ m: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: m)) }

    @Test("the published examples of FIPS 180-4 (one block, two blocks, a million a's)")
    func knownAnswers() {
        let cases: [([UInt8], String)] = [
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ([UInt8](repeating: 0x61, count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ]
        for (m, want) in cases {
            let single = m.withUnsafeBytes { SHA256Lanes.hash($0) }
            let (a, b) = m.withUnsafeBytes { mb in "abc".utf8.withContiguousStorageIfAvailable { SHA256Lanes.hash(mb, UnsafeRawBufferPointer($0)) }! }
            #expect(Self.hex(single) == want)
            #expect(Self.hex(a) == want)
            #expect(Self.hex(b) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        }
    }

    @Test("every length from 0 to 300 bytes, alone and paired with every other length, equals swift-crypto")
    func allShortLengths() {
        let data = Self.bytes(301, seed: 1)
        let other = Self.bytes(301, seed: 2)
        let want = (0...300).map { Self.reference(Array(data[0..<$0])) }
        let wantOther = (0...300).map { Self.reference(Array(other[0..<$0])) }
        data.withUnsafeBytes { d in
            other.withUnsafeBytes { o in
                for n in 0...300 {
                    #expect(SHA256Lanes.hash(UnsafeRawBufferPointer(rebasing: d[0..<n])) == want[n], "length \(n)")
                    for m in stride(from: 0, through: 300, by: 7) {
                        let (x, y) = SHA256Lanes.hash(
                            UnsafeRawBufferPointer(rebasing: d[0..<n]), UnsafeRawBufferPointer(rebasing: o[0..<m]))
                        #expect(x == want[n] && y == wantOther[m], "lengths \(n) and \(m)")
                    }
                }
            }
        }
    }

    @Test("EBS blocks, label areas and unaligned slices, paired both ways, equal swift-crypto")
    func largeAndUnaligned() {
        let big = Self.bytes(524_288 + 3, seed: 3)
        let other = Self.bytes(524_288, seed: 4)
        big.withUnsafeBytes { b in
            other.withUnsafeBytes { o in
                let slices: [(Range<Int>, Range<Int>)] = [
                    (0..<524_288, 0..<524_288), (3..<524_291, 0..<524_288), (1..<114_689, 5..<131_077),
                    (0..<114_688, 0..<0), (7..<8, 0..<262_144), (0..<64, 0..<128),
                ]
                for (r, s) in slices {
                    let x = UnsafeRawBufferPointer(rebasing: b[r])
                    let y = UnsafeRawBufferPointer(rebasing: o[s])
                    let (p, q) = SHA256Lanes.hash(x, y)
                    let (q2, p2) = SHA256Lanes.hash(y, x)
                    #expect(p == Array(SHA256.hash(data: x)) && p2 == p, "\(r)")
                    #expect(q == Array(SHA256.hash(data: y)) && q2 == q, "\(s)")
                }
                // Both lanes on the same bytes.
                let (s1, s2) = SHA256Lanes.hash(o, o)
                #expect(s1 == Array(SHA256.hash(data: o)) && s2 == s1)
            }
        }
    }

    @Test("messages given as a body and a suffix of 0 to 64 bytes hash as the two joined")
    func suffixes() {
        let body = Self.bytes(1200, seed: 5)
        let tail = Self.bytes(64, seed: 6)
        body.withUnsafeBytes { b in
            tail.withUnsafeBytes { t in
                for n in [0, 1, 55, 56, 63, 64, 65, 119, 127, 128, 992, 1199] {
                    for k in [0, 1, 8, 9, 32, 55, 56, 63, 64] {
                        let x = UnsafeRawBufferPointer(rebasing: b[0..<n]), s = UnsafeRawBufferPointer(rebasing: t[0..<k])
                        let want = Self.reference(Array(x) + Array(s))
                        let y = UnsafeRawBufferPointer(rebasing: b[7..<(7 + (n + 300) % 1193)])
                        let (p, q) = SHA256Lanes.hash(x, then: s, y, then: UnsafeRawBufferPointer(rebasing: t[0..<(64 - k)]))
                        #expect(p == want, "body \(n), suffix \(k)")
                        #expect(q == Self.reference(Array(y) + Array(t[0..<(64 - k)])), "body \(y.count), suffix \(64 - k)")
                    }
                }
            }
        }
    }

    @Test("any number of messages hashed together (fours, then twos, then one) equal swift-crypto, in order")
    func manyAtOnce() {
        let lengths = [524_288, 524_288, 0, 65, 64, 4096, 524_288, 1000, 524_288, 3, 131_072, 114_688 - 32]
        let messages = lengths.enumerated().map { Self.bytes($1, seed: UInt64(100 + $0)) }
        for n in 0...messages.count {
            let some = Array(messages.prefix(n))
            let got = Self.withAll(some) { SHA256Lanes.hash(all: $0) }
            #expect(got == some.map(Self.reference), "\(n) messages")
        }
        // Four equal-length blocks, the upload's case, and four of which one is much shorter.
        let four = (0..<4).map { Self.bytes(524_288, seed: 200 + UInt64($0)) }
        #expect(Self.withAll(four) { SHA256Lanes.hash(all: $0) } == four.map(Self.reference))
        let uneven = [four[0], Array(four[1].prefix(100)), four[2], four[3]]
        #expect(Self.withAll(uneven) { SHA256Lanes.hash(all: $0) } == uneven.map(Self.reference))
    }

    static func withAll<R>(_ arrays: [[UInt8]], _ done: [UnsafeRawBufferPointer] = [], _ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        guard let first = arrays.first else { return body(done) }
        return first.withUnsafeBytes { withAll(Array(arrays.dropFirst()), done + [$0], body) }
    }

    @Test("random pairs of random lengths up to 4 KiB equal swift-crypto")
    func randomPairs() {
        var rng = SystemRandomNumberGenerator()
        for i in 0..<500 {
            let a = Self.bytes(Int.random(in: 0...4096, using: &rng), seed: UInt64(i) * 2)
            let b = Self.bytes(Int.random(in: 0...4096, using: &rng), seed: UInt64(i) * 2 + 1)
            let (x, y) = a.withUnsafeBytes { pa in b.withUnsafeBytes { SHA256Lanes.hash(pa, $0) } }
            #expect(x == Self.reference(a) && y == Self.reference(b), "lengths \(a.count) and \(b.count)")
        }
    }

    @Test("the side-by-side path is the one taken on a CPU with the SHA extensions")
    func pathInUse() throws {
        // On x86-64 CPUs with SHA-NI (every machine CI runs on) the C kernels must be in use, and their
        // one-message and two-message forms must agree block for block.
        #expect(SHA256Lanes.sideBySide == (zlabel_sha256_available() != 0))
        try #require(SHA256Lanes.sideBySide, "this CPU lacks the SHA extensions; the C kernels are untested here")
        let m = Self.bytes(64 * 37, seed: 9)
        var s1 = [UInt32](repeating: 0, count: 8), s2 = s1, s3 = s1
        m.withUnsafeBufferPointer { p in
            zlabel_sha256_blocks(&s1, p.baseAddress!, 37)
            zlabel_sha256_blocks_x2(&s2, p.baseAddress!, &s3, p.baseAddress! + 64, 36)
        }
        var s4 = [UInt32](repeating: 0, count: 8)
        m.withUnsafeBufferPointer { p in zlabel_sha256_blocks(&s4, p.baseAddress! + 64, 36) }
        var s5 = [UInt32](repeating: 0, count: 8)
        m.withUnsafeBufferPointer { p in zlabel_sha256_blocks(&s5, p.baseAddress!, 36) }
        #expect(s2 == s5)
        #expect(s3 == s4)
        #expect(s1 != s5)
        // The four-lane kernel: lane k from block k on, 33 blocks each, against the one-lane kernel.
        var four = [UInt32](repeating: 0, count: 32)
        m.withUnsafeBufferPointer { p in
            let b = p.baseAddress!
            zlabel_sha256_blocks_x4(&four, b, b + 64, b + 128, b + 192, 33)
        }
        for k in 0..<4 {
            var one = [UInt32](repeating: 0, count: 8)
            m.withUnsafeBufferPointer { p in zlabel_sha256_blocks(&one, p.baseAddress! + 64 * k, 33) }
            #expect(Array(four[(8 * k)..<(8 * k + 8)]) == one, "lane \(k)")
        }
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

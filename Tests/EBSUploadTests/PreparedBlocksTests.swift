@testable import EBSUpload
import BlockHashing
import NIOCore
import Testing

/// The hand-over of companion blocks between upload tasks (BlockWork): every task that waits for its block wakes.
@Suite struct PreparedBlocksTests {
    static func block(_ byte: UInt8) -> PreparedBlock {
        var buf = ByteBufferAllocator().buffer(capacity: 4)
        buf.writeBytes([byte, byte, byte, byte])
        let digest = BlockDigest(sha256: [byte], xxh3: UInt64(byte), isZero: false)
        return PreparedBlock(bytesRead: 4, decision: .upload(buf, digest))
    }

    static func byte(_ b: PreparedBlock?) -> UInt8? {
        guard case .upload(let buf, _)? = b?.decision else { return nil }
        return buf.getInteger(at: buf.readerIndex, as: UInt8.self)
    }

    @Test("a block nobody promised is not waited for")
    func unpromised() async {
        let store = PreparedBlocks()
        #expect(await store.take(7) == nil)
        #expect(!store.contains(7))
    }

    @Test("a block left before its task asks is taken once; a failed preparation hands over nothing")
    func depositedFirst() async {
        let store = PreparedBlocks()
        store.promise(1)
        store.promise(2)
        #expect(store.contains(1) && store.contains(2))
        store.deposit(1, Self.block(0xA1))
        store.deposit(2, nil)
        #expect(Self.byte(await store.take(1)) == 0xA1)
        #expect(await store.take(1) == nil, "taken once")
        #expect(await store.take(2) == nil, "its task prepares it itself")
        #expect(!store.contains(1) && !store.contains(2))
    }

    @Test("a task that asks while its block is being prepared waits, and wakes with it", arguments: 0..<20)
    func waitsForPreparation(round: Int) async {
        let store = PreparedBlocks()
        store.promise(5)
        async let taken = store.take(5)
        // Let the taker reach its wait in some rounds, race it in others.
        if round % 2 == 0 { await Task.yield() }
        store.deposit(5, Self.block(UInt8(round)))
        #expect(Self.byte(await taken) == UInt8(round))
        #expect(!store.contains(5))
    }

    @Test("a task that is seen waiting wakes with the block, or with nothing when the preparation failed")
    func seenWaiting() async throws {
        for (index, block) in [(UInt64(8), Self.block(0x88)), (9, nil)] {
            let store = PreparedBlocks()
            store.promise(index)
            let taker = Task { Self.byte(await store.take(index)) }
            // A loaded CI machine may start the taker late; a minute is far more than it ever needs.
            let deadline = ContinuousClock.now + .seconds(60)
            while store.waiting(for: index) == 0 {
                try #require(ContinuousClock.now < deadline, "the taker never waited")
                try await Task.sleep(for: .milliseconds(1))
            }
            #expect(store.waiting(for: index) == 1)
            store.deposit(index, block)
            #expect(await taker.value == (block == nil ? nil : 0x88))
            #expect(!store.contains(index))
        }
    }

    @Test("blocks to be sent are hashed side by side, skipped ones are left alone, digests equal one at a time")
    func hashing() {
        var blocks = [Self.block(1), PreparedBlock(bytesRead: 0, decision: .skip(.skippedZero)), Self.block(2)]
        let together = BlockWork.hash(&blocks)
        #expect(together == (SHA256Lanes.sideBySide ? 2 : 0))
        for (i, b) in [(0, UInt8(1)), (2, UInt8(2))] {
            guard case .upload(_, let d) = blocks[i].decision else { Issue.record("block \(i) is no longer to be sent"); continue }
            #expect(d.sha256 == [UInt8](repeating: b, count: 4).withUnsafeBytes { BlockDigest.of($0).sha256 })
        }
        guard case .skip(.skippedZero) = blocks[1].decision else { Issue.record("the skipped block changed"); return }
    }
}

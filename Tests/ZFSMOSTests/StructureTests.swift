import NVList
import Testing
import ZFSChecksum
@testable import ZFSMOS

@Suite struct BlockPointerTests {
    @Test func decodesEveryField() {
        var w = [UInt64](repeating: 0, count: 16)
        w[0] = 2 << 32 | 0x07 << 24 | 3  // vdev 2, grid 7, asize 3 sectors
        w[1] = 1 << 63 | 0x2000  // gang, offset 0x2000 sectors
        // B=1 D=0 X=0 level 2 type 10 cksum 7 E=0 comp 15 psize 8 sectors lsize 32 sectors
        w[6] = 1 << 63 | 2 << 56 | 10 << 48 | 7 << 40 | 15 << 32 | 7 << 16 | 31
        w[9] = 40; w[10] = 41; w[11] = 5
        w[12] = 0xA; w[13] = 0xB; w[14] = 0xC; w[15] = 0xD
        let bp = BlockPointer(words: w)
        let dva = bp.dvas[0]
        #expect(dva.vdev == 2 && dva.grid == 7 && dva.allocatedSize == 1536 && dva.offset == 0x2000 << 9 && dva.isGang)
        #expect(bp.dvas[1].isEmpty && bp.dvas[2].isEmpty)
        #expect(bp.isGang && !bp.isHole && !bp.isEmbedded && !bp.usesCrypt && !bp.isDedup)
        #expect(bp.level == 2 && bp.type == 10 && bp.checksumFunction == 7 && bp.compression == 15)
        #expect(bp.physicalSize == 4096 && bp.logicalSize == 16384 && bp.byteOrder == .little)
        #expect(bp.physicalBirth == 40 && bp.logicalBirth == 41 && bp.fill == 5)
        #expect(bp.checksum == Checksum256(0xA, 0xB, 0xC, 0xD))
        #expect(bp.summary.contains("DVA[0]=<2:400000:600> gang"))
    }

    @Test func embeddedPayloadSkipsPropAndBirthWords() throws {
        var w = (0..<16).map { UInt64($0) &* 0x0101_0101_0101_0101 }
        // E=1, etype 0, comp off (2), psize 20 bytes, lsize 20 bytes, level 0, type 1, little-endian
        w[6] = 1 << 63 | 1 << 48 | 0 << 40 | 1 << 39 | 2 << 32 | UInt64(19) << 25 | 19
        let bp = BlockPointer(words: w)
        #expect(bp.isEmbedded && !bp.isHole && !bp.isGang)
        #expect(bp.physicalSize == 20 && bp.logicalSize == 20)
        // words 0, 1, then 2 (first four bytes): low byte first.
        #expect(bp.embeddedPayload == [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 1, count: 8) + [2, 2, 2, 2])
        let reader = PoolBlockReader(topology: PoolTopology(topLevels: [:]), devices: LeafReader(guids: []) { _, _, _ in [] })
        #expect(try reader.read(bp, at: .mosRoot) == bp.embeddedPayload)
        // Payload word order: w5 is followed by w7 (w6 is blk_prop), w9 by w11 (w10 is the birth).
        w[6] = 1 << 63 | 1 << 39 | 2 << 32 | UInt64(111) << 25 | 111
        let full = BlockPointer(words: w).embeddedPayload
        #expect(full.count == 112)
        #expect(full[48] == 7 && full[64] == 9 && full[72] == 11 && full[111] == 15)
    }

    @Test func holeReadsAsZeros() throws {
        var w = [UInt64](repeating: 0, count: 16)
        w[6] = 1 << 63 | 3  // lsize 2048
        let reader = PoolBlockReader(topology: PoolTopology(topLevels: [:]), devices: LeafReader(guids: []) { _, _, _ in [] })
        #expect(try reader.read(BlockPointer(words: w), at: .mosRoot) == [UInt8](repeating: 0, count: 2048))
    }

    @Test func gangEncryptedAndMissingAreRefusedByName() {
        var w = [UInt64](repeating: 0, count: 16)
        w[0] = 1  // asize 512
        w[1] = 1 << 63 | 100
        w[6] = 1 << 63 | 7 << 40 | 2 << 32
        let reader = PoolBlockReader(
            topology: PoolTopology(topLevels: [0: VdevNode(type: "disk", guid: 42, id: 0, ashift: 9)]),
            devices: LeafReader(guids: [42]) { _, _, count in [UInt8](repeating: 0, count: count) })
        let location = BlockLocation(object: 5, level: 1, blkid: 3)
        let gang = #expect(throws: MOSError.self) { try reader.read(BlockPointer(words: w), at: location) }
        #expect(gang?.code == .unsupported)
        #expect(gang?.description.contains("MOS object 5 level 1 blkid 3") == true)
        #expect(gang?.description.contains("gang") == true)
        w[1] = 100
        w[6] |= 1 << 61
        let crypt = #expect(throws: MOSError.self) { try reader.read(BlockPointer(words: w), at: location) }
        #expect(crypt?.code == .unsupported)
        w[6] &= ~(1 << 61)
        w[0] = 3 << 32 | 1  // vdev 3: not described
        let missing = #expect(throws: MOSError.self) { try reader.read(BlockPointer(words: w), at: location) }
        #expect(missing?.code == .missingDevice)
        #expect(missing?.description.contains("DVA[0]=<3:c800:200>") == true)
    }

    @Test func secondCopyIsUsedWhenTheFirstDoesNotVerify() throws {
        let good = [UInt8](repeating: 0x5A, count: 512)
        let sum = fletcher4(good, order: .little)
        var w = [UInt64](repeating: 0, count: 16)
        w[0] = 1; w[1] = 8  // DVA[0] at 0x1000
        w[2] = 1; w[3] = 16  // DVA[1] at 0x2000
        w[6] = 1 << 63 | 7 << 40 | 2 << 32
        w[12] = sum.words.0
        w[13] = sum.words.1
        w[14] = sum.words.2
        w[15] = sum.words.3
        let reader = PoolBlockReader(
            topology: PoolTopology(topLevels: [0: VdevNode(type: "mirror", guid: 1, id: 0, ashift: 9, children: [
                VdevNode(type: "disk", guid: 10), VdevNode(type: "disk", guid: 11),
            ])]),
            devices: LeafReader(guids: [10, 11]) { guid, offset, count in
                // only child 11's copy at DVA[1] is good
                guid == 11 && offset == 0x40_0000 + 0x2000 ? good : [UInt8](repeating: 0, count: count)
            })
        #expect(try reader.read(BlockPointer(words: w), at: .mosRoot) == good)
        w[12] ^= 1
        let error = #expect(throws: MOSError.self) { try reader.read(BlockPointer(words: w), at: .mosRoot) }
        #expect(error?.code == .checksum)
        // two DVAs × two children tried
        #expect(error?.attempts.count == 4)
    }
}

@Suite struct RaidzMapTests {
    @Test func fullStripeSkipsTheParityColumn() throws {
        let cols = try RaidzMap.dataColumns(offset: 0, size: 1024, children: 3, parity: 1, ashift: 9)
        #expect(cols == [RaidzColumn(child: 1, offset: 0, size: 512), RaidzColumn(child: 2, offset: 0, size: 512)])
    }

    @Test func startColumnAndWrapAdvanceTheChildOffset() throws {
        // sector 4 of a 3-wide raidz1: first column 4 % 3 = 1, row 4 / 3 = 1.
        let cols = try RaidzMap.dataColumns(offset: 4 << 9, size: 1024, children: 3, parity: 1, ashift: 9)
        #expect(cols == [RaidzColumn(child: 2, offset: 512, size: 512), RaidzColumn(child: 0, offset: 1024, size: 512)])
    }

    @Test func shortBlockUsesOneDataColumnAndRoundsUp() throws {
        let cols = try RaidzMap.dataColumns(offset: 0, size: 100, children: 4, parity: 2, ashift: 12)
        #expect(cols == [RaidzColumn(child: 2, offset: 0, size: 4096)])
    }

    @Test func remainderGoesToTheFirstColumns() throws {
        // 5 sectors on 3 data columns: q 1, r 2, big columns = r + parity = 3.
        let cols = try RaidzMap.dataColumns(offset: 0, size: 5 * 512, children: 4, parity: 1, ashift: 9)
        #expect(cols.map(\.size) == [1024, 1024, 512])
    }

    @Test func singleParitySwapsOnOddMegabytes() throws {
        let cols = try RaidzMap.dataColumns(offset: 1 << 20, size: 1024, children: 3, parity: 1, ashift: 9)
        // row 682, first column (2048 % 3) = 2: parity on child 2, data on 0 and 1 (+1 row); the swap puts
        // the first data column on child 2.
        #expect(cols.map(\.child) == [2, 1])
    }

    @Test func impossibleGeometryThrows() {
        #expect(throws: MOSError.self) { try RaidzMap.dataColumns(offset: 0, size: 512, children: 2, parity: 2, ashift: 9) }
        #expect(throws: MOSError.self) { try RaidzMap.dataColumns(offset: 0, size: 512, children: 3, parity: 1, ashift: 40) }
        #expect(throws: MOSError.self) { try RaidzMap.dataColumns(offset: .max, size: 512, children: 3, parity: 1, ashift: 9) }
    }
}

@Suite struct ZAPTests {
    private func microzap(_ entries: [(String, UInt64)], order: ByteOrder) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        block.storeUInt64(ZAP.microBlockType, at: 0, order)
        for (i, (name, value)) in entries.enumerated() {
            let at = 64 * (i + 1)
            block.storeUInt64(value, at: at, order)
            for (j, c) in name.utf8.enumerated() { block[at + 14 + j] = c }
        }
        return block
    }

    @Test(arguments: [ByteOrder.little, .big])
    func microzapEntriesInEitherOrder(order: ByteOrder) throws {
        let entries = try ZAP.microEntries(microzap([("config", 61), ("root_dataset", 32)], order: order), order: order)
        #expect(entries == [ZAPEntry(name: "config", integerLength: 8, values: [61]),
                            ZAPEntry(name: "root_dataset", integerLength: 8, values: [32])])
    }

    @Test func microzapRejectsOtherBlocks() {
        #expect(throws: MOSError.self) { try ZAP.microEntries([UInt8](repeating: 0, count: 512), order: .little) }
        #expect(throws: MOSError.self) { try ZAP.microEntries([1, 2, 3], order: .little) }
    }

    /// A 512-byte fat ZAP leaf with one entry: name "bootfs", value one big-endian uint64.
    private func leaf(order: ByteOrder, value: UInt64, nameNext: UInt16 = 0xFFFF) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        block.storeUInt64(ZAP.leafBlockType, at: 0, order)
        let magic = order == .little ? ZAP.leafMagic.littleEndian : ZAP.leafMagic.bigEndian
        withUnsafeBytes(of: magic) { for (i, b) in $0.enumerated() { block[24 + i] = b } }
        func put16(_ v: UInt16, _ at: Int) {
            let x = order == .little ? v.littleEndian : v.bigEndian
            withUnsafeBytes(of: x) { block[at] = $0[0]; block[at + 1] = $0[1] }
        }
        let chunks = 48 + 2 * 16  // 2^(9-5) hash slots
        // chunk 0: entry
        block[chunks] = 252
        block[chunks + 1] = 8
        put16(1, chunks + 4)  // name chunk
        put16(7, chunks + 6)  // "bootfs\0"
        put16(2, chunks + 8)  // value chunk
        put16(1, chunks + 10)
        // chunk 1: name
        block[chunks + 24] = 251
        for (i, c) in "bootfs".utf8.enumerated() { block[chunks + 24 + 1 + i] = c }
        put16(nameNext, chunks + 24 + 22)
        // chunk 2: value, big-endian whatever the order
        block[chunks + 48] = 251
        for i in 0..<8 { block[chunks + 48 + 1 + i] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(i))) }
        put16(0xFFFF, chunks + 48 + 22)
        return block
    }

    @Test(arguments: [ByteOrder.little, .big])
    func fatLeafEntryValuesAreBigEndian(order: ByteOrder) throws {
        let entries = try ZAP.leafEntries(leaf(order: order, value: 0x1234_5678_9ABC), order: order)
        #expect(entries == [ZAPEntry(name: "bootfs", integerLength: 8, values: [0x1234_5678_9ABC])])
    }

    @Test func fatLeafRejectsLoopsAndBadChunks() {
        // a name chunk whose next is itself, with a name long enough to follow it
        var looping = leaf(order: .little, value: 1, nameNext: 1)
        looping[48 + 32 + 6] = 100  // name_numints 100
        #expect(throws: MOSError.self) { try ZAP.leafEntries(looping, order: .little) }
        var wrongType = leaf(order: .little, value: 1)
        wrongType[48 + 32 + 24] = 253  // name chunk marked free
        #expect(throws: MOSError.self) { try ZAP.leafEntries(wrongType, order: .little) }
        var badMagic = leaf(order: .little, value: 1)
        badMagic[24] ^= 1
        #expect(throws: MOSError.self) { try ZAP.leafEntries(badMagic, order: .little) }
    }

    @Test func fatHeaderEmbeddedPointerTable() throws {
        var block = [UInt8](repeating: 0, count: 1024)
        block.storeUInt64(ZAP.headerBlockType, at: 0, .big)
        block.storeUInt64(ZAP.magic, at: 8, .big)
        block.storeUInt64(2, at: 32, .big)  // zt_shift 2: four entries
        for i in 0..<4 { block.storeUInt64(UInt64(1 + i / 2), at: 512 + 8 * i, .big) }
        let h = try ZAP.header(block, order: .big)
        #expect(h.embeddedTable == [1, 1, 2, 2])
        block.storeUInt64(7, at: 32, .big)  // 128 entries do not fit the half block of 1 KiB
        #expect(throws: MOSError.self) { try ZAP.header(block, order: .big) }
    }
}

@Suite struct NVListZdbDumpTests {
    @Test func printsLikeDumpNvlist() {
        let list = NVListFixtures.sample
        #expect(list.zdbDump(indent: 8) == """
                    version: 5000
                    name: 'rpool'
                    com.delphix:has_per_vdev_zaps
                    ids[0]: 1
                    ids[1]: 2
                    vdev_tree:
                        type: 'root'
                        children[0]:
                            type: 'disk'
                    flag: true

            """)
    }
}

enum NVListFixtures {
    static let sample = NVList(pairs: [
        NVPair("version", .uint64(5000)),
        NVPair("name", .string("rpool")),
        NVPair("com.delphix:has_per_vdev_zaps", .boolean),
        NVPair("ids", .uint64Array([1, 2])),
        NVPair("vdev_tree", .nvlist(NVList(pairs: [
            NVPair("type", .string("root")),
            NVPair("children", .nvlistArray([NVList(pairs: [NVPair("type", .string("disk"))])])),
        ]))),
        NVPair("flag", .booleanValue(true)),
    ])
}

// ZAP objects (include/sys/zap_impl.h, include/sys/zap_leaf.h, module/zfs/zap_micro.c, zap_leaf.c)
//
// A ZAP is a name → value map stored in an object's data blocks. Its first 64-bit word says which kind:
//
// - microzap (`ZBT_MICRO`): one block; a 64-byte header, then 64-byte entries of
//   `u64 value, u32 cd, u16 pad, char name[50]`; an entry with an empty name is unused.
// - fat ZAP (`ZBT_HEADER`): block 0 is `zap_phys_t` (magic `ZAP_MAGIC` at byte 8) with a pointer table from
//   hash prefixes to leaf blocks, kept in the second half of block 0 when `zt_numblks` is 0 and in blocks
//   `zt_blk…` otherwise. Each leaf block (`ZBT_LEAF`, `ZAP_LEAF_MAGIC`) has a 48-byte header, a hash table of
//   `2^(bs-5)` u16 slots and then 24-byte chunks: entry chunks (type 252) name their name and value chunk
//   chains; array chunks (type 251) carry 21 bytes each and the index of the next (0xFFFF ends).
//
// This reader does not hash: it visits every leaf the pointer table names and every entry chunk in it.
// Integers in array chunks are big-endian whatever the block's byte order; the other fields follow it.

public import ZFSChecksum

/// One ZAP entry: a name and an array of integers.
public struct ZAPEntry: Sendable, Hashable {
    /// The name, up to its NUL.
    public var name: String
    /// Bytes per integer of the value: 1, 2, 4 or 8.
    public var integerLength: Int
    /// The value's integers.
    public var values: [UInt64]

    /// Creates an entry.
    public init(name: String, integerLength: Int, values: [UInt64]) {
        self.name = name
        self.integerLength = integerLength
        self.values = values
    }

    /// The value when it is one 64-bit integer (an object number, say).
    public var uint64: UInt64? { integerLength == 8 && values.count == 1 ? values[0] : nil }

    /// The value as text, when it is an array of bytes ending in a NUL (a string property).
    public var string: String? {
        guard integerLength == 1 else { return nil }
        let bytes = values.map { UInt8(truncatingIfNeeded: $0) }.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The ZAP formats, parsed from bytes.
public enum ZAP {
    /// `ZBT_MICRO`.
    public static let microBlockType: UInt64 = (1 << 63) + 3
    /// `ZBT_HEADER`.
    public static let headerBlockType: UInt64 = (1 << 63) + 1
    /// `ZBT_LEAF`.
    public static let leafBlockType: UInt64 = 1 << 63
    /// `ZAP_MAGIC`.
    public static let magic: UInt64 = 0x2_F52A_B2AB
    /// `ZAP_LEAF_MAGIC`.
    public static let leafMagic: UInt32 = 0x2AB_1EAF

    /// The entries of a microzap block.
    ///
    /// - Throws: ``MOSError`` (`.malformed`) when the block is not a microzap.
    public static func microEntries(_ block: [UInt8], order: ByteOrder) throws(MOSError) -> [ZAPEntry] {
        guard block.count >= 128, block.count % 64 == 0, block.u64(at: 0, order) == microBlockType else {
            throw MOSError(.malformed, "not a microzap block (\(block.count) bytes, type \(hex(block.u64(at: 0, order) ?? 0)))")
        }
        var out: [ZAPEntry] = []
        for i in 1..<(block.count / 64) {
            let at = i * 64
            guard block[at + 14] != 0 else { continue }
            let nameBytes = block[(at + 14)..<(at + 64)].prefix { $0 != 0 }
            out.append(ZAPEntry(name: String(decoding: nameBytes, as: UTF8.self), integerLength: 8,
                                values: [block.u64(at: at, order)!]))
        }
        return out
    }

    /// The pointer table of a fat ZAP header block, when it is embedded in the block; otherwise where it is.
    public struct Header: Sendable, Hashable {
        /// `zt_blk`, `zt_numblks`, `zt_shift`.
        public var tableBlock: UInt64, tableBlockCount: UInt64, tableShift: UInt64
        /// `zap_num_leafs`, `zap_num_entries`.
        public var leafCount: UInt64, entryCount: UInt64
        /// The leaf block ids of an embedded pointer table (`zt_numblks == 0`), else empty.
        public var embeddedTable: [UInt64]
    }

    /// Parses a fat ZAP header block (`zap_phys_t`).
    ///
    /// - Throws: ``MOSError`` (`.malformed`) for a wrong type or magic, or a pointer table that cannot be.
    public static func header(_ block: [UInt8], order: ByteOrder) throws(MOSError) -> Header {
        guard block.count >= 1024, block.count.nonzeroBitCount == 1, block.u64(at: 0, order) == headerBlockType,
            block.u64(at: 8, order) == magic
        else {
            throw MOSError(.malformed, "not a fat ZAP header block (\(block.count) bytes, type \(hex(block.u64(at: 0, order) ?? 0)), magic \(hex(block.u64(at: 8, order) ?? 0)))")
        }
        var h = Header(
            tableBlock: block.u64(at: 16, order)!, tableBlockCount: block.u64(at: 24, order)!,
            tableShift: block.u64(at: 32, order)!, leafCount: block.u64(at: 64, order)!,
            entryCount: block.u64(at: 72, order)!, embeddedTable: [])
        if h.tableBlockCount == 0 {
            // ZAP_EMBEDDED_PTRTBL_SHIFT: the second half of the block, 2^(bs-4) entries at most.
            let capacity = block.count / 16
            guard h.tableShift < 63, (1 << h.tableShift) <= UInt64(capacity) else {
                throw MOSError(.malformed, "fat ZAP embedded pointer table of 2^\(h.tableShift) entries does not fit a \(block.count)-byte block")
            }
            let n = 1 << Int(h.tableShift)
            h.embeddedTable = (0..<n).map { block.u64(at: block.count / 2 + $0 * 8, order)! }
        }
        return h
    }

    /// The entries of one fat ZAP leaf block.
    ///
    /// - Throws: ``MOSError`` (`.malformed`) for a wrong type or magic, a chunk index outside the block, a
    ///   chain that loops or an impossible length.
    public static func leafEntries(_ block: [UInt8], order: ByteOrder) throws(MOSError) -> [ZAPEntry] {
        let size = block.count
        guard size >= 512, size.nonzeroBitCount == 1, block.u64(at: 0, order) == leafBlockType,
            block.u32(at: 24, order) == leafMagic
        else {
            throw MOSError(.malformed, "not a fat ZAP leaf block (\(size) bytes, type \(hex(block.u64(at: 0, order) ?? 0)), magic \(hex(UInt64(block.u32(at: 24, order) ?? 0))))")
        }
        let bs = size.trailingZeroBitCount
        let hashEntries = 1 << (bs - 5)
        let chunkStart = 48 + 2 * hashEntries
        let chunkCount = (size - 2 * hashEntries) / 24 - 2
        func chunk(_ i: Int) -> Int { chunkStart + 24 * i }

        // Collects `length` bytes from the array chunk chain starting at `first`.
        func array(from first: UInt16, length: Int, what: String) throws(MOSError) -> [UInt8] {
            guard length >= 0, length <= chunkCount * 21 else {
                throw MOSError(.malformed, "ZAP leaf \(what) of \(length) bytes cannot fit the leaf")
            }
            var out: [UInt8] = []
            out.reserveCapacity(length)
            var index = Int(first)
            var visited = Set<Int>()
            while out.count < length {
                guard index < chunkCount else {
                    throw MOSError(.malformed, "ZAP leaf \(what) chain reaches chunk \(index) of \(chunkCount)")
                }
                guard visited.insert(index).inserted else {
                    throw MOSError(.malformed, "ZAP leaf \(what) chain comes back to chunk \(index)")
                }
                let at = chunk(index)
                guard block[at] == 251 else {
                    throw MOSError(.malformed, "ZAP leaf \(what) chain reaches chunk \(index) of type \(block[at]), not an array chunk")
                }
                out += block[(at + 1)..<(at + 1 + min(21, length - out.count))]
                index = Int(block.u16(at: at + 22, order)!)
            }
            return out
        }

        var entries: [ZAPEntry] = []
        for i in 0..<max(chunkCount, 0) {
            let at = chunk(i)
            guard block[at] == 252 else { continue }
            let intLength = Int(block[at + 1])
            let nameChunk = block.u16(at: at + 4, order)!
            let nameInts = Int(block.u16(at: at + 6, order)!)
            let valueChunk = block.u16(at: at + 8, order)!
            let valueInts = Int(block.u16(at: at + 10, order)!)
            guard [1, 2, 4, 8].contains(intLength) else {
                throw MOSError(.malformed, "ZAP leaf entry in chunk \(i) has integer length \(intLength)")
            }
            let nameBytes = try array(from: nameChunk, length: nameInts, what: "name of chunk \(i)")
            let valueBytes = try array(from: valueChunk, length: valueInts * intLength, what: "value of chunk \(i)")
            var values: [UInt64] = []
            values.reserveCapacity(valueInts)
            for v in 0..<valueInts {
                var x: UInt64 = 0
                for b in 0..<intLength { x = x << 8 | UInt64(valueBytes[v * intLength + b]) }
                values.append(x)
            }
            let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
            entries.append(ZAPEntry(name: name, integerLength: intLength, values: values))
        }
        return entries
    }
}

extension ObjectSet {
    /// Every entry of ZAP object `object`, microzap or fat.
    ///
    /// - Throws: ``MOSError`` for a block that does not read or does not parse.
    public func zapEntries(_ object: UInt64) throws(MOSError) -> [ZAPEntry] {
        let dn = try dnode(object)
        let location = BlockLocation(objset: name, object: object, level: 0, blkid: 0)
        guard let first = try readBlock(of: dn, object: object, blkid: 0) else {
            throw MOSError(.malformed, "ZAP object \(object) has a hole for block 0", location: location)
        }
        let order = try blockOrder(of: dn, object: object, blkid: 0)
        let kind = first.u64(at: 0, order) ?? 0
        do throws(MOSError) {
            if kind == ZAP.microBlockType { return try ZAP.microEntries(first, order: order) }
            let header = try ZAP.header(first, order: order)
            var leafIDs = header.embeddedTable
            if header.tableBlockCount > 0 {
                let perBlock = UInt64(first.count / 8)
                guard header.tableShift < 32, (1 << header.tableShift) <= header.tableBlockCount * perBlock,
                    header.tableBlockCount <= 1 << 16
                else {
                    throw MOSError(.malformed, "fat ZAP pointer table of 2^\(header.tableShift) entries in \(header.tableBlockCount) blocks cannot be")
                }
                for b in 0..<header.tableBlockCount {
                    let (blkid, overflow) = header.tableBlock.addingReportingOverflow(b)
                    guard !overflow, let table = try readBlock(of: dn, object: object, blkid: blkid) else { continue }
                    let tableOrder = try blockOrder(of: dn, object: object, blkid: blkid)
                    for i in 0..<(table.count / 8) { leafIDs.append(table.u64(at: i * 8, tableOrder)!) }
                }
            }
            var seen = Set<UInt64>()
            var entries: [ZAPEntry] = []
            for leaf in leafIDs where seen.insert(leaf).inserted {
                guard leaf != 0, leaf <= dn.maxBlockID, let block = try readBlock(of: dn, object: object, blkid: leaf) else {
                    throw MOSError(.malformed, "fat ZAP pointer table names leaf block \(leaf), which is not in the object (last block \(dn.maxBlockID))")
                }
                let leafOrder = try blockOrder(of: dn, object: object, blkid: leaf)
                do throws(MOSError) {
                    entries += try ZAP.leafEntries(block, order: leafOrder)
                } catch {
                    throw MOSError(.malformed, error.message, location: BlockLocation(objset: name, object: object, level: 0, blkid: leaf))
                }
            }
            return entries
        } catch {
            if error.location != nil { throw error }
            throw MOSError(error.code, "ZAP object \(object): \(error.message)", location: location)
        }
    }

    /// The byte order of data block `blkid` of `dnode`: its block pointer's.
    func blockOrder(of dnode: Dnode, object: UInt64, blkid: UInt64) throws(MOSError) -> ByteOrder {
        try blockPointer(of: dnode, object: object, blkid: blkid)?.byteOrder ?? dnode.byteOrder
    }
}

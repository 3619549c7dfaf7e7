// Dnodes and object sets (include/sys/dnode.h, include/sys/dmu_objset.h)
//
// An object set is an array of 512-byte dnode slots kept in the data blocks of its meta-dnode; object N is
// slot N. A dnode describes one object: its type, block sizes, levels of indirection and up to three block
// pointers, followed by a "bonus" buffer that small objects use for their fixed-size data (a DSL directory's
// or dataset's record, the packed config's length). A large dnode (`extra_slots` > 0) spans several slots.

public import ZFSChecksum

/// A decoded `dnode_phys_t`.
public struct Dnode: Sendable, Hashable {
    /// Bytes in one dnode slot (`DNODE_MIN_SIZE`).
    public static let slotSize = 512
    /// Where the block pointers start (`DNODE_CORE_SIZE`).
    static let blockPointerOffset = 64

    /// `dn_type` (`dmu_object_type_t`); 0 is a free slot.
    public var type: UInt8
    /// `dn_indblkshift`: log2 of the indirect block size.
    public var indirectBlockShift: UInt8
    /// `dn_nlevels`: 1 when the block pointers point at data.
    public var levels: UInt8
    /// `dn_bonustype`.
    public var bonusType: UInt8
    /// `dn_checksum`, `dn_compress`, `dn_flags`.
    public var checksum: UInt8, compress: UInt8, flags: UInt8
    /// `dn_datablkszsec` × 512: the data block size.
    public var dataBlockSize: Int
    /// `dn_extra_slots`: further 512-byte slots this dnode takes.
    public var extraSlots: UInt8
    /// `dn_maxblkid`: the highest data block id.
    public var maxBlockID: UInt64
    /// `dn_blkptr[dn_nblkptr]`.
    public var blockPointers: [BlockPointer]
    /// The bonus buffer (`dn_bonuslen` bytes).
    public var bonus: [UInt8]
    /// The byte order the dnode was written in (its block's).
    public var byteOrder: ByteOrder

    /// Decodes the dnode at the start of `bytes` (one or more slots), in `order`.
    ///
    /// - Throws: ``MOSError`` (`.malformed`) when a field says something no dnode can hold: block
    ///   pointers or bonus past the dnode's slots, an impossible level count or block size.
    public init(bytes: [UInt8], order: ByteOrder) throws(MOSError) {
        guard bytes.count >= Self.slotSize else {
            throw MOSError(.malformed, "a dnode needs \(Self.slotSize) bytes, \(bytes.count) given")
        }
        type = bytes[0]
        indirectBlockShift = bytes[1]
        levels = bytes[2]
        let nblkptr = Int(bytes[3])
        bonusType = bytes[4]
        checksum = bytes[5]
        compress = bytes[6]
        flags = bytes[7]
        dataBlockSize = Int(bytes.u16(at: 8, order)!) * 512
        let bonusLength = Int(bytes.u16(at: 10, order)!)
        extraSlots = bytes[12]
        maxBlockID = bytes.u64(at: 16, order)!
        byteOrder = order
        let size = Self.slotSize * (1 + Int(extraSlots))
        guard size <= bytes.count else {
            throw MOSError(.malformed, "dnode takes \(1 + Int(extraSlots)) slots, only \(bytes.count / Self.slotSize) are there")
        }
        let spill = flags & 0x4 != 0 ? 128 : 0  // DNODE_FLAG_SPILL_BLKPTR: the last 128 bytes are a block pointer
        let bonusOffset = Self.blockPointerOffset + 128 * nblkptr
        guard type == 0 || (nblkptr >= 1 && bonusOffset + spill <= size) else {
            throw MOSError(.malformed, "dnode of type \(type) says \(nblkptr) block pointers, which do not fit its \(size) bytes")
        }
        guard bonusLength <= size - spill - bonusOffset || type == 0 else {
            throw MOSError(.malformed, "dnode bonus of \(bonusLength) bytes at \(bonusOffset) runs past its \(size) bytes")
        }
        guard type == 0 || ((1...8).contains(levels) && dataBlockSize > 0
            && dataBlockSize <= Decompression.maximumLogicalSize
            && (levels == 1 || (10...17).contains(indirectBlockShift)))
        else {
            throw MOSError(.malformed, "dnode of type \(type) has \(levels) levels, indirect shift \(indirectBlockShift), block size \(dataBlockSize)")
        }
        var bps: [BlockPointer] = []
        if type != 0 {
            for i in 0..<nblkptr {
                bps.append(try BlockPointer(bytes: bytes, at: Self.blockPointerOffset + 128 * i, order: order))
            }
        }
        blockPointers = bps
        bonus = type == 0 ? [] : (bytes.slice(bonusOffset, bonusLength) ?? [])
    }

    /// The bonus buffer's `UInt64` at byte `offset`, in the dnode's byte order.
    public func bonusUInt64(at offset: Int) -> UInt64? { bonus.u64(at: offset, byteOrder) }
}

/// An object set: its meta-dnode and the blocks it reads through.
///
/// Reads of the meta-dnode's blocks are kept, so looking up many objects costs one read per 16 KiB block.
public final class ObjectSet {
    /// The name used in messages (`MOS`).
    public let name: String
    /// The meta-dnode (`os_meta_dnode`).
    public let metaDnode: Dnode
    /// `os_type` (1 = `DMU_OST_META`).
    public let type: UInt64?
    let blocks: PoolBlockReader
    private var dnodeBlocks: [UInt64: [UInt8]] = [:]
    private struct IndirectKey: Hashable { var object: UInt64, level: Int, blkid: UInt64 }
    private var indirectBlocks: [IndirectKey: [UInt8]] = [:]

    /// Reads the object set `rootBlockPointer` points at (`objset_phys_t`).
    ///
    /// - Throws: ``MOSError`` when the block does not read or is not an object set.
    public init(rootBlockPointer: BlockPointer, blocks: PoolBlockReader, name: String = "MOS") throws(MOSError) {
        self.name = name
        self.blocks = blocks
        let location = BlockLocation(objset: name, object: nil, level: 0, blkid: 0)
        let bytes = try blocks.read(rootBlockPointer, at: location)
        guard bytes.count >= 1024 else {
            throw MOSError(.malformed, "the object set block holds \(bytes.count) bytes, less than an objset_phys_t (1 KiB)", location: location)
        }
        let order = rootBlockPointer.byteOrder
        do throws(MOSError) {
            metaDnode = try Dnode(bytes: Array(bytes[0..<Dnode.slotSize]), order: order)
        } catch {
            throw MOSError(.malformed, "meta-dnode: \(error.message)", location: location)
        }
        type = bytes.u64(at: 704, order)
        guard metaDnode.type == 10 else {
            throw MOSError(.malformed, "the object set's meta-dnode has type \(metaDnode.type), not 10 (DMU_OT_DNODE)", location: location)
        }
    }

    /// The dnode of object `object`.
    ///
    /// - Throws: ``MOSError`` `.notFound` for a free or out-of-range object, or whatever reading the
    ///   meta-dnode's block throws.
    public func dnode(_ object: UInt64) throws(MOSError) -> Dnode {
        let perBlock = UInt64(metaDnode.dataBlockSize / Dnode.slotSize)
        guard perBlock > 0 else { throw MOSError(.malformed, "\(name) meta-dnode has a block size of \(metaDnode.dataBlockSize)") }
        let blkid = object / perBlock
        let slot = Int(object % perBlock)
        guard blkid <= metaDnode.maxBlockID else {
            throw MOSError(.notFound, "\(name) object \(object) is past the last dnode block (\(metaDnode.maxBlockID))")
        }
        let block: [UInt8]
        if let cached = dnodeBlocks[blkid] {
            block = cached
        } else {
            guard let read = try readBlock(of: metaDnode, object: 0, blkid: blkid) else {
                throw MOSError(.notFound, "\(name) object \(object) lies in a hole of the meta-dnode")
            }
            block = read
            dnodeBlocks[blkid] = read
        }
        let start = slot * Dnode.slotSize
        let extra = Int(block.u8(at: start + 12) ?? 0)
        let length = min(Dnode.slotSize * (1 + extra), block.count - start)
        guard let bytes = block.slice(start, length) else {
            throw MOSError(.malformed, "\(name) object \(object): slot \(slot) is outside its \(block.count)-byte dnode block")
        }
        let order = metaDnodeBlockOrder[blkid] ?? metaDnode.byteOrder
        let dnode: Dnode
        do throws(MOSError) {
            dnode = try Dnode(bytes: bytes, order: order)
        } catch {
            throw MOSError(.malformed, "\(name) object \(object): \(error.message)",
                           location: BlockLocation(objset: name, object: 0, level: 0, blkid: blkid))
        }
        guard dnode.type != 0 else { throw MOSError(.notFound, "\(name) object \(object) is free") }
        return dnode
    }

    /// Byte order of each meta-dnode block read (from its block pointer).
    private var metaDnodeBlockOrder: [UInt64: ByteOrder] = [:]

    /// The logical contents of data block `blkid` of `dnode`, or `nil` when it is a hole.
    ///
    /// Goes down through the indirect blocks: each holds `2^(indblkshift - 7)` block pointers.
    ///
    /// - Throws: ``MOSError`` for a block that does not read or a block id past `maxblkid`.
    public func readBlock(of dnode: Dnode, object: UInt64, blkid: UInt64) throws(MOSError) -> [UInt8]? {
        guard let bp = try blockPointer(of: dnode, object: object, blkid: blkid) else { return nil }
        let data = try blocks.read(bp, at: BlockLocation(objset: name, object: object, level: 0, blkid: blkid))
        if object == 0 { metaDnodeBlockOrder[blkid] = bp.byteOrder }
        return data
    }

    /// The level-0 block pointer of data block `blkid` of `dnode`, or `nil` when the block is a hole (at
    /// any level). Indirect blocks on the way are read and verified.
    public func blockPointer(of dnode: Dnode, object: UInt64, blkid: UInt64) throws(MOSError) -> BlockPointer? {
        guard blkid <= dnode.maxBlockID else {
            throw MOSError(.notFound, "\(name) object \(object) has no block \(blkid) (last is \(dnode.maxBlockID))")
        }
        let levels = Int(dnode.levels)
        let epbs = levels > 1 ? Int(dnode.indirectBlockShift) - 7 : 0
        func shifted(_ v: UInt64, _ by: Int) -> UInt64 { by >= 64 ? 0 : v >> UInt64(by) }
        let top = shifted(blkid, epbs * (levels - 1))
        guard top < UInt64(dnode.blockPointers.count) else {
            throw MOSError(.malformed, "\(name) object \(object) block \(blkid) is beyond its \(dnode.blockPointers.count) top block pointers")
        }
        var bp = dnode.blockPointers[Int(top)]
        var level = levels - 1
        while true {
            let location = BlockLocation(objset: name, object: object, level: level, blkid: shifted(blkid, epbs * level))
            if bp.isHole { return nil }
            guard bp.level == level else {
                throw MOSError(.malformed, "block pointer says level \(bp.level), expected \(level)", location: location)
            }
            if level == 0 { return bp }
            let key = IndirectKey(object: object, level: level, blkid: location.blkid)
            let data: [UInt8]
            if let cached = indirectBlocks[key] {
                data = cached
            } else {
                data = try blocks.read(bp, at: location)
                indirectBlocks[key] = data
            }
            let index = Int(shifted(blkid, epbs * (level - 1)) & ((1 << UInt64(epbs)) - 1))
            do throws(MOSError) {
                bp = try BlockPointer(bytes: data, at: index * 128, order: bp.byteOrder)
            } catch {
                throw MOSError(.malformed, error.message, location: location)
            }
            level -= 1
        }
    }

    /// The whole contents of an object: data blocks 0 through `maxblkid`, holes as zeros, cut to `length`
    /// bytes when given.
    ///
    /// - Throws: ``MOSError`` for a block that does not read, or a length larger than the object.
    public func readObject(_ object: UInt64, dnode: Dnode, length: UInt64? = nil) throws(MOSError) -> [UInt8] {
        let blockSize = UInt64(dnode.dataBlockSize)
        let (blocksNeeded, wrap) = dnode.maxBlockID.addingReportingOverflow(1)
        let (available, overflow) = blocksNeeded.multipliedReportingOverflow(by: blockSize)
        let wanted = length ?? available
        guard !wrap, !overflow, wanted <= available, wanted <= 256 << 20 else {
            throw MOSError(.malformed, "\(name) object \(object): \(wanted) bytes wanted, the object holds \(overflow || wrap ? "an impossible number of" : String(available))")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(wanted))
        var blkid: UInt64 = 0
        while UInt64(out.count) < wanted {
            let block = try readBlock(of: dnode, object: object, blkid: blkid) ?? [UInt8](repeating: 0, count: Int(blockSize))
            out += block.prefix(Int(wanted) - out.count)
            blkid += 1
        }
        return out
    }
}

// Fuzzes the MOS reader's parsers: block pointers (with a block read from an in-memory leaf), the three
// decompressors written in Swift and zlib's, microzap and fat ZAP blocks, and dnodes.
//
//   byte 0       which parser: 0 block pointer, 1 lzjb, 2 lz4, 3 zle, 4 gzip, 5 microzap, 6 fat ZAP leaf,
//                7 fat ZAP header, 8 dnode (others wrap around)
//   byte 1       flags: bit 0 big-endian (else little)
//   bytes 2-3    the logical size for the decompressors (little-endian, at most 64 KiB)
//   then         the payload: a block pointer's 128 bytes followed by the leaf's bytes, or the block
//
// Every parser must throw or return; the block pointer path also checks that a block read back has its
// logical size.

import FuzzSupport
import ZLabel

func fuzzOne(_ input: [UInt8]) {
    var reader = FuzzReader(input)
    let which = reader.u8() % 9
    let order: ByteOrder = reader.u8() & 1 != 0 ? .big : .little
    let logicalSize = Int(reader.u16())
    let payload = Array(reader.take(reader.remaining))
    switch which {
    case 0:
        guard let bp = try? BlockPointer(bytes: payload, at: 0, order: order) else { return }
        _ = bp.summary
        _ = bp.embeddedPayload
        let leaf = Array(payload.dropFirst(128))
        let blocks = PoolBlockReader(
            topology: PoolTopology(topLevels: [
                0: VdevNode(type: "disk", guid: 1, id: 0, ashift: 9),
                1: VdevNode(type: "mirror", guid: 2, id: 1, ashift: 9, children: [VdevNode(type: "disk", guid: 1)]),
                2: VdevNode(type: "raidz", guid: 3, id: 2, ashift: 9, nparity: 1, children: [
                    VdevNode(type: "disk", guid: 1), VdevNode(type: "disk", guid: 1), VdevNode(type: "disk", guid: 1),
                ]),
            ]),
            devices: LeafReader(guids: [1]) { _, offset, count in
                // The leaf is the fuzz bytes, at offset 4 MiB (where the first DVA offset 0 lands).
                let start = offset >= 4 << 20 ? offset - (4 << 20) : UInt64.max
                guard start <= UInt64(leaf.count), UInt64(count) <= UInt64(leaf.count) - start else {
                    throw MOSError(.io, "past the end")
                }
                return Array(leaf[Int(start)..<(Int(start) + count)])
            })
        if let data = try? blocks.read(bp, at: .mosRoot) {
            fuzzRequire(data.count == bp.logicalSize, "read \(data.count) bytes for lsize \(bp.logicalSize)")
        }
    case 1...4:
        let function: UInt8 = [3, 15, 14, 5][Int(which) - 1]
        if let out = try? Decompression.decompress(payload, function: function, logicalSize: logicalSize) {
            fuzzRequire(out.count == logicalSize, "decompressed \(out.count) bytes, wanted \(logicalSize)")
        }
    case 5: _ = try? ZAP.microEntries(payload, order: order)
    case 6: _ = try? ZAP.leafEntries(payload, order: order)
    case 7: _ = try? ZAP.header(payload, order: order)
    default: _ = try? Dnode(bytes: payload, order: order)
    }
}

fuzzMain { data, size in
    fuzzOne(fuzzBytes(data, size))
    return 0
}

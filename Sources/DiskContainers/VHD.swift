// VHD (Microsoft's Virtual Hard Disk Image Format Specification 1.0): big-endian, a 512-byte footer at the
// end of the file (and a copy at the start of a dynamic disk). Fixed: the raw disk, then the footer. Dynamic:
// a 1 KiB dynamic header ("cxsparse"), a block allocation table (BAT) of sector numbers, and blocks that
// start with a sector bitmap (bit set: the sector is in the file; clear: it reads as zeros).

import Synchronization

/// A fixed or dynamic VHD. Differencing disks (type 4) are refused: their data lives partly in the parent.
public final class VHDDisk: VirtualDisk {
    public var format: ContainerFormat { dynamic ? .vhdDynamic : .vhdFixed }
    /// The footer's Current Size. (QEMU sizes images created by Virtual PC or by older QEMU from their CHS
    /// geometry instead; images written by current qemu-img have the two equal.)
    public let virtualSize: UInt64
    public let dynamic: Bool
    /// Block size of a dynamic disk (bytes).
    public let blockSize: UInt64

    let reader: any ContainerReader
    let bat: [UInt32]
    let batOffset: UInt64
    let bitmapBytes: UInt64
    let reserved: [Range<UInt64>]
    private let bitmaps = Mutex<[Int: [UInt8]]>([:])

    static let unallocated: UInt32 = 0xFFFF_FFFF

    /// The one's complement of the byte sum with the checksum field (4 bytes at `at`) counted as zero.
    static func checksum(_ b: [UInt8], skipping at: Int) -> UInt32 {
        var sum: UInt32 = 0
        for (i, x) in b.enumerated() where !(at..<(at + 4)).contains(i) { sum &+= UInt32(x) }
        return ~sum
    }

    public init(_ reader: any ContainerReader) throws(ContainerError) {
        self.reader = reader
        guard reader.size >= 512 else {
            throw ContainerError(.truncated, "VHD footer", at: 0, "the file (\(reader.size) bytes) is shorter than a footer")
        }
        var footerAt = reader.size - 512
        var footer = try reader.bytes("VHD footer", at: footerAt, count: 512)
        if Array(footer.prefix(8)) != Array("conectix".utf8) {
            // A dynamic disk keeps a copy at the start; a damaged end (or a cut file) falls back to it.
            let head = try reader.bytes("VHD footer copy", at: 0, count: 512)
            guard Array(head.prefix(8)) == Array("conectix".utf8) else {
                throw ContainerError(.malformed, "VHD footer", at: footerAt, "no VHD cookie \"conectix\" at the end or the start")
            }
            footerAt = 0
            footer = head
        }
        let s = footerAt == 0 ? "VHD footer copy" : "VHD footer"
        let f = Fields(footer)
        guard Self.checksum(footer, skipping: 64) == f.be32(64) else {
            throw ContainerError(.malformed, s, at: footerAt + 64, "checksum 0x\(String(f.be32(64), radix: 16)) does not match the footer")
        }
        let type = f.be32(60)
        virtualSize = f.be64(48)
        guard virtualSize <= 1 << 50 else {
            throw ContainerError(.malformed, s, at: footerAt + 48, "current size \(virtualSize) is impossible")
        }
        switch type {
        case 2:
            dynamic = false
            blockSize = 0
            bat = []
            batOffset = 0
            bitmapBytes = 0
            reserved = []
            guard footerAt != 0 else {
                throw ContainerError(.truncated, "VHD footer", at: reader.size - 512, "a fixed VHD without its footer at the end")
            }
            guard virtualSize <= footerAt else {
                throw ContainerError(.truncated, s, at: footerAt + 48, "the footer says \(virtualSize) bytes of disk, but only \(footerAt) precede it")
            }
        case 3:
            dynamic = true
            let headerAt = f.be64(16)
            let hs = "VHD dynamic header"
            let hb = try reader.bytes(hs, at: headerAt, count: 1024)
            let d = Fields(hb)
            guard Array(hb.prefix(8)) == Array("cxsparse".utf8) else {
                throw ContainerError(.malformed, hs, at: headerAt, "no cookie \"cxsparse\"")
            }
            guard Self.checksum(hb, skipping: 36) == d.be32(36) else {
                throw ContainerError(.malformed, hs, at: headerAt + 36, "checksum does not match the header")
            }
            batOffset = d.be64(16)
            let entries = UInt64(d.be32(28))
            blockSize = UInt64(d.be32(32))
            guard blockSize >= 512, blockSize <= 1 << 28, blockSize & (blockSize - 1) == 0 else {
                throw ContainerError(.malformed, hs, at: headerAt + 32, "block size \(blockSize) is not a power of two from 512 B to 256 MiB")
            }
            guard entries >= ceilDiv(virtualSize, blockSize) else {
                throw ContainerError(.malformed, hs, at: headerAt + 28, "\(entries) BAT entries map less than the \(virtualSize)-byte disk")
            }
            guard entries <= 1 << 26 else {
                throw ContainerError(.malformed, hs, at: headerAt + 28, "\(entries) BAT entries is impossible")
            }
            let used = Int(ceilDiv(virtualSize, blockSize))
            let b = Fields(try reader.bytes("VHD block allocation table", at: batOffset, count: used * 4))
            bat = (0..<used).map { b.be32($0 * 4) }
            bitmapBytes = ceilDiv(blockSize / 512, 8 * 512) * 512
            reserved = [0..<512, headerAt..<(headerAt + 1024), batOffset..<(batOffset + entries * 4)]
            for (i, sector) in bat.enumerated() where sector != Self.unallocated {
                let at = batOffset + UInt64(i) * 4
                let start = UInt64(sector) * 512
                let length = bitmapBytes + min(blockSize, virtualSize - UInt64(i) * blockSize)
                try reader.checkInside("VHD block \(i) (BAT entry at byte \(at))", at: start, count: length)
                if reserved.contains(where: { overlaps($0, start..<(start + length)) }) {
                    throw ContainerError(.loop, "VHD block allocation table", at: at, "block \(i) at byte \(start) overlaps the footer copy, the dynamic header or the BAT")
                }
            }
        case 4:
            throw ContainerError(.unsupported, s, at: footerAt + 60, "a differencing VHD: its data lives partly in the parent disk; merge it first")
        default:
            throw ContainerError(.malformed, s, at: footerAt + 60, "disk type \(type) (2 fixed, 3 dynamic)")
        }
    }

    func bitmap(_ block: Int) throws(ContainerError) -> [UInt8] {
        if let b = bitmaps.withLock({ $0[block] }) { return b }
        let b = try reader.bytes("VHD sector bitmap of block \(block)", at: UInt64(bat[block]) * 512, count: Int(bitmapBytes))
        bitmaps.withLock { c in
            if c.count >= 4096 { c.removeAll(keepingCapacity: true) }
            c[block] = b
        }
        return b
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        guard dynamic else {
            try reader.fill(buffer, "VHD fixed disk data", at: offset)
            return
        }
        let end = offset + UInt64(buffer.count)
        var done = 0
        while done < buffer.count {
            let pos = offset + UInt64(done)
            let block = Int(pos / blockSize)
            let blockStart = UInt64(block) * blockSize
            let stop = min(blockStart + blockSize, end)
            guard bat[block] != Self.unallocated else {
                let n = Int(stop - pos)
                UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)]).initializeMemory(as: UInt8.self, repeating: 0)
                done += n
                continue
            }
            let map = try bitmap(block)
            func present(_ at: UInt64) -> Bool {
                let sector = (at - blockStart) / 512
                return map[Int(sector / 8)] & (0x80 >> UInt8(sector % 8)) != 0
            }
            // The run of sectors that share this sector's state.
            let state = present(pos)
            var runEnd = (pos / 512 + 1) * 512
            while runEnd < stop && present(runEnd) == state { runEnd += 512 }
            let n = Int(min(runEnd, stop) - pos)
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            if state {
                try reader.fill(out, "VHD block \(block)", at: UInt64(bat[block]) * 512 + bitmapBytes + (pos - blockStart))
            } else {
                out.initializeMemory(as: UInt8.self, repeating: 0)
            }
            done += n
        }
    }

    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] {
        guard dynamic else { return virtualSize == 0 ? [] : [0..<virtualSize] }
        var out: [Range<UInt64>] = []
        for block in bat.indices where bat[block] != Self.unallocated {
            let map = try bitmap(block)
            let start = UInt64(block) * blockSize
            let sectors = ceilDiv(min(blockSize, virtualSize - start), 512)
            for s in 0..<sectors where map[Int(s / 8)] & (0x80 >> UInt8(s % 8)) != 0 {
                appendExtent(&out, (start + s * 512)..<min(start + (s + 1) * 512, virtualSize))
            }
        }
        return out
    }
}

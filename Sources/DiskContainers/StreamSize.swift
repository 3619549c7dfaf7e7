// The size a compressed raw image declares without being decompressed: the content sizes in its zstd frame
// headers (found by walking the frames' block headers), or its xz streams' indexes (read from the end, through
// liblzma). A gzip member records its size only modulo 4 GiB, so gzip declares nothing.

import CLZMA
import CZstd

extension StreamedDisk {
    /// The decompressed size the file's own structures record, or nil when they do not record it all (a zstd
    /// frame written without its content size, a gzip file) or do not add up. A nil answer is never an error:
    /// the caller measures by decoding, which names any damage.
    public static func declaredSize(_ reader: any ContainerReader, compression: StreamCompression) -> UInt64? {
        switch compression {
        case .zstd: return zstdDeclaredSize(reader)
        case .xz: return xzDeclaredSize(reader)
        case .gzip: return nil
        }
    }

    /// Walks the frames: each header's content size, then its blocks' 3-byte headers to the frame's end.
    static func zstdDeclaredSize(_ reader: any ContainerReader) -> UInt64? {
        var cursor = ByteCursor(reader)
        var total: UInt64 = 0
        var blocks = 0
        while cursor.offset < reader.size {
            guard let magic = cursor.le(4) else { return nil }
            if magic & 0xFFFF_FFF0 == 0x184D_2A50 {  // a skippable frame: its length, then that many bytes
                guard let length = cursor.le(4), cursor.skip(length) else { return nil }
                continue
            }
            guard magic == 0xFD2F_B528, let descriptor = cursor.le(1) else { return nil }
            let singleSegment = descriptor & 0x20 != 0
            let headerSize = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][Int(descriptor & 3)]
                + [singleSegment ? 1 : 0, 2, 4, 8][Int(descriptor >> 6)]
            guard let header = cursor.bytes(at: cursor.offset - 5, count: headerSize) else { return nil }
            let size = header.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
            guard size < UInt64.max - 1, let sum = add(total, UInt64(size)) else { return nil }  // unknown, or an error
            total = sum
            guard cursor.skip(UInt64(headerSize - 5)) else { return nil }
            while true {
                guard let block = cursor.le(3) else { return nil }
                blocks += 1
                guard blocks <= 1 << 26 else { return nil }
                let last = block & 1 != 0
                let length = block >> 3
                switch (block >> 1) & 3 {
                case 0, 2: guard cursor.skip(length) else { return nil }  // raw, compressed
                case 1: guard cursor.skip(1) else { return nil }  // RLE: one byte
                default: return nil
                }
                if last { break }
            }
            if descriptor & 0x04 != 0 { guard cursor.skip(4) else { return nil } }  // content checksum
        }
        return total
    }

    /// Reads the streams from the end: padding, footer, index (decoded by liblzma), back to the stream's start.
    static func xzDeclaredSize(_ reader: any ContainerReader) -> UInt64? {
        var end = reader.size
        var total: UInt64 = 0
        var streams = 0
        while end > 0 {
            guard end >= 32, end % 4 == 0, streams < 1 << 16,
                  let footer = try? reader.bytes("xz stream footer", at: end - 12, count: 12)
            else { return nil }
            if footer.allSatisfy({ $0 == 0 }) {  // stream padding, in 4-byte groups
                end -= 4
                continue
            }
            var flags = lzma_stream_flags()
            guard footer.withUnsafeBytes({ lzma_stream_footer_decode(&flags, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }) == LZMA_OK,
                  flags.backward_size >= 8, flags.backward_size <= 1 << 30, flags.backward_size + 12 <= end,
                  let indexBytes = try? reader.bytes("xz index", at: end - 12 - flags.backward_size, count: Int(flags.backward_size))
            else { return nil }
            var index: OpaquePointer?
            var memlimit: UInt64 = 256 << 20
            var position = 0
            let r = indexBytes.withUnsafeBytes {
                lzma_index_buffer_decode(&index, &memlimit, nil, $0.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                         &position, $0.count)
            }
            guard r == LZMA_OK, let index else { return nil }
            let streamSize = lzma_index_stream_size(index)
            let size = lzma_index_uncompressed_size(index)
            lzma_index_end(index, nil)
            guard streamSize <= end, let sum = add(total, size) else { return nil }
            total = sum
            end -= streamSize
            streams += 1
        }
        return streams > 0 ? total : nil
    }
}

/// Reads a file front to back in 1 MiB windows, for walking small headers without a read each.
struct ByteCursor {
    let reader: any ContainerReader
    private(set) var offset: UInt64 = 0
    private var window: [UInt8] = []
    private var windowStart: UInt64 = 0

    init(_ reader: any ContainerReader) { self.reader = reader }

    /// `count` bytes at `at`, or nil past the end or on a read error.
    mutating func bytes(at: UInt64, count: Int) -> [UInt8]? {
        guard let end = add(at, UInt64(count)), end <= reader.size else { return nil }
        if at < windowStart || end > windowStart + UInt64(window.count) {
            let length = Int(min(max(UInt64(count), 1 << 20), reader.size - at))
            guard let w = try? reader.bytes("compressed stream", at: at, count: length) else { return nil }
            window = w
            windowStart = at
        }
        let from = Int(at - windowStart)
        return Array(window[from..<(from + count)])
    }

    /// The next `count` (≤ 8) bytes as a little-endian number; the cursor moves past them.
    mutating func le(_ count: Int) -> UInt64? {
        guard let b = bytes(at: offset, count: count) else { return nil }
        offset += UInt64(count)
        return b.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Moves the cursor `count` bytes on; false past the end.
    mutating func skip(_ count: UInt64) -> Bool {
        guard let next = add(offset, count), next <= reader.size else { return false }
        offset = next
        return true
    }
}

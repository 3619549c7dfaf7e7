// Block decompression (`enum zio_compress`, module/zfs/zio_compress.c and the per-algorithm files).
//
// A compressed block is stored as `psize` bytes and decompresses to exactly `lsize`. Each function here takes
// the stored bytes and the logical size, checks every offset and length against both buffers, and throws
// rather than reading or writing outside them: the bytes come from disk.

import CZlib

/// The decompressors a ZFS block may need to reach the MOS config.
public enum Decompression {
    /// Decompresses `input` (a block's physical bytes) with ZFS compression function `function` into
    /// `logicalSize` bytes.
    ///
    /// Supported: off (2), lzjb (3), gzip-1…9 (5–13), zle (14), lz4 (15). Anything else, zstd (16) included,
    /// is refused.
    ///
    /// - Throws: ``MOSError`` `.unsupported` for another function, `.malformed` when the data does not
    ///   decompress to `logicalSize` bytes.
    public static func decompress(_ input: [UInt8], function: UInt8, logicalSize: Int) throws(MOSError) -> [UInt8] {
        guard logicalSize >= 0, logicalSize <= maximumLogicalSize else {
            throw MOSError(.malformed, "logical size \(logicalSize) is out of range")
        }
        switch function {
        case 2:
            guard input.count >= logicalSize else {
                throw MOSError(.malformed, "uncompressed block holds \(input.count) bytes, less than its logical size \(logicalSize)")
            }
            return Array(input[..<logicalSize])
        case 3: return try lzjb(input, logicalSize: logicalSize)
        case 5...13: return try gzip(input, logicalSize: logicalSize)
        case 14: return try zle(input, logicalSize: logicalSize)
        case 15: return try lz4(input, logicalSize: logicalSize)
        default:
            throw MOSError(.unsupported, "compression \(BlockPointer.compressionName(function)) (\(function)) is not supported by this reader (supported: off, lzjb, gzip-1…9, zle, lz4)")
        }
    }

    /// The largest logical block size ZFS writes (`SPA_MAXBLOCKSIZE`, 16 MiB).
    public static let maximumLogicalSize = 16 << 20

    /// LZJB (`lzjb_decompress`): a copy-map byte before every eight items, least significant bit first; a set
    /// bit is a 2-byte match of `(b0 >> 2) + 3` bytes at distance `((b0 << 8) | b1) & 0x3FF`, a clear bit one
    /// literal byte.
    public static func lzjb(_ input: [UInt8], logicalSize: Int) throws(MOSError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: logicalSize)
        var src = 0, dst = 0
        var copymap: UInt8 = 0
        var copymask = 0x80
        while dst < logicalSize {
            copymask <<= 1
            if copymask == 0x100 {
                copymask = 1
                guard src < input.count else { throw truncated("lzjb", src) }
                copymap = input[src]
                src += 1
            }
            if Int(copymap) & copymask != 0 {
                guard src + 1 < input.count else { throw truncated("lzjb", src) }
                var length = Int(input[src] >> 2) + 3
                let distance = (Int(input[src]) << 8 | Int(input[src + 1])) & 0x3FF
                src += 2
                guard distance <= dst else {
                    throw MOSError(.malformed, "lzjb match at input byte \(src - 2) reaches \(distance) bytes back from output byte \(dst)")
                }
                length = min(length, logicalSize - dst)
                var from = dst - distance
                for _ in 0..<length {
                    out[dst] = out[from]
                    dst += 1
                    from += 1
                }
            } else {
                guard src < input.count else { throw truncated("lzjb", src) }
                out[dst] = input[src]
                dst += 1
                src += 1
            }
        }
        return out
    }

    /// LZ4 as ZFS stores it (`lz4_decompress_zfs`): a 4-byte big-endian length of the compressed data, then
    /// one raw LZ4 block. Output shorter than `logicalSize` is zero-filled, as the block's tail is.
    public static func lz4(_ input: [UInt8], logicalSize: Int) throws(MOSError) -> [UInt8] {
        guard input.count >= 4 else { throw truncated("lz4", 0) }
        let length = Int(input[0]) << 24 | Int(input[1]) << 16 | Int(input[2]) << 8 | Int(input[3])
        guard length <= input.count - 4 else {
            throw MOSError(.malformed, "lz4 header says \(length) compressed bytes, the block holds \(input.count - 4)")
        }
        return try lz4Block(Array(input[4..<(4 + length)]), logicalSize: logicalSize)
    }

    /// A raw LZ4 block (the LZ4 block format: token, literals, 2-byte little-endian offset, match), decoded
    /// into at most `logicalSize` bytes.
    public static func lz4Block(_ input: [UInt8], logicalSize: Int) throws(MOSError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: logicalSize)
        var src = 0, dst = 0
        func extendedLength(_ base: Int) throws(MOSError) -> Int {
            var length = base
            guard base == 15 else { return length }
            while true {
                guard src < input.count else { throw truncated("lz4", src) }
                let b = Int(input[src])
                src += 1
                length += b
                guard length <= logicalSize + 255 else {
                    throw MOSError(.malformed, "lz4 length at input byte \(src) exceeds the block size")
                }
                if b != 255 { return length }
            }
        }
        while src < input.count {
            let token = Int(input[src])
            src += 1
            let literals = try extendedLength(token >> 4)
            guard literals <= input.count - src else { throw truncated("lz4", src) }
            guard literals <= logicalSize - dst else {
                throw MOSError(.malformed, "lz4 literals at input byte \(src) run past the \(logicalSize)-byte output")
            }
            for i in 0..<literals { out[dst + i] = input[src + i] }
            src += literals
            dst += literals
            if src == input.count { break }  // the last sequence has literals only
            guard src + 1 < input.count else { throw truncated("lz4", src) }
            let distance = Int(input[src]) | Int(input[src + 1]) << 8
            src += 2
            guard distance > 0, distance <= dst else {
                throw MOSError(.malformed, "lz4 match at input byte \(src - 2) has offset \(distance) at output byte \(dst)")
            }
            let length = try extendedLength(token & 0xF) + 4
            guard length <= logicalSize - dst else {
                throw MOSError(.malformed, "lz4 match at input byte \(src) runs past the \(logicalSize)-byte output")
            }
            var from = dst - distance
            for _ in 0..<length {
                out[dst] = out[from]
                dst += 1
                from += 1
            }
        }
        return out
    }

    /// ZLE (`zle_decompress`, n = 64): a length byte `L`; `L + 1 <= 64` copies `L + 1` literal bytes,
    /// otherwise `L + 1 - 64` zero bytes follow. The output must come out at exactly `logicalSize`.
    public static func zle(_ input: [UInt8], logicalSize: Int, n: Int = 64) throws(MOSError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: logicalSize)
        var src = 0, dst = 0
        while src < input.count && dst < logicalSize {
            var length = 1 + Int(input[src])
            src += 1
            if length <= n {
                guard length <= input.count - src, length <= logicalSize - dst else {
                    throw MOSError(.malformed, "zle literal run of \(length) at input byte \(src - 1) runs past a buffer")
                }
                for i in 0..<length { out[dst + i] = input[src + i] }
                src += length
                dst += length
            } else {
                length -= n
                guard length <= logicalSize - dst else {
                    throw MOSError(.malformed, "zle zero run of \(length) at input byte \(src - 1) runs past the output")
                }
                dst += length
            }
        }
        guard dst == logicalSize else {
            throw MOSError(.malformed, "zle data ends at output byte \(dst), short of \(logicalSize)")
        }
        return out
    }

    /// gzip-1…9 (`gzip_decompress`): one zlib stream (RFC 1950), inflated with the system zlib.
    public static func gzip(_ input: [UInt8], logicalSize: Int) throws(MOSError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: logicalSize)
        var outLength = uLong(logicalSize)
        let status = out.withUnsafeMutableBufferPointer { o in
            input.withUnsafeBufferPointer { i in
                uncompress(o.baseAddress, &outLength, i.baseAddress, uLong(i.count))
            }
        }
        guard status == Z_OK else {
            throw MOSError(.malformed, "the zlib stream does not inflate to \(logicalSize) bytes (zlib status \(status))")
        }
        return out
    }

    private static func truncated(_ what: String, _ at: Int) -> MOSError {
        MOSError(.malformed, "\(what) data ends early at input byte \(at)")
    }
}

// One-shot decompression of a compressed qcow2 cluster or VMDK grain, through the system zlib and libzstd.

import CZlib
import CZstd

enum Inflate {
    /// The header a deflate stream carries.
    enum Wrapper {
        /// Raw deflate (RFC 1951): qcow2's compressed clusters.
        case raw
        /// zlib (RFC 1950) or gzip, detected: VMDK's compressed grains.
        case zlibOrGzip

        var windowBits: Int32 { self == .raw ? -15 : 15 + 32 }
    }

    /// Inflates `input` into all of `output`. Input after the end of the deflate stream is ignored (clusters
    /// are stored in whole sectors); a stream that ends before `output` is full, or does not inflate, throws.
    static func exact(
        _ input: [UInt8], into output: UnsafeMutableRawBufferPointer, wrapper: Wrapper,
        structure: String, at offset: UInt64
    ) throws(ContainerError) {
        var stream = z_stream()
        guard inflateInit2_(&stream, wrapper.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ContainerError(.io, structure, at: offset, "zlib could not start a decompression")
        }
        defer { inflateEnd(&stream) }
        let status: Int32 = input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = uInt(inBuf.count)
            stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            return inflate(&stream, Z_FINISH)
        }
        let produced = output.count - Int(stream.avail_out)
        // Z_BUF_ERROR with a full output: the stream had more to give than the cluster holds; take the cluster.
        guard produced == output.count, status == Z_STREAM_END || status == Z_BUF_ERROR || status == Z_OK else {
            let why = status == Z_DATA_ERROR ? "is not a valid deflate stream" : "ends early (zlib status \(status))"
            throw ContainerError(
                .malformed, structure, at: offset,
                "compressed data of \(input.count) bytes \(why): \(produced) of \(output.count) bytes inflated")
        }
    }
}

enum Unzstd {
    /// Decompresses zstd frames in `input` into all of `output`; trailing input is ignored.
    static func exact(
        _ input: [UInt8], into output: UnsafeMutableRawBufferPointer, structure: String, at offset: UInt64
    ) throws(ContainerError) {
        guard let ctx = ZSTD_createDStream() else {
            throw ContainerError(.io, structure, at: offset, "libzstd could not start a decompression")
        }
        defer { ZSTD_freeDStream(ctx) }
        var produced = 0
        var failure: String?
        input.withUnsafeBytes { inBuf in
            var inb = ZSTD_inBuffer(src: inBuf.baseAddress, size: inBuf.count, pos: 0)
            var outb = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            while outb.pos < outb.size {
                let before = (inb.pos, outb.pos)
                let r = ZSTD_decompressStream(ctx, &outb, &inb)
                if ZSTD_isError(r) != 0 {
                    failure = String(cString: ZSTD_getErrorName(r))
                    break
                }
                if before == (inb.pos, outb.pos) { break }  // no progress: input used up
            }
            produced = outb.pos
        }
        guard failure == nil, produced == output.count else {
            throw ContainerError(
                .malformed, structure, at: offset,
                "zstd data of \(input.count) bytes \(failure.map { "does not decompress (\($0))" } ?? "ends early"): \(produced) of \(output.count) bytes")
        }
    }
}

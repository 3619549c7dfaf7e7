// zstd-, xz- and gzip-compressed raw images, decompressed as a stream through the system libraries (libzstd,
// liblzma, zlib). Not random access: the input is read once, front to back, and never written anywhere.

import CLZMA
import CZlib
import CZstd

/// The compression of a compressed raw image.
public enum StreamCompression: String, Sendable, Hashable, CaseIterable {
    case zstd, xz, gzip
}

/// A compressed raw image, read once from the start. Concatenated frames (zstd), streams (xz) and members
/// (gzip) are one image. Input that ends inside a frame is an error naming the compressed byte offset.
public final class CompressedRawStream {
    public let compression: StreamCompression
    /// Decompressed bytes delivered so far; at the end, the image's size.
    public private(set) var position: UInt64 = 0
    /// Compressed bytes consumed so far.
    public private(set) var inputPosition: UInt64 = 0
    public private(set) var isAtEnd = false

    let reader: any ContainerReader
    private var input: [UInt8]
    private var inStart = 0
    private var inEnd = 0
    private var nextRead: UInt64 = 0
    private var eof = false
    private var decoder: any StreamDecoder

    /// Starts decompressing `reader`'s bytes; `chunk` is how much compressed input is read at a time.
    public init(_ reader: any ContainerReader, compression: StreamCompression, chunk: Int = 1 << 20) throws(ContainerError) {
        self.reader = reader
        self.compression = compression
        input = [UInt8](repeating: 0, count: max(chunk, 4096))
        switch compression {
        case .zstd: decoder = try ZstdDecoder()
        case .xz: decoder = try XZDecoder()
        case .gzip: decoder = try GzipDecoder()
        }
    }

    var structure: String { "\(compression) stream" }

    /// Fills `buffer` with the next decompressed bytes; returns how many, fewer than `buffer.count` only at the
    /// end of the image.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ContainerError) -> Int {
        var outPos = 0
        while outPos < buffer.count && !isAtEnd {
            if inStart == inEnd && !eof {
                let n = Int(min(UInt64(input.count), reader.size - nextRead))
                if n == 0 {
                    eof = true
                } else {
                    let at = nextRead
                    try typed {
                        try input.withUnsafeMutableBytes { b in
                            try reader.fill(UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), structure, at: at)
                        }
                    }
                    inStart = 0
                    inEnd = n
                    nextRead += UInt64(n)
                }
            }
            let step = try typed {
                try input.withUnsafeBytes { inb in
                try decoder.step(
                    UnsafeRawBufferPointer(rebasing: inb[inStart..<inEnd]),
                    UnsafeMutableRawBufferPointer(rebasing: buffer[outPos...]), finish: eof,
                    structure: structure, inputOffset: inputPosition)
                }
            }
            inStart += step.consumed
            inputPosition += UInt64(step.consumed)
            outPos += step.produced
            position += UInt64(step.produced)
            if step.consumed == 0 && step.produced == 0 {
                if eof {
                    guard decoder.atBoundary else {
                        throw ContainerError(
                            .truncated, structure, at: inputPosition,
                            "the compressed stream ends early (after \(position) decompressed bytes)")
                    }
                    isAtEnd = true
                } else if inStart < inEnd {
                    throw ContainerError(.malformed, structure, at: inputPosition, "the decoder makes no progress")
                }
            }
        }
        return outPos
    }

    /// Reads the whole image in blocks of `blockSize` bytes (the last may be shorter) and calls `body` with the
    /// virtual offset and bytes of each block that is not all zeros. Returns the image's size.
    @discardableResult
    public func forEachNonZeroBlock(
        blockSize: Int, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void
    ) throws -> UInt64 {
        precondition(blockSize > 0 && blockSize % 8 == 0)
        var block = [UInt8](repeating: 0, count: blockSize)
        while true {
            let start = position
            let n = try block.withMutableBytes { (b) throws(ContainerError) in try read(into: b) }
            if n == 0 { break }
            try block.withUnsafeBytes { b in
                let part = UnsafeRawBufferPointer(rebasing: b[0..<n])
                if !isAllZero(part) { try body(start, part) }
            }
            if n < blockSize { break }
        }
        return position
    }
}

/// True when every byte is zero. Reads eight bytes at a time and stops at the first 64 bytes that are not all
/// zero, so a block of data is told from a zero block after a few words (the upload asks this of every block).
public func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let n = bytes.count
    var i = 0
    var acc: UInt64 = 0
    while i + 64 <= n {
        for k in stride(from: 0, to: 64, by: 8) { acc |= bytes.loadUnaligned(fromByteOffset: i + k, as: UInt64.self) }
        if acc != 0 { return false }
        i += 64
    }
    while i < n {
        acc |= UInt64(bytes[i])
        i += 1
    }
    return acc == 0
}

struct DecodeStep {
    var consumed: Int
    var produced: Int
}

protocol StreamDecoder {
    /// Decodes from `input` into `output`. `finish`: no input follows.
    mutating func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, finish: Bool,
        structure: String, inputOffset: UInt64
    ) throws(ContainerError) -> DecodeStep
    /// True when the input so far ends exactly at the end of a frame, stream or member.
    var atBoundary: Bool { get }
}

final class ZstdDecoder: StreamDecoder {
    let ctx: OpaquePointer
    var atBoundary = true
    init() throws(ContainerError) {
        guard let c = ZSTD_createDStream() else { throw ContainerError(.io, "zstd stream", at: 0, "libzstd could not start") }
        ctx = c
        ZSTD_initDStream(ctx)
    }
    deinit { ZSTD_freeDStream(ctx) }

    func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, finish: Bool,
        structure: String, inputOffset: UInt64
    ) throws(ContainerError) -> DecodeStep {
        if input.isEmpty && atBoundary { return DecodeStep(consumed: 0, produced: 0) }
        var inb = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outb = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let r = ZSTD_decompressStream(ctx, &outb, &inb)
        if ZSTD_isError(r) != 0 {
            throw ContainerError(.malformed, structure, at: inputOffset, "zstd: \(String(cString: ZSTD_getErrorName(r)))")
        }
        atBoundary = r == 0
        return DecodeStep(consumed: inb.pos, produced: outb.pos)
    }
}

final class XZDecoder: StreamDecoder {
    var stream = lzma_stream()
    var atBoundary = false
    init() throws(ContainerError) {
        let r = lzma_stream_decoder(&stream, UInt64.max, 0x08 /* LZMA_CONCATENATED */)
        guard r == LZMA_OK else { throw ContainerError(.io, "xz stream", at: 0, "liblzma could not start (\(r.rawValue))") }
    }
    deinit { lzma_end(&stream) }

    func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, finish: Bool,
        structure: String, inputOffset: UInt64
    ) throws(ContainerError) -> DecodeStep {
        if atBoundary { return DecodeStep(consumed: 0, produced: 0) }
        stream.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.avail_in = input.count
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = output.count
        let r = lzma_code(&stream, finish ? LZMA_FINISH : LZMA_RUN)
        let step = DecodeStep(consumed: input.count - stream.avail_in, produced: output.count - stream.avail_out)
        switch r {
        case LZMA_OK: break
        case LZMA_STREAM_END: atBoundary = true
        case LZMA_BUF_ERROR where finish:
            throw ContainerError(.truncated, structure, at: inputOffset + UInt64(step.consumed), "the xz stream ends early")
        case LZMA_BUF_ERROR: break
        case LZMA_FORMAT_ERROR: throw ContainerError(.malformed, structure, at: inputOffset, "not an xz stream")
        case LZMA_DATA_ERROR: throw ContainerError(.malformed, structure, at: inputOffset, "the xz data is corrupt")
        case LZMA_MEMLIMIT_ERROR, LZMA_MEM_ERROR: throw ContainerError(.io, structure, at: inputOffset, "liblzma ran out of memory")
        default: throw ContainerError(.malformed, structure, at: inputOffset, "liblzma error \(r.rawValue)")
        }
        return step
    }
}

final class GzipDecoder: StreamDecoder {
    var stream = z_stream()
    var atBoundary = true
    /// The last member ended; the next input starts a new one.
    var needsReset = false
    init() throws(ContainerError) {
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ContainerError(.io, "gzip stream", at: 0, "zlib could not start")
        }
    }
    deinit { inflateEnd(&stream) }

    func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, finish: Bool,
        structure: String, inputOffset: UInt64
    ) throws(ContainerError) -> DecodeStep {
        // At a member's end with no input left there is nothing pending; otherwise zlib may still hold output.
        if input.isEmpty && atBoundary { return DecodeStep(consumed: 0, produced: 0) }
        if needsReset {
            inflateReset(&stream)
            needsReset = false
        }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        let r = inflate(&stream, Z_NO_FLUSH)
        let step = DecodeStep(consumed: input.count - Int(stream.avail_in), produced: output.count - Int(stream.avail_out))
        switch r {
        case Z_OK, Z_BUF_ERROR:
            if step.consumed > 0 || step.produced > 0 { atBoundary = false }
        case Z_STREAM_END:
            atBoundary = true
            needsReset = true
        case Z_DATA_ERROR: throw ContainerError(.malformed, structure, at: inputOffset, "the gzip data is corrupt")
        case Z_MEM_ERROR: throw ContainerError(.io, structure, at: inputOffset, "zlib ran out of memory")
        default: throw ContainerError(.malformed, structure, at: inputOffset, "zlib error \(r)")
        }
        return step
    }
}

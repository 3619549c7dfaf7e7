// Fuzzes the compressed-raw stream reader (zstd, xz, gzip through the system libraries). Byte 0 picks the
// compression (mod 3); the rest is the compressed file in FuzzContainerSupport's sparse format. A stream must
// end or throw; decompressed output is capped at 64 MiB; the non-zero blocks it yields are inside the output
// and not all zero.

import DiskContainers
import FuzzContainerSupport
import FuzzSupport

fuzzMain { data, size in
    let input = fuzzBytes(data, size)
    guard let first = input.first else { return 0 }
    let compression = StreamCompression.allCases[Int(first) % 3]
    let file = SparseFile(Array(input.dropFirst()))
    guard let stream = try? CompressedRawStream(file, compression: compression, chunk: 4096) else { return 0 }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var total: UInt64 = 0
    while total < 64 << 20 {
        guard let n = try? buffer.withUnsafeMutableBytes({ try stream.read(into: $0) }) else { return 0 }
        fuzzRequire(n <= buffer.count, "read returned \(n) for a \(buffer.count)-byte buffer")
        total += UInt64(n)
        fuzzRequire(stream.position == total, "position \(stream.position) but \(total) bytes delivered")
        if n < buffer.count { break }
    }
    fuzzRequire(stream.inputPosition <= file.size, "consumed more input than the file holds")
    return 0
}

// Fuzzes the compressed-raw stream reader (zstd, xz, gzip through the system libraries) and the random-access
// disk over it. Byte 0 picks the compression (mod 3); the rest is the compressed file in FuzzContainerSupport's
// sparse format. A stream must end or throw; decompressed output is capped at 64 MiB. When it ends within 1 MiB,
// a `StreamedDisk` sized from the file's headers must read the same bytes or, if the headers lie, fail; one
// sized by measuring must open it with the same size, read every byte as the stream delivered it (in an order that
// goes backwards, through a cache smaller than the image), and map every non-zero byte inside its data extents.

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
    var output: [UInt8] = []
    while total < 64 << 20 {
        guard let n = try? buffer.withUnsafeMutableBytes({ try stream.read(into: $0) }) else { return 0 }
        fuzzRequire(n <= buffer.count, "read returned \(n) for a \(buffer.count)-byte buffer")
        total += UInt64(n)
        fuzzRequire(stream.position == total, "position \(stream.position) but \(total) bytes delivered")
        if total <= 1 << 20 { output += buffer[0..<n] }
        if n < buffer.count { break }
    }
    fuzzRequire(stream.inputPosition <= file.size, "consumed more input than the file holds")
    guard stream.isAtEnd, total <= 1 << 20 else { return 0 }

    // Sized from the headers: a size they declare wrongly must make a whole read fail, never return other bytes.
    if let declared = try? StreamedDisk(file, compression: compression) {
        let whole = try? declared.read(at: 0, count: Int(min(declared.virtualSize, 2 << 20)))
        if declared.virtualSize == total {
            fuzzRequire(whole == output, "the disk sized from its headers reads other bytes than the stream")
        } else {
            fuzzRequire(whole == nil, "headers declare \(declared.virtualSize) bytes, the stream has \(total), and a whole read succeeded")
        }
    }
    let disk: StreamedDisk
    do {
        disk = try StreamedDisk(file, compression: compression, useDeclaredSize: false, cacheBytes: 128 << 10, lookbehind: 64 << 10)
    } catch {
        fuzzFail("the stream decoded to its end, but StreamedDisk refused it: \(error)")
    }
    fuzzRequire(disk.virtualSize == total, "StreamedDisk measured \(disk.virtualSize) bytes, the stream gave \(total)")
    let piece = 48 * 1024 + 7
    let starts = Array(stride(from: 0, to: output.count, by: piece))
    // The second half backwards, then the first half: reads behind the decoder and behind the cache.
    for start in starts[(starts.count / 2)...].reversed() + starts[..<(starts.count / 2)] {
        let count = min(piece, output.count - start)
        guard let got = try? disk.read(at: UInt64(start), count: count) else { fuzzFail("read at \(start) failed") }
        fuzzRequire(got[...] == output[start..<(start + count)], "bytes at \(start) differ from the stream's")
    }
    guard let extents = try? disk.dataExtents() else { fuzzFail("dataExtents failed") }
    var covered = 0
    for e in extents {
        fuzzRequire(e.upperBound <= total && e.lowerBound < e.upperBound, "extent \(e) outside the image")
        fuzzRequire(output[covered..<Int(e.lowerBound)].allSatisfy { $0 == 0 }, "non-zero byte before extent \(e)")
        covered = Int(e.upperBound)
    }
    fuzzRequire(output[covered...].allSatisfy { $0 == 0 }, "non-zero byte after the last extent")
    return 0
}

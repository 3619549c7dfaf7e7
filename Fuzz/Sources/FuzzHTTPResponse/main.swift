// Fuzzes the HTTP/1.1 response reader that AWSCore's socket transport feeds with whatever the network delivers.
//
// Input: byte 0 chooses the reader (bit 0: the answer to a HEAD request; bits 1-2: the body limit, 64 B, 4 KiB,
// 64 KiB or 1 MiB), byte 1 the size of the pieces the rest is fed in (0: all at once). The rest is the stream.
// Malformed input must throw, never trap. And, or the target traps and libFuzzer keeps the input:
//   - fed whole and fed in pieces, the reader gives the same response or the same error (reason and offset);
//   - a body never exceeds the limit, and an error's offset lies within the bytes fed (or at their end);
//   - bytes after a complete response are refused (the client never pipelines).

import FuzzSupport
import HTTPWire

enum Outcome: Equatable {
    case response(status: Int, headers: [String], body: [UInt8], keepAlive: Bool)
    case malformed(HTTP1ResponseReader.Malformed)
}

func run(_ stream: ArraySlice<UInt8>, piece: Int, head: Bool, limit: Int) -> Outcome {
    var reader = HTTP1ResponseReader(maxHead: 16 << 10, maxBody: limit, headRequest: head)
    var start = stream.startIndex
    var complete: HTTP1Response?
    do {
        // Bytes after a complete response must be refused: keep feeding, the next piece has to throw.
        while start < stream.endIndex {
            let end = piece == 0 ? stream.endIndex : min(start + piece, stream.endIndex)
            let r = try Array(stream[start..<end]).withUnsafeBytes { (p) throws(HTTP1ResponseReader.Malformed) in
                try reader.feed(p)
            }
            fuzzRequire(complete == nil, "the reader took bytes after a complete response")
            start = end
            if let r { complete = r }
        }
        let r = try complete ?? reader.finish()
        return .response(status: r.status, headers: r.headers.map { $0.name + ":" + $0.value }, body: r.body,
                         keepAlive: reader.keepAlive)
    } catch let m as HTTP1ResponseReader.Malformed {
        return .malformed(m)
    } catch {
        fuzzFail("the reader threw something other than Malformed: \(error)")
    }
}

fuzzMain { data, count in
    var input = FuzzReader(fuzzBytes(data, count))
    let flags = input.u8()
    let piece = Int(input.u8())
    let limit = [64, 4096, 65536, 1 << 20][Int(flags >> 1) & 3]
    let stream = input.take(input.remaining)
    let whole = run(stream, piece: 0, head: flags & 1 == 1, limit: limit)
    let pieces = run(stream, piece: piece, head: flags & 1 == 1, limit: limit)
    fuzzRequire(whole == pieces, "fed whole: \(whole); in pieces of \(piece): \(pieces)")
    switch whole {
    case .response(let status, _, let body, _):
        fuzzRequire(status >= 200 && status <= 999, "status \(status)")
        fuzzRequire(body.count <= limit, "body of \(body.count) bytes over the limit \(limit)")
    case .malformed(let m):
        fuzzRequire(m.offset >= 0 && m.offset <= stream.count, "offset \(m.offset) outside \(stream.count) bytes")
    }
    return 0
}

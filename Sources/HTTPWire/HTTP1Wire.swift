// HTTP/1.1 on the wire, without I/O: the bytes of a request head, and an incremental response reader that takes
// whatever a socket delivered. The reader never trusts the peer: every length is checked against limits, and
// anything it cannot parse ends in `Malformed` (with the byte offset), never a trap. AWSCore's socket transport
// moves the bytes; Fuzz/ feeds this module malformed ones.

/// The head of an HTTP/1.1 request.
public enum HTTP1RequestHead {
    /// A request that cannot be written as HTTP/1.1.
    public struct Invalid: Error, Sendable {
        /// What is wrong.
        public var reason: String
    }

    /// The request line and header fields, ending with the blank line.
    ///
    /// `Host` is `host` unless `headers` has one; `Content-Length` is `bodyLength` (any in `headers` is
    /// dropped) and is sent when the body is not empty or `alwaysLength` is true (PUT and POST). A
    /// `Transfer-Encoding` in `headers` is dropped: the body is always sent whole.
    public static func make(
        method: String, target: String, headers: [(name: String, value: String)], host: String, bodyLength: Int,
        alwaysLength: Bool
    ) throws(Invalid) -> [UInt8] {
        guard isToken(method.utf8) else { throw Invalid(reason: "bad method \"\(method)\"") }
        guard target.utf8.first == UInt8(ascii: "/"), !target.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw Invalid(reason: "bad request target")
        }
        var out: [UInt8] = []
        out.reserveCapacity(256 + headers.count * 64)
        out.append(contentsOf: method.utf8)
        out.append(0x20)
        out.append(contentsOf: target.utf8)
        out.append(contentsOf: " HTTP/1.1\r\n".utf8)
        var haveHost = false
        for (name, value) in headers {
            guard isToken(name.utf8) else { throw Invalid(reason: "bad header name \"\(name)\"") }
            guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw Invalid(reason: "header \(name) has a line break")
            }
            if equalsIgnoringCase(name.utf8, "content-length") || equalsIgnoringCase(name.utf8, "transfer-encoding") {
                continue
            }
            if equalsIgnoringCase(name.utf8, "host") { haveHost = true }
            append(&out, name, value)
        }
        if !haveHost { append(&out, "Host", host) }
        if bodyLength > 0 || alwaysLength { append(&out, "Content-Length", String(bodyLength)) }
        out.append(contentsOf: "\r\n".utf8)
        return out
    }

    private static func append(_ out: inout [UInt8], _ name: String, _ value: String) {
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: ": ".utf8)
        out.append(contentsOf: value.utf8)
        out.append(contentsOf: "\r\n".utf8)
    }
}

/// RFC 9110 token characters, at least one.
func isToken(_ s: some Collection<UInt8>) -> Bool {
    !s.isEmpty && s.allSatisfy(isTokenByte)
}

func isTokenByte(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(c)
    }
}

/// A response as read: status, header fields in order, body.
public struct HTTP1Response: Sendable {
    /// The status code (200 and up: interim responses are skipped).
    public var status: Int
    /// Header fields as received, values trimmed.
    public var headers: [(name: String, value: String)]
    /// The body, unframed.
    public var body: [UInt8]
}

/// ASCII case-insensitive comparison of bytes with a lower-case literal.
func equalsIgnoringCase(_ a: some Collection<UInt8>, _ lower: String) -> Bool {
    guard a.count == lower.utf8.count else { return false }
    return zip(a, lower.utf8).allSatisfy { x, y in (x >= 65 && x <= 90 ? x | 0x20 : x) == y }
}

/// Reads one HTTP/1.1 response from bytes fed in pieces as they arrive.
///
/// Call ``feed(_:)`` with each piece until it returns a response, and ``finish()`` when the peer closes. Interim
/// (1xx) responses are skipped. The body is framed by `Transfer-Encoding: chunked` (which wins over any length),
/// by `Content-Length`, or by the connection's end; responses to HEAD, and 204 and 304, have none.
public struct HTTP1ResponseReader: Sendable {
    /// A response the reader cannot accept.
    public struct Malformed: Error, Sendable, Equatable {
        /// What is wrong.
        public var reason: String
        /// Where, counted in bytes from the start of the response stream.
        public var offset: Int
    }

    /// Largest head (status line and fields) accepted.
    public let maxHead: Int
    /// Largest body accepted.
    public let maxBody: Int
    /// True for the response to a HEAD request.
    public let headRequest: Bool

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    private var state = State.head
    private var pending: [UInt8] = []  // bytes of a line (or head) not yet complete
    private var consumed = 0  // bytes of the stream before `pending`
    private var status = 0
    private var headers: [(name: String, value: String)] = []
    private var body: [UInt8] = []
    private var closeAfter = false
    private var http10 = false

    /// True once any byte has arrived.
    public private(set) var receivedAny = false

    /// True when the connection may carry another request after this response.
    public var keepAlive: Bool {
        guard case .done = state else { return false }
        return !closeAfter && !http10
    }

    /// Creates a reader for one response.
    public init(maxHead: Int = 64 << 10, maxBody: Int = 8 << 20, headRequest: Bool = false) {
        self.maxHead = maxHead
        self.maxBody = maxBody
        self.headRequest = headRequest
    }

    /// Takes the next bytes; returns the response once it is complete.
    ///
    /// Bytes after the end of the response are an error: this client never pipelines.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(Malformed) -> HTTP1Response? {
        if !bytes.isEmpty { receivedAny = true }
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .done:
                throw Malformed(reason: "bytes after the end of the response", offset: consumed + i)
            case .head:
                // Gather until the blank line; search only the new bytes (and the three before them).
                let start = pending.count
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i...]))
                guard let end = Self.findHeadEnd(pending, from: max(0, start - 3)) else {
                    if pending.count > maxHead {
                        throw Malformed(reason: "response head longer than \(maxHead) bytes", offset: consumed)
                    }
                    i = n
                    continue
                }
                guard end <= maxHead else {
                    throw Malformed(reason: "response head longer than \(maxHead) bytes", offset: consumed)
                }
                let used = end - start  // bytes of this piece that belong to the head
                guard used > 0 else { throw Malformed(reason: "response head framing", offset: consumed) }
                let headBytes = Array(pending[..<end])
                let headOffset = consumed
                pending.removeAll(keepingCapacity: true)
                consumed += end
                i += used
                try parseHead(headBytes, at: headOffset)
            case .fixedBody(let remaining):
                let left = takeBody(bytes, at: &i, upTo: remaining)
                state = left == 0 ? .done : .fixedBody(remaining: left)
            case .chunkData(let remaining):
                let left = takeBody(bytes, at: &i, upTo: remaining)
                state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
            case .untilClose:
                guard body.count + (n - i) <= maxBody else {
                    // The offset of the first byte over the limit, however the stream was cut into pieces.
                    throw Malformed(
                        reason: "response body longer than \(maxBody) bytes", offset: consumed + (maxBody - body.count))
                }
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i...]))
                consumed += n - i
                i = n
            case .chunkSize, .chunkDataEnd, .trailers:
                // Line-based states: gather one line.
                guard let nl = UnsafeRawBufferPointer(rebasing: bytes[i...]).firstIndex(of: 0x0A) else {
                    pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i...]))
                    if pending.count > 8192 {
                        throw Malformed(reason: "chunk framing line longer than 8192 bytes", offset: consumed)
                    }
                    i = n
                    continue
                }
                pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + nl + 1)]))
                i += nl + 1
                let line = pending
                let lineOffset = consumed
                pending.removeAll(keepingCapacity: true)
                consumed += line.count
                try takeLine(line, at: lineOffset)
            }
            if case .done = state, i < n {
                throw Malformed(reason: "bytes after the end of the response", offset: consumed)
            }
        }
        if case .done = state { return response() }
        return nil
    }

    /// Appends up to `remaining` body bytes from `bytes` at `i` (advancing it); returns how many are still due.
    private mutating func takeBody(_ bytes: UnsafeRawBufferPointer, at i: inout Int, upTo remaining: Int) -> Int {
        let take = min(remaining, bytes.count - i)
        body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
        i += take
        consumed += take
        return remaining - take
    }

    /// The peer closed the connection: returns the response if the close ends it, or throws.
    public mutating func finish() throws(Malformed) -> HTTP1Response {
        switch state {
        case .done:
            return response()
        case .untilClose:
            state = .done
            closeAfter = true
            return response()
        case .head where !receivedAny:
            throw Malformed(reason: "the connection closed before a response", offset: 0)
        default:
            throw Malformed(reason: "the connection closed in the middle of the response", offset: consumed + pending.count)
        }
    }

    private func response() -> HTTP1Response {
        HTTP1Response(status: status, headers: headers, body: body)
    }

    /// The index just past the blank line (CRLF CRLF, or bare LF LF) that ends a head, searching from `from`.
    private static func findHeadEnd(_ b: [UInt8], from: Int) -> Int? {
        var k = from
        while k < b.count {
            if b[k] == 0x0A {
                if k + 1 < b.count, b[k + 1] == 0x0A { return k + 2 }
                if k + 2 < b.count, b[k + 1] == 0x0D, b[k + 2] == 0x0A { return k + 3 }
            }
            k += 1
        }
        return nil
    }

    private mutating func parseHead(_ head: [UInt8], at offset: Int) throws(Malformed) {
        // Split into lines, dropping the CR before each LF.
        var lines: [(bytes: ArraySlice<UInt8>, offset: Int)] = []
        var start = 0
        for k in head.indices where head[k] == 0x0A {
            var end = k
            if end > start, head[end - 1] == 0x0D { end -= 1 }
            lines.append((head[start..<end], offset + start))
            start = k + 1
        }
        while let last = lines.last, last.bytes.isEmpty { lines.removeLast() }
        guard let first = lines.first else { throw Malformed(reason: "empty response head", offset: offset) }

        // Status line: HTTP/1.x SP 3DIGIT [SP reason]
        let sl = Array(first.bytes)
        guard sl.count >= 12, sl[0..<7].elementsEqual("HTTP/1.".utf8), sl[7] == UInt8(ascii: "0") || sl[7] == UInt8(ascii: "1"),
            sl[8] == 0x20, sl[9...11].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), sl.count == 12 || sl[12] == 0x20
        else { throw Malformed(reason: "bad status line", offset: first.offset) }
        let code = Int(sl[9] - 0x30) * 100 + Int(sl[10] - 0x30) * 10 + Int(sl[11] - 0x30)
        guard code >= 100 else { throw Malformed(reason: "bad status code \(code)", offset: first.offset + 9) }

        var fields: [(name: String, value: String)] = []
        var contentLength: Int?
        var chunked = false
        var close = false
        for (line, lineOffset) in lines.dropFirst() {
            if let c = line.first, c == 0x20 || c == 0x09 {
                throw Malformed(reason: "folded header line", offset: lineOffset)
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw Malformed(reason: "header line without a colon", offset: lineOffset)
            }
            let name = line[line.startIndex..<colon]
            guard isToken(name) else { throw Malformed(reason: "bad header name", offset: lineOffset) }
            var value = line[(colon + 1)...]
            while let c = value.first, c == 0x20 || c == 0x09 { value = value.dropFirst() }
            while let c = value.last, c == 0x20 || c == 0x09 { value = value.dropLast() }
            guard !value.contains(where: { $0 == 0 || $0 == 0x0D || $0 == 0x0A }) else {
                throw Malformed(reason: "control character in a header value", offset: lineOffset)
            }
            if equalsIgnoringCase(name, "content-length") {
                guard let v = Self.decimal(value) else {
                    throw Malformed(reason: "bad Content-Length", offset: lineOffset)
                }
                if let c = contentLength, c != v {
                    throw Malformed(reason: "two different Content-Length values", offset: lineOffset)
                }
                contentLength = v
            } else if equalsIgnoringCase(name, "transfer-encoding") {
                let codings = value.split(separator: UInt8(ascii: ",")).map { c in
                    c.drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed().drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
                }
                guard let lastCoding = codings.last, equalsIgnoringCase(lastCoding, "chunked") else {
                    throw Malformed(reason: "unsupported Transfer-Encoding", offset: lineOffset)
                }
                chunked = true
            } else if equalsIgnoringCase(name, "connection") {
                for token in value.split(separator: UInt8(ascii: ",")) {
                    let t = token.drop(while: { $0 == 0x20 }).reversed().drop(while: { $0 == 0x20 }).reversed()
                    if equalsIgnoringCase(t, "close") { close = true }
                }
            }
            fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }

        if code < 200 {
            // Interim response (100 Continue, 103 Early Hints): skip it, the real one follows.
            return
        }
        status = code
        headers = fields
        closeAfter = close
        http10 = sl[7] == UInt8(ascii: "0")
        if headRequest || code == 204 || code == 304 {
            state = .done
        } else if chunked {
            state = .chunkSize
        } else if let length = contentLength {
            guard length <= maxBody else {
                throw Malformed(reason: "response body of \(length) bytes is over the limit of \(maxBody)", offset: offset)
            }
            body.reserveCapacity(length)
            state = length == 0 ? .done : .fixedBody(remaining: length)
        } else {
            state = .untilClose
            closeAfter = true
        }
    }

    private mutating func takeLine(_ raw: [UInt8], at offset: Int) throws(Malformed) {
        var line = raw[...]
        if line.last == 0x0A { line = line.dropLast() }
        if line.last == 0x0D { line = line.dropLast() }
        switch state {
        case .chunkSize:
            // size in hex, then optional ";extensions"
            let sizePart = line.prefix(while: { $0 != UInt8(ascii: ";") })
                .reversed().drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
            guard let size = Self.hex(sizePart) else { throw Malformed(reason: "bad chunk size", offset: offset) }
            if size == 0 {
                state = .trailers
                return
            }
            guard size <= maxBody - body.count else {
                throw Malformed(reason: "response body longer than \(maxBody) bytes", offset: offset)
            }
            state = .chunkData(remaining: size)
        case .chunkDataEnd:
            guard line.isEmpty else { throw Malformed(reason: "chunk not followed by CRLF", offset: offset) }
            state = .chunkSize
        case .trailers:
            // Trailer fields are read and dropped; the empty line ends the response.
            if line.isEmpty { state = .done }
        default:
            break
        }
    }

    /// A non-negative decimal without sign or blanks, no larger than `Int.max`.
    static func decimal(_ s: some Collection<UInt8>) -> Int? {
        guard !s.isEmpty, s.count <= 18 else { return nil }
        var v = 0
        for c in s {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            v = v * 10 + Int(c - 0x30)
        }
        return v
    }

    /// A hexadecimal size of at most 15 digits.
    static func hex(_ s: some Collection<UInt8>) -> Int? {
        guard !s.isEmpty, s.count <= 15 else { return nil }
        var v = 0
        for c in s {
            let d: Int
            switch c {
            case 0x30...0x39: d = Int(c - 0x30)
            case 0x41...0x46: d = Int(c - 0x41 + 10)
            case 0x61...0x66: d = Int(c - 0x61 + 10)
            default: return nil
            }
            v = v << 4 | d
        }
        return v
    }
}

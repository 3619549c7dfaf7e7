@testable import AWSCore
import HTTPWire
import Foundation
import NIOCore
import Testing

@Suite("HTTP/1.1 wire format")
struct HTTP1WireTests {
    static let endpoint = Endpoint(scheme: "http", host: "127.0.0.1", port: 8080)

    /// Feeds `bytes` in pieces cut at `cuts`; returns the response, or nil if it is still incomplete.
    static func read(
        _ bytes: [UInt8], cuts: [Int] = [], maxBody: Int = 1 << 20, head: Bool = false, finish: Bool = false
    ) throws -> HTTPResponse? {
        var reader = HTTP1ResponseReader(maxHead: 1024, maxBody: maxBody, headRequest: head)
        var start = 0
        for cut in cuts + [bytes.count] where cut >= start {
            let piece = Array(bytes[start..<cut])
            start = cut
            let r = try piece.withUnsafeBytes { try reader.feed($0) }
            if let r {
                #expect(start == bytes.count, "response complete before its last byte")
                return HTTPResponse(r)
            }
        }
        return finish ? HTTPResponse(try reader.finish()) : nil
    }

    static func malformed(_ text: String, maxBody: Int = 1 << 20, finish: Bool = false) -> HTTP1ResponseReader.Malformed? {
        do {
            _ = try read(Array(text.utf8), maxBody: maxBody, finish: finish)
            return nil
        } catch {
            return error as? HTTP1ResponseReader.Malformed
        }
    }

    @Test("the request head has the method, target, caller's fields, Host and the body's length")
    func requestHead() throws {
        var r = AWSRequest(
            method: "PUT", endpoint: Self.endpoint, path: "/snapshots/s-1/blocks/7", query: [("a", "b c")],
            headers: [("X-Amz-Date", "20261206T000000Z"), ("Content-Length", "999"), ("Transfer-Encoding", "chunked")],
            body: [1, 2, 3])
        let text = String(decoding: try HTTP1Request.head(r), as: UTF8.self)
        #expect(text == "PUT /snapshots/s-1/blocks/7?a=b%20c HTTP/1.1\r\nX-Amz-Date: 20261206T000000Z\r\n"
            + "Host: 127.0.0.1:8080\r\nContent-Length: 3\r\n\r\n")
        r.method = "POST"
        r.body = []
        r.headers = [("host", "example")]
        let post = String(decoding: try HTTP1Request.head(r), as: UTF8.self)
        #expect(post.hasSuffix("host: example\r\nContent-Length: 0\r\n\r\n"))
        r.method = "GET"
        #expect(!String(decoding: try HTTP1Request.head(r), as: UTF8.self).contains("Content-Length"))
    }

    @Test("a request that cannot be written as HTTP/1.1 is refused, not sent", arguments: [
        ("GE T", "X", "v"), ("GET", "Bad Name", "v"), ("GET", "X", "a\r\nInjected: 1"), ("GET", "", "v"),
    ])
    func requestRefused(method: String, name: String, value: String) {
        let r = AWSRequest(method: method, endpoint: Self.endpoint, path: "/", headers: [(name, value)])
        #expect(throws: HTTP1RequestHead.Invalid.self) { try HTTP1Request.head(r) }
    }

    static let framed = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
    static let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"

    @Test("a response cut at every byte reads the same as whole", arguments: [framed, chunked])
    func everySplit(text: String) throws {
        let bytes = Array(text.utf8)
        let whole = try #require(try Self.read(bytes))
        #expect(whole.status == 200)
        #expect(whole.text == "hello world")
        for cut in 0...bytes.count {
            let r = try #require(try Self.read(bytes, cuts: [cut]))
            #expect(r.text == "hello world" && r.status == 200)
        }
        for a in stride(from: 1, to: bytes.count, by: 3) {
            let r = try #require(try Self.read(bytes, cuts: Array(stride(from: a, to: bytes.count, by: 2))))
            #expect(r.text == "hello world")
        }
    }

    @Test("headers are kept in order with their values trimmed; keep-alive follows Connection and the version")
    func headersAndKeepAlive() throws {
        var reader = HTTP1ResponseReader()
        let text = "HTTP/1.1 404 Not Found\r\nX-A:  one \r\nx-amzn-RequestId: r-1\r\nContent-Length: 0\r\n\r\n"
        let r = HTTPResponse(try #require(try Array(text.utf8).withUnsafeBytes { try reader.feed($0) }))
        #expect(r.status == 404)
        #expect(r.headers.map(\.name) == ["X-A", "x-amzn-RequestId", "Content-Length"])
        #expect(r.header("x-a") == "one")
        #expect(reader.keepAlive)
        for (head, keep) in [("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n", false), ("HTTP/1.0 200 OK\r\n", false)] {
            var rd = HTTP1ResponseReader()
            let t = head + "Content-Length: 0\r\n\r\n"
            _ = try Array(t.utf8).withUnsafeBytes { try rd.feed($0) }
            #expect(rd.keepAlive == keep, "\(head)")
        }
    }

    @Test("interim responses are skipped; 204, 304 and HEAD have no body; no length means until close")
    func framingRules() throws {
        let interim = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
        #expect(try Self.read(Array(interim.utf8))?.status == 201)
        #expect(try Self.read(Array("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".utf8))?.body == [])
        #expect(try Self.read(Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".utf8), head: true)?.body == [])
        let open = Array("HTTP/1.1 200 OK\r\n\r\nto the end".utf8)
        #expect(try Self.read(open) == nil)
        #expect(try Self.read(open, finish: true)?.text == "to the end")
        // Chunked wins over a length.
        let both = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
        #expect(try Self.read(Array(both.utf8))?.text == "ab")
        // A bare LF ends lines as well.
        #expect(try Self.read(Array("HTTP/1.1 200 OK\nContent-Length: 1\n\nx".utf8))?.text == "x")
    }

    @Test("malformed responses throw with the byte offset of the fault", arguments: [
        ("HTTP/2 200 OK\r\n\r\n", 0, "bad status line"),
        ("HTTP/1.1 2x0 OK\r\n\r\n", 0, "bad status line"),
        ("HTTP/1.1 099 X\r\n\r\n", 9, "bad status code"),
        ("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 17, "without a colon"),
        ("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", 17, "folded"),
        ("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 17, "bad header name"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n", 17, "bad Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 17, "bad Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 17, "bad Content-Length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 36, "two different"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 17, "Transfer-Encoding"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 47, "bad chunk size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n", 47, "bad chunk size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 51, "not followed by CRLF"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", 39, "after the end"),
    ])
    func malformed(text: String, offset: Int, reason: String) {
        let e = Self.malformed(text)
        #expect(e?.offset == offset, "\(String(describing: e))")
        #expect(e?.reason.contains(reason) == true, "\(String(describing: e))")
    }

    @Test("limits: a head or body over the limit, and a close in the middle, are errors")
    func limits() {
        #expect(Self.malformed("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n")?.reason
            .contains("head longer") == true)
        #expect(Self.malformed("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", maxBody: 1000)?.reason
            .contains("over the limit") == true)
        #expect(Self.malformed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d1\r\n", maxBody: 2000)?.reason
            .contains("longer than") == true)
        #expect(Self.malformed("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "b", count: 1001), maxBody: 1000)?.reason
            .contains("longer than") == true)
        #expect(Self.malformed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", finish: true)?.reason
            .contains("in the middle") == true)
        #expect(Self.malformed("", finish: true)?.reason.contains("before a response") == true)
    }

    @Test("an over-long body is reported at its first byte over the limit, however the stream is cut")
    func limitOffsetIndependentOfPieces() {
        // Found by FuzzHTTPResponse: the offset was that of the piece that crossed the limit.
        let bytes = Array(("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "b", count: 100)).utf8)
        for cuts in [[], [30], Array(stride(from: 1, to: bytes.count, by: 3))] {
            do {
                _ = try Self.read(bytes, cuts: cuts, maxBody: 64)
                Issue.record("no error for cuts \(cuts)")
            } catch {
                #expect((error as? HTTP1ResponseReader.Malformed)?.offset == 19 + 64, "cuts \(cuts)")
            }
        }
    }

    @Test("random and mutated bytes never trap the reader")
    func noTrap() {
        var rng = SystemRandomNumberGenerator()
        let seeds = [Self.framed, Self.chunked].map { Array($0.utf8) }
        for i in 0..<4000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = seeds[i % 4 / 2]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let k = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[k] = UInt8.random(in: 0...255, using: &rng)
                }
            } else {
                bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            let cut = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &rng)
            _ = try? Self.read(bytes, cuts: [cut], maxBody: 64, finish: true)
        }
    }
}

@testable import AWSCore
import Crypto
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Tests/Peers/http_wire_peer.py, started for one test: a server whose misbehaviour the request path chooses.
final class WirePeer: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Peers/http_wire_peer.py").path
    let process = Process()
    let stdin = Pipe()
    let port: Int

    init(tls: (cert: String, key: String)? = nil) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script] + (tls.map { ["--tls", $0.cert, $0.key] } ?? [])
        process.standardInput = stdin
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while true {
            let b = out.fileHandleForReading.readData(ofLength: 1)
            if b.isEmpty || b == Data([0x0A]) { break }
            line += b
        }
        let doc = try JSONSerialization.jsonObject(with: line) as? [String: Any]
        port = try #require(doc?["port"] as? Int, "the wire peer did not start")
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// A certificate for `localhost` only (no IP address in it), its key, and a scratch directory.
struct TestCertificate {
    let dir: String
    var cert: String { dir + "/cert.pem" }
    var key: String { dir + "/key.pem" }

    init() throws {
        dir = NSTemporaryDirectory() + "zlabel-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
        ]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "openssl could not make a test certificate")
    }
}

@Suite("socket transport against a real server", .serialized)
struct SocketTransportTests {
    static func request(_ peer: WirePeer, _ method: String, _ path: String, body: [UInt8] = [], https: Bool = false,
                        host: String = "127.0.0.1") -> AWSRequest {
        AWSRequest(method: method, endpoint: Endpoint(scheme: https ? "https" : "http", host: host, port: peer.port),
                   path: path, body: body)
    }

    static func echo(_ r: HTTPResponse) throws -> [String: Any] {
        #expect(r.status == 200)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
    }

    static func failure(_ t: SocketTransport, _ r: AWSRequest, timeout: Duration = .seconds(5)) async -> TransportError? {
        do {
            _ = try await t.send(r, timeout: timeout)
            return nil
        } catch {
            return error
        }
    }

    /// Keeps idle connections far longer than a loaded CI machine may take between two requests of a test
    /// (the default 20 s was once exceeded there), so that reuse counts depend on the transport alone.
    static let patient = SocketTransport.Configuration(idleTimeout: .seconds(3600))

    @Test("requests reuse one kept-alive connection, and bodies arrive whole")
    func keepAlive() async throws {
        let peer = try WirePeer()
        let t = SocketTransport(configuration: Self.patient)
        defer { t.shutdown() }
        var connections = Set<Int>()
        let bodies = (0..<5).map { i in [UInt8](repeating: UInt8(i), count: 512 << 10) }
        for (i, body) in bodies.enumerated() {
            let doc = try Self.echo(try await t.send(Self.request(peer, "PUT", "/echo", body: body), timeout: .seconds(5)))
            #expect(doc["length"] as? Int == body.count)
            #expect(doc["sha256"] as? String == SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined())
            #expect(doc["request"] as? Int == i + 1)
            connections.insert(try #require(doc["connection"] as? Int))
        }
        #expect(connections.count == 1)
        #expect(t.statistics == .init(opened: 1, reused: 4, discarded: 0))
    }

    @Test("concurrent requests each get their own connection and their own answer")
    func concurrent() async throws {
        let peer = try WirePeer()
        let t = SocketTransport(configuration: .init(maxThreads: 8, maxIdleConnectionsPerHost: 8, idleTimeout: .seconds(3600)))
        defer { t.shutdown() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<32 {
                group.addTask {
                    let body = [UInt8](repeating: UInt8(i), count: 100_000 + i)
                    let doc = try Self.echo(try await t.send(Self.request(peer, "PUT", "/echo", body: body), timeout: .seconds(10)))
                    #expect(doc["length"] as? Int == body.count)
                    #expect(doc["sha256"] as? String == SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined())
                }
            }
            try await group.waitForAll()
        }
        let s = t.statistics
        #expect(s.opened + s.reused == 32)
        #expect(s.opened <= 8, "at most one connection per thread: \(s)")
    }

    @Test("a connection the server closed while idle is dropped, not reused")
    func closedWhileIdleDropped() async throws {
        let peer = try WirePeer()
        let t = SocketTransport(configuration: Self.patient)
        defer { t.shutdown() }
        #expect(try await t.send(Self.request(peer, "GET", "/close-after"), timeout: .seconds(5)).text == "bye")
        try await Task.sleep(for: .milliseconds(100))
        _ = try Self.echo(try await t.send(Self.request(peer, "PUT", "/echo", body: [1]), timeout: .seconds(5)))
        #expect(t.statistics == .init(opened: 2, reused: 0, discarded: 1))
    }

    @Test("a reused connection that dies without an answer is a lost connection, for the retry policy to count")
    func droppedAnswer() async throws {
        let peer = try WirePeer()
        let t = SocketTransport(configuration: Self.patient)
        defer { t.shutdown() }
        #expect(try await t.send(Self.request(peer, "GET", "/drop-next"), timeout: .seconds(5)).text == "armed")
        let e = await Self.failure(t, Self.request(peer, "PUT", "/echo", body: [1, 2, 3]))
        #expect(e?.kind == .connectionLost)
        #expect(e?.message.contains("closed before a response") == true, "\(String(describing: e))")
        let doc = try Self.echo(try await t.send(Self.request(peer, "PUT", "/echo", body: [1, 2, 3]), timeout: .seconds(5)))
        #expect(doc["request"] as? Int == 1, "answered on a new connection")
        #expect(t.statistics.opened == 2)
    }

    @Test("a silent server ends the attempt at its deadline")
    func deadline() async throws {
        let peer = try WirePeer()
        let t = SocketTransport()
        defer { t.shutdown() }
        let start = ContinuousClock.now
        let e = await Self.failure(t, Self.request(peer, "GET", "/stall"), timeout: .milliseconds(400))
        let took = ContinuousClock.now - start
        #expect(e?.kind == .timeout)
        #expect(took >= .milliseconds(390) && took < .seconds(5), "took \(took)")
    }

    @Test("the read timeout ends a wait for a silent server before the deadline")
    func readTimeout() async throws {
        let peer = try WirePeer()
        let t = SocketTransport(configuration: .init(readTimeout: .milliseconds(300)))
        defer { t.shutdown() }
        let e = await Self.failure(t, Self.request(peer, "GET", "/stall"), timeout: .seconds(30))
        #expect(e?.kind == .timeout)
    }

    @Test("cancelling the task ends the request")
    func cancel() async throws {
        let peer = try WirePeer()
        let t = SocketTransport()
        defer { t.shutdown() }
        let start = ContinuousClock.now
        let task = Task { await Self.failure(t, Self.request(peer, "GET", "/stall"), timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let e = await task.value
        #expect(e?.kind == .cancelled)
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("a transport released without shutdown lets its threads go")
    func threadsEndWithoutShutdown() async throws {
        let peer = try WirePeer()
        var t: SocketTransport? = SocketTransport(configuration: .init(maxThreads: 6))
        let threads = try #require(t?.threads)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask { [t] in _ = try await t!.send(Self.request(peer, "GET", "/echo"), timeout: .seconds(10)) }
            }
            try await group.waitForAll()
        }
        #expect(threads.liveThreads > 0)
        t = nil
        for _ in 0..<100 where threads.liveThreads > 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(threads.liveThreads == 0)
    }

    @Test("nothing listening: a connect error that says so")
    func refused() async throws {
        // A port that was just free: bind, read it, close.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: a.sin_port))
        close(fd)
        let t = SocketTransport()
        defer { t.shutdown() }
        let r = AWSRequest(method: "GET", endpoint: Endpoint(scheme: "http", host: "127.0.0.1", port: port), path: "/")
        let e = await Self.failure(t, r)
        #expect(e?.kind == .connect)
        #expect(e?.message == "connection refused")
        let bad = AWSRequest(method: "GET", endpoint: Endpoint(scheme: "http", host: "no-such-host.invalid", port: 80), path: "/")
        #expect(await Self.failure(t, bad)?.kind == .connect)
    }

    @Test("framing the server chooses: chunked with a trailer, until close, interim answers")
    func framing() async throws {
        let peer = try WirePeer()
        let t = SocketTransport()
        defer { t.shutdown() }
        #expect(try await t.send(Self.request(peer, "GET", "/chunked"), timeout: .seconds(5)).text == "hello ")
        #expect(try await t.send(Self.request(peer, "GET", "/until-close"), timeout: .seconds(5)).text == "until the end")
        let interim = try await t.send(Self.request(peer, "GET", "/interim"), timeout: .seconds(5))
        #expect(interim.status == 200 && interim.text == "final")
    }

    @Test("a malformed, truncated or oversized answer is an error naming what is wrong")
    func badAnswers() async throws {
        let peer = try WirePeer()
        let t = SocketTransport(configuration: .init(maxResponseBytes: 1 << 20))
        defer { t.shutdown() }
        let bad = await Self.failure(t, Self.request(peer, "GET", "/bad-length"))
        #expect(bad?.kind == .other)
        #expect(bad?.message == "malformed response at byte 17: bad Content-Length")
        let short = await Self.failure(t, Self.request(peer, "GET", "/truncated"))
        #expect(short?.kind == .connectionLost)
        #expect(short?.message.contains("in the middle of the response") == true)
        let big = await Self.failure(t, Self.request(peer, "GET", "/big"))
        #expect(big?.kind == .other)
        #expect(big?.message.contains("over the limit") == true, "\(String(describing: big))")
    }

    @Test("HTTPS: the certificate is checked against the CA bundle and the host name")
    func tls() async throws {
        let cert = try TestCertificate()
        defer { try? FileManager.default.removeItem(atPath: cert.dir) }
        let peer = try WirePeer(tls: (cert.cert, cert.key))

        let trusted = SocketTransport(configuration: .init(idleTimeout: .seconds(3600), caBundle: cert.cert))
        defer { trusted.shutdown() }
        let body = (0..<(512 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for _ in 0..<3 {
            let doc = try Self.echo(try await trusted.send(
                Self.request(peer, "PUT", "/echo", body: body, https: true, host: "localhost"), timeout: .seconds(10)))
            #expect(doc["sha256"] as? String == SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined())
        }
        #expect(trusted.statistics.opened == 1 && trusted.statistics.reused == 2)

        // The certificate names localhost, not the address.
        let wrongName = await Self.failure(trusted, Self.request(peer, "GET", "/echo", https: true, host: "127.0.0.1"))
        #expect(wrongName?.kind == .connect)
        #expect(wrongName?.message.contains("certificate") == true, "\(String(describing: wrongName))")

        // Without the bundle the system's CAs do not know the issuer.
        let system = SocketTransport()
        defer { system.shutdown() }
        let untrusted = await Self.failure(system, Self.request(peer, "GET", "/echo", https: true, host: "localhost"))
        #expect(untrusted?.kind == .connect)
        #expect(untrusted?.message.contains("certificate") == true, "\(String(describing: untrusted))")

        let missing = SocketTransport(configuration: .init(caBundle: cert.dir + "/absent.pem"))
        defer { missing.shutdown() }
        let noBundle = await Self.failure(missing, Self.request(peer, "GET", "/echo", https: true, host: "localhost"))
        #expect(noBundle?.message.contains("absent.pem") == true, "\(String(describing: noBundle))")
    }
}

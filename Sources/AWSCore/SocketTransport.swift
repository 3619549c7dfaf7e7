// HTTPTransport over plain sockets: HTTP/1.1 with keep-alive, TLS from the system's OpenSSL, and blocking
// exchanges run on a small pool of threads of its own, so that the cooperative pool never waits on a socket.
//
// Why not AsyncHTTPClient: an upload is thousands of 512 KiB PUTs, each a whole request written and a small
// response read. Against a server that closes every connection (moto) AsyncHTTPClient and NIO built a channel,
// a pipeline and a pool connection per block, about a fifth of the upload's CPU (Benchmarks/README.md). Here a
// new connection is a socket, a connect and a poll; a request is one sendmsg.

import Foundation
import HTTPWire
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// ``HTTPTransport`` over sockets: HTTP/1.1, keep-alive connections reused per host, TLS with certificate checks,
/// a connect timeout, a read timeout, and a deadline per attempt.
///
/// Each request runs on one of the transport's own threads from the first byte written to the last byte read;
/// the caller's task waits without holding a thread. Call ``shutdown()`` when done (or use
/// ``withTransport(configuration:_:)``) so that the threads and idle connections go.
public final class SocketTransport: HTTPTransport {
    /// Connection, thread and timeout settings.
    public struct Configuration: Sendable {
        /// Most requests in flight at once; more wait for a thread. Set it to at least the caller's concurrency.
        public var maxThreads: Int
        /// Idle connections kept per host for reuse.
        public var maxIdleConnectionsPerHost: Int
        /// How long an idle connection is kept.
        public var idleTimeout: Duration
        /// Time allowed to open a connection (TCP and TLS).
        public var connectTimeout: Duration
        /// Time allowed without progress while a request is written or a response read.
        public var readTimeout: Duration
        /// Largest response body accepted.
        public var maxResponseBytes: Int
        /// A PEM file of CA certificates to trust instead of the system's, for HTTPS endpoints.
        public var caBundle: String?

        /// Creates a configuration.
        public init(
            maxThreads: Int = 16, maxIdleConnectionsPerHost: Int = 16, idleTimeout: Duration = .seconds(20),
            connectTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(30),
            maxResponseBytes: Int = 8 << 20, caBundle: String? = nil
        ) {
            self.maxThreads = maxThreads
            self.maxIdleConnectionsPerHost = maxIdleConnectionsPerHost
            self.idleTimeout = idleTimeout
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
            self.maxResponseBytes = maxResponseBytes
            self.caBundle = caBundle
        }
    }

    private let configuration: Configuration
    let threads: RequestThreads
    private let idle = Mutex<[Endpoint: [SocketConnection]]>([:])
    private let addresses = Mutex<[String: (addresses: [SocketAddress], until: UInt64)]>([:])
    private let tls = Mutex<TLSContext?>(nil)
    private let closed = Atomic<Bool>(false)
    private let counters = Mutex<Statistics>(Statistics())

    /// Connections opened and reused so far, for tests and diagnostics.
    public struct Statistics: Sendable, Equatable {
        /// New connections made.
        public var opened = 0
        /// Requests sent on a connection that an earlier request had used.
        public var reused = 0
        /// Idle connections dropped before reuse: the server had closed them, or they were idle too long.
        public var discarded = 0

        /// Creates a record.
        public init(opened: Int = 0, reused: Int = 0, discarded: Int = 0) {
            self.opened = opened
            self.reused = reused
            self.discarded = discarded
        }
    }

    /// Creates the transport; threads start as requests need them.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.threads = RequestThreads(limit: max(1, configuration.maxThreads))
    }

    // A transport that was never shut down still lets its idle threads go when it is released (a running
    // request holds the transport, so this cannot happen in the middle of one).
    deinit { threads.stop() }

    /// Runs `body` with a transport and shuts it down afterwards, on both paths.
    public static func withTransport<R: Sendable>(
        configuration: Configuration = Configuration(),
        _ body: (SocketTransport) async throws -> R
    ) async throws -> R {
        let t = SocketTransport(configuration: configuration)
        defer { t.shutdown() }
        return try await body(t)
    }

    /// Closes the idle connections and lets the threads end once their requests are done. Requests sent
    /// afterwards fail.
    public func shutdown() {
        closed.store(true, ordering: .relaxed)
        idle.withLock { $0.removeAll() }  // each connection closes its socket when released
        threads.stop()
    }

    /// What the transport has done so far.
    public var statistics: Statistics { counters.withLock { $0 } }

    public func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse {
        guard request.endpoint.scheme == "http" || request.endpoint.scheme == "https" else {
            throw TransportError(.invalidRequest, "unsupported URL scheme \"\(request.endpoint.scheme)\"")
        }
        let head: [UInt8]
        do {
            head = try HTTP1Request.head(request)
        } catch {
            throw TransportError(.invalidRequest, error.reason)
        }
        if Task.isCancelled { throw TransportError(.cancelled, "cancelled") }
        if closed.load(ordering: .relaxed) { throw TransportError(.other, "the transport was shut down") }
        let cancel = CancelFlag()
        let deadline = monotonicNanos() &+ durationNanos(timeout)
        let result: Result<HTTPResponse, TransportError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, TransportError>, Never>) in
                let accepted = threads.run {
                    continuation.resume(returning: self.exchange(request, head: head, deadline: deadline, cancel: cancel))
                }
                if !accepted {
                    continuation.resume(returning: .failure(TransportError(.other, "the transport was shut down")))
                }
            }
        } onCancel: {
            cancel.cancel()
        }
        return try result.get()
    }

    // MARK: the exchange, on a transport thread

    private func exchange(
        _ request: AWSRequest, head: [UInt8], deadline: UInt64, cancel: CancelFlag
    ) -> Result<HTTPResponse, TransportError> {
        let limits = IOLimits(deadline: deadline, idleTimeout: durationNanos(configuration.readTimeout), cancel: cancel)
        // A reused connection that the server closed while it sat idle is caught by `takeIdle`'s check; one it
        // closes between that check and the request fails here like any lost connection, and the caller's retry
        // policy (which counts it) sends the request again.
        let connection: SocketConnection
        if let c = takeIdle(request.endpoint) {
            connection = c
            counters.withLock { $0.reused += 1 }
        } else {
            do {
                connection = try connect(request.endpoint, limits: limits)
            } catch {
                return .failure(error)
            }
        }
        var reader = HTTP1ResponseReader(maxBody: configuration.maxResponseBytes, headRequest: request.method == "HEAD")
        do throws(SocketFailure) {
            let response = try roundTrip(connection, request, head: head, reader: &reader, limits: limits)
            connection.exchanges += 1
            if reader.keepAlive { putIdle(connection) }
            return .success(response)
        } catch {
            return .failure(Self.transportError(error, receivedAny: reader.receivedAny))
        }
    }

    private func roundTrip(
        _ connection: SocketConnection, _ request: AWSRequest, head: [UInt8], reader: inout HTTP1ResponseReader,
        limits: IOLimits
    ) throws(SocketFailure) -> HTTPResponse {
        try typedResult(request.bodyBuffer.withUnsafeReadableBytes { body in
            Result { () throws(SocketFailure) in try connection.write(head: head, body: body, limits: limits) }
        })
        while true {
            let bytes = try connection.read(limits: limits)
            if bytes.isEmpty {
                // The end of the stream: a whole response only if the body runs until the close.
                do throws(HTTP1ResponseReader.Malformed) {
                    return HTTPResponse(try reader.finish())
                } catch {
                    throw SocketFailure.closed
                }
            }
            do throws(HTTP1ResponseReader.Malformed) {
                if let response = try reader.feed(bytes) { return HTTPResponse(response) }
            } catch {
                throw SocketFailure.malformed(error)
            }
        }
    }

    private static func transportError(_ failure: SocketFailure, receivedAny: Bool) -> TransportError {
        switch failure {
        case .timedOut: return TransportError(.timeout, "no complete response within the time limit")
        case .cancelled: return TransportError(.cancelled, "cancelled")
        case .closed:
            return TransportError(
                .connectionLost,
                receivedAny ? "the connection closed in the middle of the response" : "the connection closed before a response")
        case .system(let call, let e):
            return TransportError(.connectionLost, "\(call): \(errnoText(e))")
        case .tls(let why):
            return TransportError(.connectionLost, "TLS: \(why)")
        case .malformed(let m):
            return TransportError(.other, "malformed response at byte \(m.offset): \(m.reason)")
        }
    }

    // MARK: connections

    private func connect(_ endpoint: Endpoint, limits: IOLimits) throws(TransportError) -> SocketConnection {
        let https = endpoint.scheme == "https"
        let port = endpoint.port ?? (https ? 443 : 80)
        guard (1...65535).contains(port) else { throw TransportError(.invalidRequest, "bad port \(port)") }
        let list = try resolve(endpoint.host, port: port)
        let connectTimeout = durationNanos(configuration.connectTimeout)
        do throws(SocketFailure) {
            let c = try SocketConnection.open(to: list, endpoint: endpoint, connectTimeout: connectTimeout, limits: limits)
            counters.withLock { $0.opened += 1 }
            if https {
                let context = try tlsContext()
                var handshakeLimits = limits
                handshakeLimits.deadline = min(limits.deadline, monotonicNanos() &+ connectTimeout)
                try c.startTLS(context, host: endpoint.host, limits: handshakeLimits)
            }
            return c
        } catch {
            switch error {
            case .cancelled: throw TransportError(.cancelled, "cancelled")
            case .timedOut: throw TransportError(.connect, "the connection timed out")
            case .system(_, let e): throw TransportError(.connect, errnoText(e))
            case .closed: throw TransportError(.connect, "the server closed the connection during the TLS handshake")
            case .tls(let why): throw TransportError(.connect, "TLS: \(why)")
            case .malformed(let m): throw TransportError(.other, m.reason)
            }
        }
    }

    private func tlsContext() throws(SocketFailure) -> TLSContext {
        do {
            return try tls.withLock { (slot) throws(TransportError) -> TLSContext in
                if let c = slot { return c }
                let c = try TLSContext(caBundle: configuration.caBundle)
                slot = c
                return c
            }
        } catch {
            throw .tls(error.message)
        }
    }

    /// Addresses of `host`, kept for 30 s: a connection per request would otherwise ask the resolver each time.
    private func resolve(_ host: String, port: Int) throws(TransportError) -> [SocketAddress] {
        let key = "\(host)|\(port)"
        let now = monotonicNanos()
        if let hit = addresses.withLock({ $0[key] }), hit.until > now { return hit.addresses }
        let list = try SocketAddress.resolve(host: host, port: port)
        addresses.withLock { $0[key] = (list, now &+ 30_000_000_000) }
        return list
    }

    private func takeIdle(_ endpoint: Endpoint) -> SocketConnection? {
        let limit = durationNanos(configuration.idleTimeout)
        while true {
            let candidate: SocketConnection? = idle.withLock { pool in
                guard var list = pool[endpoint], let c = list.popLast() else { return nil }
                pool[endpoint] = list.isEmpty ? nil : list
                return c
            }
            guard let c = candidate else { return nil }
            // The clock is read after the connection was taken: another thread may have put it back a moment
            // after this one started looking, and an earlier reading would make its age negative.
            let now = monotonicNanos()
            if now < c.lastUsed || now - c.lastUsed < limit, !c.isReadableWhileIdle { return c }
            // Too old, or the server closed it (or sent something unasked): drop it and look again.
            counters.withLock { $0.discarded += 1 }
        }
    }

    private func putIdle(_ connection: SocketConnection) {
        guard !closed.load(ordering: .relaxed) else { return }
        connection.lastUsed = monotonicNanos()
        let max = configuration.maxIdleConnectionsPerHost
        idle.withLock { pool in
            var list = pool[connection.endpoint] ?? []
            guard list.count < max else { return }
            list.append(connection)
            pool[connection.endpoint] = list
        }
    }
}

/// Threads for blocking exchanges: one starts when a request finds no idle thread, up to a limit; beyond it
/// requests queue. Idle threads wait for the next request until the transport stops.
final class RequestThreads: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(@Sendable () -> Void)?] = []
    private var head = 0
    private var idleCount = 0
    private var threadCount = 0
    private var stopping = false
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Queues `job`; false when the threads are stopping.
    func run(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        queue.append(job)
        if idleCount < queue.count - head, threadCount < limit {
            threadCount += 1
            let t = Thread { [self] in loop() }
            t.name = "zlabel-http"
            t.stackSize = 512 << 10
            t.start()
        } else {
            condition.signal()
        }
        return true
    }

    /// Threads started and not yet ended.
    var liveThreads: Int {
        condition.lock()
        defer { condition.unlock() }
        return threadCount
    }

    /// Lets every thread end once the queue is empty.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while head == queue.count && !stopping {
                idleCount += 1
                condition.wait()
                idleCount -= 1
            }
            if head == queue.count {
                threadCount -= 1
                condition.unlock()
                return
            }
            let job = queue[head]!
            queue[head] = nil  // the job's captures go when it is done, not when the queue next empties
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            job()
        }
    }
}

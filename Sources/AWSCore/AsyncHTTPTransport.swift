import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix

/// ``HTTPTransport`` over AsyncHTTPClient: one pooled client, HTTP/1.1, keep-alive connections reused across
/// requests, a connect timeout, a read (idle) timeout, and a deadline per attempt.
///
/// Call ``shutdown()`` when done (or use ``withTransport(configuration:_:)``); AsyncHTTPClient requires it.
public final class AsyncHTTPTransport: HTTPTransport {
    /// Connection and timeout settings.
    public struct Configuration: Sendable {
        /// Connections kept per host; set it to at least the number of concurrent requests.
        public var maxConnectionsPerHost: Int
        /// Time allowed to open a connection.
        public var connectTimeout: Duration
        /// Time allowed without a byte arriving while a response is read.
        public var readTimeout: Duration
        /// Largest response body accepted.
        public var maxResponseBytes: Int
        /// Event loop threads. The loops only move bytes between sockets and buffers (and encrypt them for
        /// HTTPS): blocks are read and hashed on the caller's tasks. One thread keeps up with what EBS accepts
        /// from one upload, and uploading 1 GiB to moto took about a tenth less CPU with one than with two.
        public var eventLoopThreads: Int

        /// Creates a configuration.
        public init(
            maxConnectionsPerHost: Int = 64, connectTimeout: Duration = .seconds(10),
            readTimeout: Duration = .seconds(30), maxResponseBytes: Int = 8 << 20, eventLoopThreads: Int = 1
        ) {
            self.maxConnectionsPerHost = maxConnectionsPerHost
            self.connectTimeout = connectTimeout
            self.readTimeout = readTimeout
            self.maxResponseBytes = maxResponseBytes
            self.eventLoopThreads = eventLoopThreads
        }
    }

    private let client: HTTPClient
    private let group: MultiThreadedEventLoopGroup
    private let configuration: Configuration

    /// Creates the client and its connection pool.
    public init(configuration: Configuration = Configuration()) {
        var c = HTTPClient.Configuration()
        c.httpVersion = .http1Only
        c.decompression = .disabled
        c.redirectConfiguration = .disallow
        // No spans: nothing here collects them, and making one per request costs about 2 % of an upload's CPU.
        c.tracing.tracer = nil
        c.timeout = .init(
            connect: .nanoseconds(Self.nanos(configuration.connectTimeout)),
            read: .nanoseconds(Self.nanos(configuration.readTimeout)))
        c.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.maxConnectionsPerHost))
        // A connection that cannot be made fails the attempt at once; RetryPolicy decides about retrying (the
        // pool's own retries would keep one attempt reconnecting until its deadline, 30 s by default).
        c.connectionPool.retryConnectionEstablishment = false
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        self.client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: c)
        self.configuration = configuration
    }

    /// Runs `body` with a transport and shuts it down afterwards, on both paths.
    public static func withTransport<R: Sendable>(
        configuration: Configuration = Configuration(),
        _ body: (AsyncHTTPTransport) async throws -> R
    ) async throws -> R {
        let t = AsyncHTTPTransport(configuration: configuration)
        do {
            let r = try await body(t)
            try await t.shutdown()
            return r
        } catch {
            try? await t.shutdown()
            throw error
        }
    }

    /// Closes every connection. The transport cannot be used afterwards.
    public func shutdown() async throws {
        do {
            try await client.shutdown()
        } catch {
            try? await group.shutdownGracefully()  // the threads go even when the client's shutdown failed
            throw error
        }
        try await group.shutdownGracefully()
    }

    public func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse {
        var r = HTTPClientRequest(url: request.url)
        r.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers {
            r.headers.add(name: name, value: value)
        }
        if request.bodyBuffer.readableBytes > 0 || request.method == "PUT" || request.method == "POST" {
            r.headers.replaceOrAdd(name: "Content-Length", value: String(request.bodyBuffer.readableBytes))
            r.body = .bytes(request.bodyBuffer)
        }
        do {
            let response = try await client.execute(r, timeout: .nanoseconds(Self.nanos(timeout)))
            var buffer = try await response.body.collect(upTo: configuration.maxResponseBytes)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            return HTTPResponse(
                status: Int(response.status.code),
                headers: response.headers.map { ($0.name, $0.value) },
                body: bytes)
        } catch {
            throw Self.classify(error)
        }
    }

    /// The system's words for a connect error, in lower case: "connection refused", "no route to host".
    static func reason(errno code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text).lowercased()
    }

    static func nanos(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

    /// Maps AsyncHTTPClient and NIO errors onto ``TransportError/Kind``.
    static func classify(_ error: any Error) -> TransportError {
        if error is CancellationError { return TransportError(.cancelled, "cancelled") }
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                return TransportError(.timeout, "\(e)")
            case .connectTimeout:
                return TransportError(.connect, "the connection timed out")
            case .tlsHandshakeTimeout:
                return TransportError(.connect, "the TLS handshake timed out")
            case .remoteConnectionClosed:
                return TransportError(.connectionLost, "\(e)")
            case .cancelled, .requestStreamCancelled:
                return TransportError(.cancelled, "\(e)")
            case .invalidURL, .emptyHost, .emptyScheme:
                return TransportError(.invalidRequest, "\(e)")
            default:
                return TransportError(.other, "\(e)")
            }
        }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH: return TransportError(.connect, Self.reason(errno: e.errnoCode))
            default: return TransportError(.connectionLost, "\(e)")
            }
        }
        if let e = error as? NIOConnectionError {
            // One failure per address tried; the first says enough ("connection refused").
            if let first = e.connectionErrors.first {
                if let io = first.error as? IOError { return TransportError(.connect, Self.reason(errno: io.errnoCode)) }
                if case .connectTimeout? = first.error as? ChannelError {
                    return TransportError(.connect, "the connection timed out")
                }
                return TransportError(.connect, "\(first.error)")
            }
            return TransportError(.connect, "the host name did not resolve")
        }
        if let e = error as? ChannelError {
            if case .connectTimeout = e { return TransportError(.connect, "the connection timed out") }
            return TransportError(.connectionLost, "\(e)")
        }
        if error is NIOTooManyBytesError { return TransportError(.other, "response body too large") }
        return TransportError(.other, "\(error)")
    }
}

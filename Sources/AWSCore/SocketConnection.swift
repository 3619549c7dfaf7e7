// One TCP (and optionally TLS) connection, driven with non-blocking sockets and poll(2) on the thread that owns
// it. Every wait is bounded by the attempt's deadline and the read timeout, and is cut into slices so that a
// cancelled request notices within a quarter of a second.

import COpenSSL
import HTTPWire
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemConnect = Glibc.connect
#elseif canImport(Musl)
private let systemConnect = Musl.connect
#elseif canImport(Darwin)
private let systemConnect = Darwin.connect
#endif

/// Unwraps a result while keeping its error type (closures passed to `withUnsafeBytes` lose it).
@inline(__always)
func typedResult<T, E: Error>(_ r: Result<T, E>) throws(E) -> T { try r.get() }

/// Nanoseconds on the monotonic clock.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Whole nanoseconds of a duration, clamped at zero and at `Int64.max`.
func durationNanos(_ d: Duration) -> UInt64 {
    let (s, atto) = d.components
    if s < 0 { return 0 }
    let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return UInt64(Int64.max) }
    return UInt64(max(0, ns &+ atto / 1_000_000_000))
}

/// The system's words for an error number, in lower case: "connection refused".
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text).lowercased()
}

/// A request's cancellation flag, set from the task's cancellation handler and read by the I/O thread.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// Limits for one exchange on a connection.
struct IOLimits {
    /// The end of the attempt, on the monotonic clock.
    var deadline: UInt64
    /// Longest wait for the peer while reading or writing.
    var idleTimeout: UInt64
    /// Set when the caller gave up.
    var cancel: CancelFlag
}

/// What went wrong on a socket, before it is mapped to a ``TransportError``.
enum SocketFailure: Error {
    /// The deadline or the idle timeout passed.
    case timedOut
    case cancelled
    /// The peer closed the connection (end of stream).
    case closed
    /// A system call failed.
    case system(String, Int32)
    /// TLS failed; the text says how.
    case tls(String)
    /// The response could not be parsed.
    case malformed(HTTP1ResponseReader.Malformed)
}

/// Resolved addresses of a host, from getaddrinfo.
struct SocketAddress: @unchecked Sendable {
    var family: Int32
    var storage: sockaddr_storage
    var length: socklen_t

    /// Every TCP address of `host:port`, in the resolver's order.
    static func resolve(host: String, port: Int) throws(TransportError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let why = rc == 0 ? "no address" : String(cString: gai_strerror(rc)).lowercased()
            throw TransportError(.connect, "the host name \(host) did not resolve (\(why))")
        }
        defer { freeaddrinfo(first) }
        var out: [SocketAddress] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let a = p {
            if let sa = a.pointee.ai_addr, Int(a.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: sa, count: Int(a.pointee.ai_addrlen)))
                }
                out.append(SocketAddress(family: a.pointee.ai_family, storage: storage, length: a.pointee.ai_addrlen))
            }
            p = a.pointee.ai_next
        }
        guard !out.isEmpty else { throw TransportError(.connect, "the host name \(host) did not resolve") }
        return out
    }
}

/// Shared TLS settings: one `SSL_CTX` per transport, verifying the peer against the system's CA store or a bundle.
final class TLSContext: @unchecked Sendable {
    // SSL_CTX is reference-counted and safe to share between threads once set up.
    let ctx: OpaquePointer

    init(caBundle: String?) throws(TransportError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TransportError(.other, "TLS: \(TLSContext.errorQueueText() ?? "SSL_CTX_new failed")")
        }
        _ = zlabel_ssl_ctx_set_min_tls12(ctx)
        _ = zlabel_ssl_ctx_set_modes(ctx)
        _ = zlabel_ssl_ctx_no_renegotiation(ctx)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let caBundle {
            guard SSL_CTX_load_verify_locations(ctx, caBundle, nil) == 1 else {
                let why = TLSContext.errorQueueText() ?? "unreadable"
                SSL_CTX_free(ctx)
                throw TransportError(.invalidRequest, "the CA bundle \(caBundle) could not be loaded (\(why))")
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            let why = TLSContext.errorQueueText() ?? "unknown error"
            SSL_CTX_free(ctx)
            throw TransportError(.other, "TLS: the system's CA certificates could not be loaded (\(why))")
        }
        self.ctx = ctx
        TLSContext.ignoreSIGPIPE
    }

    deinit { SSL_CTX_free(ctx) }

    /// OpenSSL writes to the socket with write(2), which raises SIGPIPE on a connection the peer reset. That
    /// would end the process; where nothing else handles the signal, the transport ignores it (once).
    private static let ignoreSIGPIPE: Void = {
        var old = sigaction()
        if sigaction(SIGPIPE, nil, &old) == 0 {
            #if canImport(Glibc) || canImport(Musl)
            let isDefault = old.__sigaction_handler.sa_handler == nil
            #else
            let isDefault = old.__sigaction_u.__sa_handler == nil
            #endif
            if isDefault { signal(SIGPIPE, SIG_IGN) }
        }
    }()

    /// The thread's OpenSSL error queue as text (and cleared), or nil when empty.
    static func errorQueueText() -> String? {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            let text = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            parts.append(text)
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}

/// One open connection. Used by one thread at a time; idle ones wait in the transport's pool.
final class SocketConnection: @unchecked Sendable {
    let fd: Int32
    private var ssl: OpaquePointer?
    let endpoint: Endpoint
    /// When the connection last finished an exchange (monotonic).
    var lastUsed: UInt64 = 0
    /// Exchanges completed on it.
    var exchanges = 0
    private let buffer: UnsafeMutableRawBufferPointer

    private init(fd: Int32, endpoint: Endpoint) {
        self.fd = fd
        self.endpoint = endpoint
        self.buffer = .allocate(byteCount: 16 << 10, alignment: 16)
    }

    deinit {
        if let ssl { SSL_free(ssl) }
        close(fd)
        buffer.deallocate()
    }

    /// Opens a connection to the first of `addresses` that accepts one within `connectTimeout`.
    static func open(
        to addresses: [SocketAddress], endpoint: Endpoint, connectTimeout: UInt64, limits: IOLimits
    ) throws(SocketFailure) -> SocketConnection {
        var firstError: SocketFailure?
        let connectEnd = min(limits.deadline, monotonicNanos() &+ connectTimeout)
        for address in addresses {
            do {
                let fd = try connectOne(address, until: connectEnd, cancel: limits.cancel)
                return SocketConnection(fd: fd, endpoint: endpoint)
            } catch {
                if case .cancelled = error { throw error }
                if firstError == nil { firstError = error }
                if case .timedOut = error { break }  // the time for all of them is spent
            }
        }
        throw firstError ?? .system("connect", EHOSTUNREACH)
    }

    private static func connectOne(_ a: SocketAddress, until end: UInt64, cancel: CancelFlag) throws(SocketFailure) -> Int32 {
        #if canImport(Glibc) || canImport(Musl)
        let fd = socket(a.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        #else
        let fd = socket(a.family, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw .system("socket", errno) }
        #if !(canImport(Glibc) || canImport(Musl))
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        var storage = a.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemConnect(fd, $0, a.length) }
        }
        if rc != 0 {
            let e = errno
            guard e == EINPROGRESS || e == EINTR else {
                close(fd)
                throw .system("connect", e)
            }
            do {
                try wait(fd, events: Int16(POLLOUT), until: end, idle: UInt64.max, cancel: cancel)
            } catch {
                close(fd)
                throw error
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) != 0 { soError = errno }
            if soError != 0 {
                close(fd)
                throw .system("connect", soError)
            }
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    /// Waits until `fd` is ready for `events`, the peer hung up, or a limit passes.
    private static func wait(_ fd: Int32, events: Int16, until end: UInt64, idle: UInt64, cancel: CancelFlag) throws(SocketFailure) {
        let start = monotonicNanos()
        let idleEnd = idle == UInt64.max ? UInt64.max : start &+ idle
        let limit = min(end, idleEnd)
        while true {
            if cancel.isCancelled { throw .cancelled }
            let now = monotonicNanos()
            if now >= limit { throw .timedOut }
            let sliceMs = Int32(min((limit - now) / 1_000_000 + 1, 250))
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, sliceMs)
            if rc > 0 { return }
            if rc < 0, errno != EINTR { throw .system("poll", errno) }
        }
    }

    private func wait(_ events: Int16, _ limits: IOLimits) throws(SocketFailure) {
        try Self.wait(fd, events: events, until: limits.deadline, idle: limits.idleTimeout, cancel: limits.cancel)
    }

    /// Starts TLS: SNI and certificate name (or address) checked against `host`.
    func startTLS(_ context: TLSContext, host: String, limits: IOLimits) throws(SocketFailure) {
        guard let ssl = SSL_new(context.ctx) else { throw .tls(TLSContext.errorQueueText() ?? "SSL_new failed") }
        self.ssl = ssl
        _ = SSL_set_fd(ssl, fd)
        if Self.isIPAddress(host) {
            _ = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            _ = zlabel_ssl_set_host_name(ssl, host)
            _ = SSL_set1_host(ssl, host)
        }
        while true {
            ERR_clear_error()
            let rc = SSL_connect(ssl)
            if rc == 1 { return }
            let e = SSL_get_error(ssl, rc)
            switch e {
            case SSL_ERROR_WANT_READ: try wait(Int16(POLLIN), limits)
            case SSL_ERROR_WANT_WRITE: try wait(Int16(POLLOUT), limits)
            default:
                let verify = SSL_get_verify_result(ssl)
                if verify != X509_V_OK {
                    let why = String(cString: X509_verify_cert_error_string(verify))
                    throw .tls("the server's certificate was not accepted: \(why)")
                }
                if e == SSL_ERROR_SYSCALL, rc == 0 || errno == 0 { throw .closed }
                throw .tls("handshake failed: \(TLSContext.errorQueueText() ?? "error \(e)")")
            }
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Writes the head and then the body, whole.
    func write(head: [UInt8], body: UnsafeRawBufferPointer, limits: IOLimits) throws(SocketFailure) {
        if let ssl {
            try typedResult(head.withUnsafeBytes { h in Result { () throws(SocketFailure) in try tlsWrite(ssl, h, limits) } })
            if !body.isEmpty { try tlsWrite(ssl, body, limits) }
            return
        }
        var headDone = 0
        var bodyDone = 0
        try typedResult(head.withUnsafeBytes { h in Result { () throws(SocketFailure) in
            while headDone < h.count || bodyDone < body.count {
                var iov: [iovec] = []
                if headDone < h.count {
                    iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress! + headDone), iov_len: h.count - headDone))
                }
                if bodyDone < body.count {
                    iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress! + bodyDone), iov_len: body.count - bodyDone))
                }
                let n = iov.withUnsafeMutableBufferPointer { v -> Int in
                    var msg = msghdr()
                    msg.msg_iov = v.baseAddress
                    msg.msg_iovlen = numericCast(v.count)
                    #if canImport(Glibc) || canImport(Musl)
                    return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL))
                    #else
                    return sendmsg(fd, &msg, 0)
                    #endif
                }
                if n < 0 {
                    let e = errno
                    if e == EAGAIN || e == EWOULDBLOCK {
                        try wait(Int16(POLLOUT), limits)
                        continue
                    }
                    if e == EINTR { continue }
                    if e == EPIPE || e == ECONNRESET { throw .closed }
                    throw .system("send", e)
                }
                var left = n
                let h1 = min(left, h.count - headDone)
                headDone += h1
                left -= h1
                bodyDone += left
            }
        } })
    }

    private func tlsWrite(_ ssl: OpaquePointer, _ bytes: UnsafeRawBufferPointer, _ limits: IOLimits) throws(SocketFailure) {
        var done = 0
        while done < bytes.count {
            ERR_clear_error()
            let chunk = min(bytes.count - done, Int(Int32.max))
            let rc = SSL_write(ssl, bytes.baseAddress! + done, Int32(chunk))
            if rc > 0 {
                done += Int(rc)
                continue
            }
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_WRITE: try wait(Int16(POLLOUT), limits)
            case SSL_ERROR_WANT_READ: try wait(Int16(POLLIN), limits)
            case SSL_ERROR_ZERO_RETURN: throw .closed
            case SSL_ERROR_SYSCALL:
                let e = errno
                if e == EPIPE || e == ECONNRESET || e == 0 { throw .closed }
                throw .system("send", e)
            default: throw .tls(TLSContext.errorQueueText() ?? "write failed")
            }
        }
    }

    /// Reads whatever arrives next into the connection's buffer: the bytes, or an empty buffer at the end of the
    /// stream.
    func read(limits: IOLimits) throws(SocketFailure) -> UnsafeRawBufferPointer {
        while true {
            if let ssl {
                ERR_clear_error()
                let rc = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
                if rc > 0 { return UnsafeRawBufferPointer(rebasing: buffer[..<Int(rc)]) }
                switch SSL_get_error(ssl, rc) {
                case SSL_ERROR_WANT_READ: try wait(Int16(POLLIN), limits)
                case SSL_ERROR_WANT_WRITE: try wait(Int16(POLLOUT), limits)
                case SSL_ERROR_ZERO_RETURN: return UnsafeRawBufferPointer(start: nil, count: 0)
                case SSL_ERROR_SYSCALL:
                    let e = errno
                    // An end of stream without close_notify: the caller decides whether the response was whole.
                    if e == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
                    if e == ECONNRESET { throw .closed }
                    throw .system("recv", e)
                default: throw .tls(TLSContext.errorQueueText() ?? "read failed")
                }
            } else {
                let n = recv(fd, buffer.baseAddress, buffer.count, 0)
                if n > 0 { return UnsafeRawBufferPointer(rebasing: buffer[..<n]) }
                if n == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK {
                    try wait(Int16(POLLIN), limits)
                } else if e == ECONNRESET {
                    throw .closed
                } else if e != EINTR {
                    throw .system("recv", e)
                }
            }
        }
    }

    /// True when an idle connection has something to read: the peer closed it, or sent bytes no request asked
    /// for. Either way it cannot carry another request.
    var isReadableWhileIdle: Bool {
        if let ssl, SSL_pending(ssl) > 0 { return true }
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&p, 1, 0)
            if rc >= 0 { return rc > 0 }
            if errno != EINTR { return true }  // cannot tell: do not reuse it
        }
    }
}

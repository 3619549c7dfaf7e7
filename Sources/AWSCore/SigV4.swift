// AWS Signature Version 4 (header signing), as botocore's `SigV4Auth` does it for non-S3 services.
//
// A request is signed in four steps:
//   1. canonical request = METHOD \n canonical URI \n canonical query \n canonical headers \n \n signed headers
//      \n payload hash
//   2. string to sign = "AWS4-HMAC-SHA256" \n timestamp \n scope \n hex(SHA256(canonical request))
//   3. signing key = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request"
//   4. Authorization = "AWS4-HMAC-SHA256 Credential=AK/scope, SignedHeaders=…, Signature=hex(HMAC(key, sts))"
//
// botocore details mirrored here, because tests compare with it byte for byte:
// * every header present is signed except a fixed skip list (user-agent, expect, connection, …); `host` is
//   added from the endpoint when absent, without a default port;
// * `X-Amz-Date` and, with a session token, `X-Amz-Security-Token` are added before signing and are signed;
// * the payload hash is the value of an `X-Amz-Content-SHA256` header when one is present (that is how
//   `UNSIGNED-PAYLOAD` works for PutSnapshotBlock), else hex SHA-256 of the body;
// * the path has its dot segments removed and is percent-encoded once (everything but unreserved, `/`, `~`);
// * query pairs are percent-encoded with the RFC 3986 unreserved set only and sorted by key, then value.

public import Foundation
public import NIOCore
import Crypto

/// An HTTP request about to be signed and sent: what SigV4 and the transport both need.
///
/// `path` is the path as it goes on the wire, before the signer's own encoding pass; for the EBS and EC2 calls
/// it holds only unreserved characters and `/`. `query` holds decoded names and values; the same encoding is
/// used on the wire and in the canonical request, so the two always agree.
public struct AWSRequest: Sendable, Equatable {
    /// The HTTP method, upper case (`GET`, `PUT`, `POST`).
    public var method: String
    /// The endpoint the request goes to.
    public var endpoint: Endpoint
    /// The path, starting with `/`.
    public var path: String
    /// Query parameters, decoded; encoded by ``encodedQuery``.
    public var query: [(name: String, value: String)]
    /// Header fields in the order they were added. Names keep their case; comparisons ignore it.
    public var headers: [(name: String, value: String)]
    /// The body (empty for none), in the buffer the transport sends: a 512 KiB block goes out without a copy.
    public var bodyBuffer: ByteBuffer

    /// The body bytes: a copy of ``bodyBuffer``'s readable bytes; setting it replaces the buffer.
    public var body: [UInt8] {
        get { Array(bodyBuffer.readableBytesView) }
        set { bodyBuffer = ByteBuffer(bytes: newValue) }
    }

    /// Creates a request.
    public init(
        method: String, endpoint: Endpoint, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) {
        self.init(
            method: method, endpoint: endpoint, path: path, query: query, headers: headers,
            bodyBuffer: ByteBuffer(bytes: body))
    }

    /// Creates a request whose body is already in a buffer.
    public init(
        method: String, endpoint: Endpoint, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], bodyBuffer: ByteBuffer
    ) {
        self.method = method
        self.endpoint = endpoint
        self.path = path
        self.query = query
        self.headers = headers
        self.bodyBuffer = bodyBuffer
    }

    public static func == (lhs: AWSRequest, rhs: AWSRequest) -> Bool {
        lhs.method == rhs.method && lhs.endpoint == rhs.endpoint && lhs.path == rhs.path
            && lhs.query.elementsEqual(rhs.query, by: { $0 == $1 })
            && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 }) && lhs.bodyBuffer == rhs.bodyBuffer
    }

    /// The first value of a header, compared without case.
    public func header(_ name: String) -> String? {
        headers.first(where: { SigV4.sameFieldName($0.name, name) })?.value
    }

    /// Sets a header, replacing every field of that name.
    public mutating func setHeader(_ name: String, _ value: String) {
        headers.removeAll(where: { SigV4.sameFieldName($0.name, name) })
        headers.append((name, value))
    }

    /// The query string as sent: `name=value` pairs, percent-encoded (RFC 3986 unreserved kept), in the
    /// request's order, joined by `&`.
    public var encodedQuery: String {
        query.map { SigV4.percentEncode($0.name, keeping: "") + "=" + SigV4.percentEncode($0.value, keeping: "") }
            .joined(separator: "&")
    }

    /// The request target (path and query) as it goes on the request line.
    public var target: String {
        let p = SigV4.percentEncode(path.isEmpty ? "/" : path, keeping: "/~")
        return query.isEmpty ? p : p + "?" + encodedQuery
    }

    /// The full URL as a string.
    public var url: String { endpoint.baseURL + target }
}

/// Where a service is reached: scheme, host and port.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https`.
    public var scheme: String
    /// Host name or address (IPv6 without brackets).
    public var host: String
    /// The port, or nil for the scheme's default.
    public var port: Int?

    /// Creates an endpoint from its parts.
    public init(scheme: String, host: String, port: Int? = nil) {
        self.scheme = scheme.lowercased()
        self.host = host
        self.port = port
    }

    /// Parses `scheme://host[:port][/]`.
    ///
    /// - Throws: ``AWSConfigurationError`` when the URL is not an absolute http(s) URL or has a path.
    public init(parsing url: String) throws(AWSConfigurationError) {
        guard let comps = URLComponents(string: url), let scheme = comps.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = comps.host, !host.isEmpty
        else { throw AWSConfigurationError("endpoint URL \"\(url)\" is not an absolute http:// or https:// URL") }
        guard comps.path.isEmpty || comps.path == "/", comps.query == nil else {
            throw AWSConfigurationError("endpoint URL \"\(url)\" must not have a path or query")
        }
        var h = host
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        self.init(scheme: scheme, host: h, port: comps.port)
    }

    /// The `Host` header value: lower-case host, with the port only when it is not the scheme's default.
    public var hostHeader: String {
        // Host names are ASCII; lowercased() is only needed (and only paid for) when one has an upper-case letter.
        // `contains(":")` on a String is Foundation's substring search, which costs more than the rest of this
        // getter; a byte test says the same for a one-byte needle.
        var h = host.utf8.contains(where: { (65...90).contains($0) || $0 >= 128 }) ? host.lowercased() : host
        if h.utf8.contains(UInt8(ascii: ":")) { h = "[" + h + "]" }
        if let port, port != (scheme == "https" ? 443 : 80) { h += ":" + String(port) }
        return h
    }

    /// `scheme://host[:port]`, without a trailing slash.
    public var baseURL: String {
        var h = host.utf8.contains(UInt8(ascii: ":")) ? "[" + host + "]" : host
        if let port { h += ":\(port)" }
        return scheme + "://" + h
    }

    public var description: String { baseURL }
}

/// Credentials used to sign. The description never shows the secret or the token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The access key id (not secret; it appears in every Authorization header).
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary credentials.
    public var sessionToken: String?
    /// When temporary credentials stop working.
    public var expiration: Date?
    /// Where they came from, e.g. `environment`, `shared-credentials-file`, `imds` (for messages).
    public var source: String

    /// Creates credentials.
    public init(
        accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil,
        source: String = "explicit"
    ) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
        self.source = source
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>, sessionToken: "
            + (sessionToken == nil ? "none" : "<redacted>") + ", source: \(source))"
    }
    public var debugDescription: String { description }
}

/// The artefacts of one signature, for tests and debugging. Holds no secret.
public struct SigV4Signature: Sendable, Equatable {
    /// The canonical request (step 1).
    public var canonicalRequest: String
    /// The string to sign (step 2).
    public var stringToSign: String
    /// Lower-case hex signature.
    public var signature: String
    /// The full `Authorization` header value.
    public var authorization: String
    /// `host;x-amz-date;…`
    public var signedHeaders: String
}

/// SigV4 header signing.
public enum SigV4 {
    /// Header names botocore never signs (`SIGNED_HEADERS_BLACKLIST`).
    public static let unsignedHeaderNames: Set<String> = [
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]

    /// Whether a lower-case field name is one of ``unsignedHeaderNames``, without hashing it.
    static func isUnsignedHeaderName(_ lower: String) -> Bool {
        switch lower {
        case "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
            "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id":
            true
        default: false
        }
    }

    /// The payload hash value for requests whose body is not signed (PutSnapshotBlock).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// Signs `request` in place: adds `X-Amz-Date`, `X-Amz-Security-Token` (when the credentials have a
    /// token) and `Authorization`, and returns the intermediate strings.
    ///
    /// An existing `Authorization`, `X-Amz-Date` or `X-Amz-Security-Token` header is replaced, so a request
    /// can be re-signed for a retry.
    ///
    /// - Parameters:
    ///   - request: the request; its headers gain the signing headers.
    ///   - credentials: the key pair and optional session token.
    ///   - region: the region in the credential scope, e.g. `us-east-1`.
    ///   - service: the signing name, e.g. `ebs` or `ec2`.
    ///   - date: the signing time.
    /// - Returns: the canonical request, string to sign and signature.
    @discardableResult
    public static func sign(
        _ request: inout AWSRequest, credentials: AWSCredentials, region: String, service: String, date: Date
    ) -> SigV4Signature {
        let stamp = amzDate(date)
        let day = String(stamp.prefix(8))
        request.headers.removeAll { sameFieldName($0.name, "authorization") || sameFieldName($0.name, "x-amz-date") }
        request.setHeader("X-Amz-Date", stamp)
        if let token = credentials.sessionToken {
            request.setHeader("X-Amz-Security-Token", token)
        }

        // Canonical headers: lower-case names, values trimmed with inner whitespace collapsed, repeated names
        // joined with commas in the order they were given, sorted by name. Every block of an upload is signed,
        // so this is built with one sort of a small array and appends, without a dictionary of arrays.
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(request.headers.count + 1)
        var hasHost = false
        for (name, value) in request.headers {
            let lower = lowercasedFieldName(name)
            if isUnsignedHeaderName(lower) { continue }
            if lower == "host" { hasHost = true }
            fields.append((lower, trimAll(value)))
        }
        if !hasHost { fields.append(("host", request.endpoint.hostHeader)) }
        // Sorted by name; fields of the same name stay in the order they were given.
        let order = fields.indices.sorted { a, b in
            fields[a].name == fields[b].name ? a < b : fields[a].name < fields[b].name
        }
        var canonicalHeaders = ""
        var signedHeaders = ""
        canonicalHeaders.reserveCapacity(256)
        signedHeaders.reserveCapacity(128)
        var previous: String? = nil
        for i in order {
            let f = fields[i]
            if f.name == previous {
                canonicalHeaders += "," + f.value
                continue
            }
            if previous != nil {
                canonicalHeaders += "\n"
                signedHeaders += ";"
            }
            canonicalHeaders += f.name + ":" + f.value
            signedHeaders += f.name
            previous = f.name
        }

        let payloadHash =
            request.header("X-Amz-Content-SHA256")
            ?? request.bodyBuffer.withUnsafeReadableBytes { hex(Array(SHA256.hash(data: $0))) }
        var canonicalRequest = request.method.uppercased()
        canonicalRequest.reserveCapacity(canonicalHeaders.utf8.count + signedHeaders.utf8.count + 256)
        canonicalRequest += "\n" + canonicalURI(request.path)
        canonicalRequest += "\n" + canonicalQuery(request.query)
        canonicalRequest += "\n" + canonicalHeaders + "\n"
        canonicalRequest += "\n" + signedHeaders
        canonicalRequest += "\n" + payloadHash

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", stamp, scope, hexSHA256(Array(canonicalRequest.utf8)),
        ].joined(separator: "\n")

        let key = signingKeys.key(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        let signature = hex(Array(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key)))
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        request.setHeader("Authorization", authorization)
        return SigV4Signature(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature,
            authorization: authorization, signedHeaders: signedHeaders)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
    public static func amzDate(_ date: Date) -> String {
        var t = time_t(floor(date.timeIntervalSince1970))
        var tmv = tm()
        gmtime_r(&t, &tmv)
        // Written digit by digit: String(format:) costs more than the rest of a signature.
        var out = [UInt8]()
        out.reserveCapacity(16)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8((v / divisor) % 10))
                v %= divisor
                divisor /= 10
            }
        }
        put(Int(tmv.tm_year) + 1900, 4)
        put(Int(tmv.tm_mon) + 1, 2)
        put(Int(tmv.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        put(Int(tmv.tm_hour), 2)
        put(Int(tmv.tm_min), 2)
        put(Int(tmv.tm_sec), 2)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses `YYYYMMDD'T'HHMMSS'Z'`.
    public static func parseAmzDate(_ s: String) -> Date? {
        let u = Array(s.utf8)
        guard u.count == 16, u[8] == UInt8(ascii: "T"), u[15] == UInt8(ascii: "Z") else { return nil }
        func num(_ r: Range<Int>) -> Int? { Int(String(decoding: u[r], as: UTF8.self)) }
        guard let y = num(0..<4), let mo = num(4..<6), let d = num(6..<8), let h = num(9..<11),
            let mi = num(11..<13), let se = num(13..<15)
        else { return nil }
        var tmv = tm()
        tmv.tm_year = Int32(y - 1900)
        tmv.tm_mon = Int32(mo - 1)
        tmv.tm_mday = Int32(d)
        tmv.tm_hour = Int32(h)
        tmv.tm_min = Int32(mi)
        tmv.tm_sec = Int32(se)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&tmv)))
    }

    /// Keys derived recently: an upload signs thousands of requests with one secret, day, region and service.
    static let signingKeys = SigningKeyCache()

    static func signingKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// Dot segments removed (RFC 3986 §5.2.4, as botocore's `normalize_url_path`), then encoded once.
    static func canonicalURI(_ path: String) -> String {
        percentEncode(removeDotSegments(path), keeping: "/~")
    }

    /// botocore's `normalize_url_path`: empty path → `/`; empty, `.` and `..` segments removed; the leading
    /// slash kept; a trailing slash kept only when something is left.
    static func removeDotSegments(_ path: String) -> String {
        if path.isEmpty { return "/" }
        // The usual path (`/snapshots/snap-…/blocks/7`): absolute, no dot and no empty segment, so nothing to remove.
        if path.utf8.first == UInt8(ascii: "/"), !path.utf8.contains(UInt8(ascii: ".")) {
            var previousSlash = true
            var clean = true
            for b in path.utf8.dropFirst() {
                let slash = b == UInt8(ascii: "/")
                if slash && previousSlash { clean = false; break }
                previousSlash = slash
            }
            if clean { return path }
        }
        var out: [Substring] = []
        for p in path.split(separator: "/", omittingEmptySubsequences: true) {
            if p == "." { continue }
            if p == ".." {
                if !out.isEmpty { out.removeLast() }
            } else {
                out.append(p)
            }
        }
        let first = path.hasPrefix("/") ? "/" : ""
        let last = path.hasSuffix("/") && !out.isEmpty ? "/" : ""
        return first + out.joined(separator: "/") + last
    }

    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        if query.isEmpty { return "" }
        let encoded: [(String, String)] = query.map { item in
            (percentEncode(item.name, keeping: ""), percentEncode(item.value, keeping: ""))
        }
        let sorted = encoded.sorted { (a: (String, String), b: (String, String)) -> Bool in
            a.0 == b.0 ? a.1 < b.1 : a.0 < b.0
        }
        return sorted.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    /// Percent-encodes UTF-8 bytes, keeping RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`) and the
    /// ASCII characters in `keeping`. Hex digits are upper case.
    public static func percentEncode(_ s: String, keeping: String) -> String {
        let keep = Set(keeping.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        let hexDigits = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(b)
            default:
                if keep.contains(b) {
                    out.append(b)
                } else {
                    out.append(UInt8(ascii: "%"))
                    out.append(hexDigits[Int(b >> 4)])
                    out.append(hexDigits[Int(b & 0xF)])
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `%XX` escapes (and nothing else). Invalid escapes are kept as they are.
    public static func percentDecode(_ s: String) -> String {
        let u = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        func hexVal(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let h = hexVal(u[i + 1]), let l = hexVal(u[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Header field names compared as HTTP does, ignoring ASCII case (field names are ASCII tokens), without
    /// allocating.
    static func sameFieldName(_ a: String, _ b: String) -> Bool {
        let (x, y) = (a.utf8, b.utf8)
        return x.count == y.count
            && zip(x, y).allSatisfy { p in
                p.0 | (isUpperASCII(p.0) ? 0x20 : 0) == p.1 | (isUpperASCII(p.1) ? 0x20 : 0)
            }
    }

    /// A field name in lower case; an ASCII name without upper-case letters is returned as it is.
    static func lowercasedFieldName(_ name: String) -> String {
        let u = name.utf8
        if !u.contains(where: { isUpperASCII($0) || $0 >= 128 }) { return name }
        if u.contains(where: { $0 >= 128 }) { return name.lowercased() }
        return String(decoding: u.map { isUpperASCII($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    static func isUpperASCII(_ b: UInt8) -> Bool { (65...90).contains(b) }

    /// Python's `' '.join(value.split())`: strips and collapses runs of whitespace (space, tab, CR, LF, VT, FF).
    static func trimAll(_ value: String) -> String {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        let u = value.utf8
        // Most values have no whitespace to strip or collapse: returned as they are.
        var previousSpace = true
        var clean = true
        for b in u {
            if isSpace(b) {
                if previousSpace || b != 0x20 { clean = false; break }
                previousSpace = true
            } else {
                previousSpace = false
            }
        }
        if clean && (!previousSpace || u.isEmpty) { return value }
        return u.split(whereSeparator: isSpace).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    /// Lower-case hex of SHA-256.
    public static func hexSHA256(_ bytes: [UInt8]) -> String {
        hex(Array(SHA256.hash(data: bytes)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The signing keys derived last, by secret and scope: the HMAC chain is then computed once per scope and day
/// rather than once per request. Holds at most eight keys, in memory only.
final class SigningKeyCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(secret: String, scope: String, key: SymmetricKey)] = []

    func key(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        let scope = day + "/" + region + "/" + service
        lock.lock()
        defer { lock.unlock() }
        if let e = entries.first(where: { $0.scope == scope && $0.secret == secret }) { return e.key }
        let k = SigV4.signingKey(secret: secret, day: day, region: region, service: service)
        if entries.count == 8 { entries.removeFirst() }
        entries.append((secret, scope, k))
        return k
    }
}

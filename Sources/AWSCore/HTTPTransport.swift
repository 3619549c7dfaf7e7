// The seam between the AWS clients and the network. Everything above it (signing, error parsing, the upload
// state machine) is tested with an in-memory transport; the AsyncHTTPClient one lives in AsyncHTTPTransport.swift.

/// An HTTP response, fully read.
public struct HTTPResponse: Sendable {
    /// The status code.
    public var status: Int
    /// Header fields as received.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, compared without case.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first(where: { $0.name.lowercased() == lower })?.value
    }

    /// The body as UTF-8 text (invalid bytes replaced).
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Sends one HTTP request; no retries, no signing.
public protocol HTTPTransport: Sendable {
    /// Sends `request` and reads the whole response.
    ///
    /// - Parameters:
    ///   - request: a signed request.
    ///   - timeout: the limit for this attempt, from sending to the last body byte.
    /// - Returns: the response, whatever its status.
    /// - Throws: ``TransportError`` when no complete response arrived.
    func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse
}

/// A request that got no complete response.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for retry decisions.
    public enum Kind: String, Sendable {
        /// The attempt's time limit passed (stalled server, slow network).
        case timeout
        /// The connection could not be made (refused, unreachable, DNS).
        case connect
        /// The connection closed or was reset before the response was complete.
        case connectionLost
        /// The request could not be built (bad URL); never retried.
        case invalidRequest
        /// Cancelled by the caller; never retried.
        case cancelled
        /// Anything else the HTTP stack reported.
        case other
    }

    /// The kind.
    public var kind: Kind
    /// A human-readable detail (never contains headers or credentials).
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

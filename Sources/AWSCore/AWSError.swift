// Errors from AWS services, and how each one is treated by retries.
//
// EBS (rest-json) sends the error name in `x-amzn-ErrorType` and a JSON body with `Message`/`message` and
// `Reason`; EC2 (query) sends `<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors>
// <RequestID>…</RequestID></Response>`. Like botocore, the code keeps only the part before `:` and after `#`.
// moto answers many bad requests with an HTML 500 page: that must parse as a plain "HTTP 500" error.

import Foundation

/// An error response from an AWS service.
public struct AWSServiceError: Error, Sendable, CustomStringConvertible {
    /// The operation, e.g. `PutSnapshotBlock`.
    public var operation: String
    /// The HTTP status.
    public var status: Int
    /// The error code, e.g. `RequestThrottledException`, `InvalidSnapshot.NotFound`, or `HTTP 500` when the
    /// body carried none.
    public var code: String
    /// The service's message (may be empty).
    public var message: String
    /// The EBS `Reason` field, e.g. `SNAPSHOT_NOT_FOUND`.
    public var reason: String?
    /// The request id, for AWS support.
    public var requestID: String?

    /// Creates an error.
    public init(
        operation: String, status: Int, code: String, message: String, reason: String? = nil,
        requestID: String? = nil
    ) {
        self.operation = operation
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason
        self.requestID = requestID
    }

    /// Parses an error response of either protocol.
    public init(operation: String, response: HTTPResponse) {
        self.operation = operation
        self.status = response.status
        self.requestID = response.header("x-amzn-RequestId") ?? response.header("x-amz-request-id")
        var code: String? = response.header("x-amzn-ErrorType")
        var message = ""
        var reason: String?
        let body = response.body
        let first = body.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 })
        if first == UInt8(ascii: "{"),
            let obj = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        {
            if code == nil { code = (obj["__type"] ?? obj["code"] ?? obj["Code"]) as? String }
            message = ((obj["Message"] ?? obj["message"]) as? String) ?? ""
            reason = obj["Reason"] as? String
        } else if first == UInt8(ascii: "<"), let tree = try? XMLTree.parse(body),
            tree.name == "Response" || tree.name == "ErrorResponse" || tree.name == "Error"
        {
            let err = tree.name == "Error" ? tree : tree.firstDescendant("Error")
            if let e = err {
                code = e.child("Code")?.text ?? code
                message = e.child("Message")?.text ?? ""
            }
            requestID = requestID ?? tree.child("RequestID")?.text ?? tree.child("RequestId")?.text
        }
        if var c = code {
            if let colon = c.firstIndex(of: ":") { c = String(c[..<colon]) }
            if let hash = c.lastIndex(of: "#") { c = String(c[c.index(after: hash)...]) }
            code = c.isEmpty ? nil : c
        }
        self.code = code ?? "HTTP \(response.status)"
        self.message = message
        self.reason = reason
    }

    /// How a retry loop should treat this error.
    public var retryClass: RetryClass {
        let throttles: Set<String> = [
            "RequestThrottledException", "ThrottlingException", "Throttling", "ThrottledException",
            "ConcurrentLimitExceededException", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown",
            "RequestThrottled", "ProvisionedThroughputExceededException", "EC2ThrottledException",
            "BandwidthLimitExceeded", "PriorRequestNotComplete",
        ]
        if throttles.contains(code) || status == 429 { return .throttled }
        let denied: Set<String> = [
            "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "AuthFailure",
            "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "ExpiredToken",
            "ExpiredTokenException", "InvalidAccessKeyId", "MissingAuthenticationToken", "OptInRequired",
            "Blocked", "IncompleteSignature",
        ]
        if denied.contains(code) || status == 401 || status == 403 { return .accessDenied }
        if code == "ResourceNotFoundException" || status == 404 { return .notFound }
        if code == "ValidationException" && reason == "WRITE_REQUEST_TIMEOUT" { return .transient }
        if code == "RequestTimeout" || code == "RequestTimeoutException" || code == "IDPCommunicationError" {
            return .transient
        }
        if status >= 500 { return .transient }
        return .fatal
    }

    public var description: String {
        var s = "\(operation) failed: \(code)"
        if let reason { s += " (\(reason))" }
        s += ", HTTP \(status)"
        if !message.isEmpty && message != "None" { s += ": \(message)" }
        if let requestID { s += " [request id \(requestID)]" }
        return s
    }
}

/// How a failed attempt is treated.
public enum RetryClass: String, Sendable, Equatable {
    /// Throttling (`RequestThrottledException`, `ThrottlingException`, HTTP 429): retry after a backoff.
    case throttled
    /// 5xx, timeouts, resets: retry after a backoff.
    case transient
    /// The endpoint could not be reached at all (connection refused, no route, name not found, connect
    /// timeout): retried as the AWS SDKs' standard retry mode does, 3 attempts unless `max_attempts` says
    /// otherwise (``RetryPolicy/connectionMaxAttempts``).
    case connection
    /// `ResourceNotFoundException`: retried only while a snapshot is fresh (EBS is eventually consistent
    /// right after StartSnapshot), fatal otherwise.
    case notFound
    /// Access denied or bad credentials: stop at once, never retry.
    case accessDenied
    /// Validation and every other client error: never retried.
    case fatal
}

extension TransportError {
    /// Transport failures are retried, except a bad request or a cancellation; a connection that could not be
    /// made at all is ``RetryClass/connection``.
    public var retryClass: RetryClass {
        switch kind {
        case .invalidRequest, .cancelled: return .fatal
        case .connect: return .connection
        default: return .transient
        }
    }
}

/// A problem with configuration or credentials, with a message meant for the user.
public struct AWSConfigurationError: OptionNamingError, Sendable, Equatable {
    /// What is wrong and, where possible, what to do; options named by ``OptionName``.
    public var text: OptionText
    /// What is wrong and, where possible, what to do.
    public var message: String { text.description }
    /// Creates an error.
    public init(_ message: String) { text = OptionText(plain: message) }
    /// Creates an error whose message names options.
    public init(_ text: OptionText) { self.text = text }
    public func message(spelling spell: (OptionName) -> String) -> String { text.rendered(spell) }
    public var description: String { message }
}

/// A response that arrived but could not be understood.
public struct AWSResponseError: Error, Sendable, CustomStringConvertible {
    /// The operation.
    public var operation: String
    /// What was wrong with it.
    public var message: String
    /// Creates an error.
    public init(operation: String, _ message: String) {
        self.operation = operation
        self.message = message
    }
    public var description: String { "\(operation): malformed response: \(message)" }
}

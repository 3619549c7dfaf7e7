// Retry timing. Pure: the random source and the clock are passed in, so tests are exact.
//
// Backoff is capped exponential with "equal jitter": attempt n waits d/2 + U(0, d/2), where
// d = min(cap, base · 2^(n-1)). Throttling uses a larger base than other transient failures. An operation
// stops after `maxAttempts` attempts or when `operationTimeout` has passed since its first attempt, whichever
// comes first. Access denied and validation errors stop at once. A not-found on a snapshot younger than
// `notFoundWindow` is retried for as long as the window (and the operation time limit) allows.
//
// A connection that cannot be made at all (refused, no route, unknown host) follows the AWS SDKs' "standard"
// retry mode (AWS SDKs and Tools reference guide, "Retry behavior"): at most `connectionMaxAttempts` attempts
// (3 unless AWS_MAX_ATTEMPTS or the profile's max_attempts says otherwise), each delay drawn uniformly from
// 0 to min(connectionBaseDelay · 2^(n-1), maxDelay) ("full jitter", base 1 s, cap 20 s), so a closed port
// fails within seconds instead of a minute.

/// Limits and delays for retrying one operation.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts per operation, the first one included.
    public var maxAttempts: Int
    /// Base delay for 5xx, timeouts and resets.
    public var baseDelay: Duration
    /// Base delay after throttling.
    public var throttleBaseDelay: Duration
    /// Longest single delay.
    public var maxDelay: Duration
    /// Time limit of one attempt.
    public var attemptTimeout: Duration
    /// Time limit of one operation, from its first attempt to its last.
    public var operationTimeout: Duration
    /// How long after StartSnapshot a `ResourceNotFoundException` is still taken as EBS catching up.
    public var notFoundWindow: Duration
    /// Attempts when the endpoint cannot be reached at all (``RetryClass/connection``), the first included.
    public var connectionMaxAttempts: Int
    /// Base of the standard mode's backoff for connection failures.
    public var connectionBaseDelay: Duration

    /// Creates a policy. The defaults suit AWS.
    public init(
        maxAttempts: Int = 10, baseDelay: Duration = .milliseconds(250), throttleBaseDelay: Duration = .seconds(1),
        maxDelay: Duration = .seconds(20), attemptTimeout: Duration = .seconds(30),
        operationTimeout: Duration = .seconds(300), notFoundWindow: Duration = .seconds(120),
        connectionMaxAttempts: Int = 3, connectionBaseDelay: Duration = .seconds(1)
    ) {
        self.connectionMaxAttempts = connectionMaxAttempts
        self.connectionBaseDelay = connectionBaseDelay
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.throttleBaseDelay = throttleBaseDelay
        self.maxDelay = maxDelay
        self.attemptTimeout = attemptTimeout
        self.operationTimeout = operationTimeout
        self.notFoundWindow = notFoundWindow
    }

    /// The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed with `retryClass`.
    public func delay(
        afterAttempt attempt: Int, retryClass: RetryClass, using rng: inout some RandomNumberGenerator
    ) -> Duration {
        if retryClass == .connection {  // standard mode: full jitter
            let exp = min(max(attempt - 1, 0), 30)
            let cap = min(connectionBaseDelay * (1 << exp), maxDelay)
            return .nanoseconds(Int64(Double(Self.nanos(cap)) * Double.random(in: 0...1, using: &rng)))
        }
        let base = retryClass == .throttled ? throttleBaseDelay : baseDelay
        let exp = min(max(attempt - 1, 0), 30)
        let raw = base * (1 << exp)
        let d = min(raw, maxDelay)
        let half = d / 2
        let jitterNanos = Double(Self.nanos(half)) * Double.random(in: 0...1, using: &rng)
        return half + .nanoseconds(Int64(jitterNanos))
    }

    /// Whether to try again, and why not when not.
    ///
    /// - Parameters:
    ///   - retryClass: how the last attempt failed.
    ///   - attempt: attempts made so far (1 after the first).
    ///   - elapsed: time since the operation's first attempt.
    ///   - sinceSnapshotStart: time since StartSnapshot returned, when the operation concerns a fresh
    ///     snapshot; a not-found is retried only within ``notFoundWindow`` of it.
    /// - Returns: nil to retry, or the reason to give up.
    public func giveUpReason(
        retryClass: RetryClass, attempt: Int, elapsed: Duration, sinceSnapshotStart: Duration?
    ) -> String? {
        switch retryClass {
        case .accessDenied: return "not retried: check the credentials and their permissions"
        case .fatal: return "not retried"
        case .connection:
            if attempt >= attempts(for: .connection) {
                return "gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"); check that the endpoint is right "
                    + "and reachable, and that its server is running"
            }
            if elapsed >= operationTimeout { return "gave up after \(elapsed) (operation time limit)" }
            return nil
        case .notFound:
            guard let s = sinceSnapshotStart, s < notFoundWindow else {
                return "not found, and the snapshot is not new enough for that to be transient"
            }
            // Inside the window the window is the limit, not the attempt count: short backoffs can use up
            // every attempt before EBS has caught up with a snapshot it just created.
            if elapsed >= operationTimeout { return "gave up after \(elapsed) (operation time limit)" }
            return nil
        case .throttled, .transient: break
        }
        if attempt >= maxAttempts { return "gave up after \(attempt) attempts" }
        if elapsed >= operationTimeout { return "gave up after \(elapsed) (operation time limit)" }
        return nil
    }

    /// The attempt limit for failures of `retryClass`.
    public func attempts(for retryClass: RetryClass) -> Int {
        retryClass == .connection ? connectionMaxAttempts : maxAttempts
    }

    /// Applies the retry settings of the AWS configuration (``AWSConfiguration/retrySettings()``): in the
    /// standard (or adaptive) mode `max_attempts` limits every retried failure and connection failures get 3
    /// attempts when it is not set; in the legacy mode zlabel's own limits stay, connection failures included.
    public mutating func apply(_ settings: RetrySettings) {
        switch settings.mode {
        case .standard, .adaptive:
            if let n = settings.maxAttempts {
                maxAttempts = n
                connectionMaxAttempts = n
            }
        case .legacy:
            if let n = settings.maxAttempts { maxAttempts = n }
            connectionMaxAttempts = maxAttempts
        }
    }

    static func nanos(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}

/// A small seeded generator (SplitMix64) for jitter that tests can repeat.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// Creates a generator from a seed.
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Where log lines go. The CLI writes them to standard error; tests collect them.
public struct AWSLog: Sendable {
    /// Importance of a line.
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }
    /// Receives each line.
    public var emit: @Sendable (Level, String) -> Void

    /// Creates a log.
    public init(_ emit: @escaping @Sendable (Level, String) -> Void) { self.emit = emit }

    /// Discards everything.
    public static let silent = AWSLog { _, _ in }

    /// Logs at debug level.
    public func debug(_ s: @autoclosure () -> String) { emit(.debug, s()) }
    /// Logs at info level.
    public func info(_ s: @autoclosure () -> String) { emit(.info, s()) }
    /// Logs at warning level.
    public func warning(_ s: @autoclosure () -> String) { emit(.warning, s()) }
}

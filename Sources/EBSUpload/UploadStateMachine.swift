// The upload as a synchronous state machine: what to send next, what to retry and when, when to complete,
// when to stop. It does no I/O and reads no clock: the driver passes the time (`now`, a Duration since the
// upload began) with every call, and the machine's jitter comes from a seeded generator. Tests run it with
// scripted results and exact times.
//
//   needStart ──StartSnapshot ok──▶ uploading ──all blocks done──▶ completing ──CompleteSnapshot ok──▶ finished
//       │ (resumed: enters uploading or completing directly)                         any fatal error ──▶ failed
//
// In `uploading`, at most `workers` blocks are in flight (a block waiting out its retry delay counts: that
// also slows the client down under throttling). A block that failed with a retryable error goes back to a
// retry queue, which is served before new blocks. The first fatal error (access denied, validation, retries
// used up) stops all new dispatching; the machine fails once the blocks in flight have come back (the driver
// also cancels them).

public import AWSCore

/// How one block ended.
public enum BlockOutcome: Sendable, Equatable {
    /// Sent (data).
    case uploaded
    /// Sent as zeros, to clear a block the parent snapshot holds.
    case uploadedZero
    /// All zeros in an unencrypted snapshot: not sent.
    case skippedZero
    /// Same XXH3 as the parent's block: not sent.
    case skippedUnchanged
    /// Already acknowledged in an earlier, interrupted run.
    case alreadyUploaded
}

/// Why an upload stopped.
public struct UploadFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// `StartSnapshot`, `PutSnapshotBlock`, `CompleteSnapshot`, or `ReadImage`.
    public var operation: String
    /// The block, for PutSnapshotBlock and ReadImage.
    public var block: UInt64?
    /// The last error.
    public var error: String
    /// Why it was not retried.
    public var reason: String
    /// The error's class.
    public var retryClass: RetryClass

    /// Creates a failure.
    public init(operation: String, block: UInt64?, error: String, reason: String, retryClass: RetryClass) {
        self.operation = operation
        self.block = block
        self.error = error
        self.reason = reason
        self.retryClass = retryClass
    }

    public var description: String {
        var s = operation
        if let block { s += " of block \(block)" }
        // A service error already starts with "OPERATION failed: "; say it once.
        let detail = error.hasPrefix("\(operation) failed: ") ? String(error.dropFirst(operation.count + 9)) : error
        return s + " failed: \(detail) (\(reason))"
    }
}

/// The upload's scheduling and retry logic.
public struct UploadStateMachine: Sendable {
    /// What the driver should do next.
    public enum Action: Sendable, Equatable {
        /// Send StartSnapshot after `delay` (attempt counts from 1).
        case startSnapshot(attempt: Int, delay: Duration)
        /// Read, hash and (unless skipped) send block `index` after `delay`.
        case processBlock(index: UInt64, attempt: Int, delay: Duration)
        /// Send CompleteSnapshot after `delay`.
        case completeSnapshot(attempt: Int, delay: Duration)
        /// Nothing to start now: wait for a result.
        case awaitResult
        /// Done.
        case finished(snapshotID: String)
        /// Stopped.
        case failed(UploadFailure)
    }

    /// A result the driver reports.
    public enum Event: Sendable {
        /// StartSnapshot returned a snapshot.
        case snapshotStarted(id: String)
        /// StartSnapshot failed.
        case startFailed(RetryClass, String)
        /// A block is done.
        case blockDone(index: UInt64, outcome: BlockOutcome)
        /// A block attempt failed.
        case blockFailed(index: UInt64, RetryClass, String)
        /// CompleteSnapshot succeeded.
        case completed(status: String)
        /// CompleteSnapshot failed.
        case completeFailed(RetryClass, String)
    }

    /// Counters.
    public struct Counts: Sendable, Equatable {
        /// Blocks sent with data.
        public var uploaded = 0
        /// Zero blocks sent to clear the parent's.
        public var uploadedZero = 0
        /// Zero blocks not sent.
        public var skippedZero = 0
        /// Unchanged blocks not sent.
        public var skippedUnchanged = 0
        /// Blocks sent by an earlier run.
        public var alreadyUploaded = 0
        /// Retries of any operation.
        public var retries = 0
        /// All blocks done, whatever the outcome.
        public var blocksDone: Int {
            uploaded + uploadedZero + skippedZero + skippedUnchanged + alreadyUploaded
        }
    }

    enum Phase: Sendable, Equatable {
        case needStart, starting, uploading, completing, finished(String), failed(UploadFailure)
    }

    struct Attempts: Sendable {
        var count: Int
        var firstAt: Duration
    }

    let policy: RetryPolicy
    let workers: Int
    var rng: SplitMix64
    var cursor: BlockCursor
    var phase: Phase
    /// The snapshot, once known.
    public private(set) var snapshotID: String?
    var startedAt: Duration?
    var inFlight: [UInt64: Attempts] = [:]
    var retryQueue: [(index: UInt64, attempts: Attempts, delay: Duration)] = []
    var op: Attempts?
    var opPending: (attempt: Int, delay: Duration)?
    var stopping: UploadFailure?
    /// Counters so far.
    public private(set) var counts = Counts()

    /// A machine for a new upload, or for resuming one.
    ///
    /// - Parameters:
    ///   - candidates: block index ranges to go through, sorted.
    ///   - workers: blocks in flight at most (≥ 1).
    ///   - policy: retry limits.
    ///   - seed: seeds the jitter.
    ///   - resumeSnapshotID: the snapshot of an interrupted run; skips StartSnapshot. Not-found errors are
    ///     then never taken as transient (the snapshot is not new).
    ///   - resumeCompleting: the interrupted run had already sent CompleteSnapshot.
    public init(
        candidates: [Range<UInt64>], workers: Int, policy: RetryPolicy, seed: UInt64,
        resumeSnapshotID: String? = nil, resumeCompleting: Bool = false
    ) {
        self.policy = policy
        self.workers = max(1, workers)
        self.rng = SplitMix64(seed: seed)
        self.cursor = BlockCursor(ranges: resumeCompleting ? [] : candidates)
        if let id = resumeSnapshotID {
            snapshotID = id
            phase = resumeCompleting ? .completing : .uploading
            if resumeCompleting { opPending = (1, .zero) }
        } else {
            phase = .needStart
        }
    }

    /// True once a fatal error stopped new work; the driver should cancel what is in flight.
    public var isStopping: Bool { stopping != nil }

    /// Whether the upload has given up (its failure is then thrown, so the give-up line need not be shown too).
    public var hasGivenUp: Bool {
        if stopping != nil { return true }
        if case .failed = phase { return true }
        return false
    }

    /// Blocks dispatched and not yet reported.
    public var inFlightCount: Int { inFlight.count }

    /// The next thing to do.
    public mutating func next(now: Duration) -> Action {
        switch phase {
        case .finished(let id): return .finished(snapshotID: id)
        case .failed(let f): return .failed(f)
        default: break
        }
        if let f = stopping {
            if inFlight.isEmpty {
                phase = .failed(f)
                return .failed(f)
            }
            return .awaitResult
        }
        switch phase {
        case .needStart:
            phase = .starting
            op = Attempts(count: 1, firstAt: now)
            return .startSnapshot(attempt: 1, delay: .zero)
        case .starting:
            if let p = opPending {
                opPending = nil
                return .startSnapshot(attempt: p.attempt, delay: p.delay)
            }
            return .awaitResult
        case .uploading:
            if inFlight.count < workers {
                if !retryQueue.isEmpty {
                    let r = retryQueue.removeFirst()
                    inFlight[r.index] = r.attempts
                    return .processBlock(index: r.index, attempt: r.attempts.count, delay: r.delay)
                }
                if let i = cursor.next() {
                    inFlight[i] = Attempts(count: 1, firstAt: now)
                    return .processBlock(index: i, attempt: 1, delay: .zero)
                }
                if inFlight.isEmpty {
                    phase = .completing
                    op = Attempts(count: 1, firstAt: now)
                    return .completeSnapshot(attempt: 1, delay: .zero)
                }
            }
            return .awaitResult
        case .completing:
            if let p = opPending {
                opPending = nil
                if op == nil { op = Attempts(count: p.attempt, firstAt: now) }
                return .completeSnapshot(attempt: p.attempt, delay: p.delay)
            }
            return .awaitResult
        case .finished, .failed:
            fatalError("unreachable")
        }
    }

    /// Takes a result. Returns a line for the log when something was retried or given up.
    @discardableResult
    public mutating func handle(_ event: Event, now: Duration) -> String? {
        switch event {
        case .snapshotStarted(let id):
            snapshotID = id
            startedAt = now
            op = nil
            phase = .uploading
            return nil
        case .startFailed(let cls, let msg):
            return opFailed("StartSnapshot", cls, msg, now: now)
        case .blockDone(let index, let outcome):
            inFlight[index] = nil
            switch outcome {
            case .uploaded: counts.uploaded += 1
            case .uploadedZero: counts.uploadedZero += 1
            case .skippedZero: counts.skippedZero += 1
            case .skippedUnchanged: counts.skippedUnchanged += 1
            case .alreadyUploaded: counts.alreadyUploaded += 1
            }
            return nil
        case .blockFailed(let index, let cls, let msg):
            guard let a = inFlight.removeValue(forKey: index) else { return nil }
            if stopping != nil { return nil }
            let fresh = startedAt.map { now - $0 }
            if let why = policy.giveUpReason(
                retryClass: cls, attempt: a.count, elapsed: now - a.firstAt, sinceSnapshotStart: fresh)
            {
                let op = cls == .fatal && msg.hasPrefix("read") ? "ReadImage" : "PutSnapshotBlock"
                stopping = UploadFailure(operation: op, block: index, error: msg, reason: why, retryClass: cls)
                return "block \(index): giving up: \(msg) (\(why))"
            }
            let d = policy.delay(afterAttempt: a.count, retryClass: cls, using: &rng)
            counts.retries += 1
            retryQueue.append((index, Attempts(count: a.count + 1, firstAt: a.firstAt), d))
            return "retry \(a.count + 1)/\(policy.attempts(for: cls)) of PutSnapshotBlock block \(index) in \(Self.seconds(d)) s after \(cls.rawValue): \(msg)"
        case .completed:
            guard let id = snapshotID else { return nil }
            phase = .finished(id)
            return nil
        case .completeFailed(let cls, let msg):
            return opFailed("CompleteSnapshot", cls, msg, now: now)
        }
    }

    private mutating func opFailed(_ name: String, _ cls: RetryClass, _ msg: String, now: Duration) -> String {
        let a = op ?? Attempts(count: 1, firstAt: now)
        let fresh = name == "CompleteSnapshot" ? startedAt.map { now - $0 } : nil
        if let why = policy.giveUpReason(retryClass: cls, attempt: a.count, elapsed: now - a.firstAt, sinceSnapshotStart: fresh) {
            let f = UploadFailure(operation: name, block: nil, error: msg, reason: why, retryClass: cls)
            phase = .failed(f)
            return "\(name): giving up: \(msg) (\(why))"
        }
        let d = policy.delay(afterAttempt: a.count, retryClass: cls, using: &rng)
        counts.retries += 1
        op = Attempts(count: a.count + 1, firstAt: a.firstAt)
        opPending = (a.count + 1, d)
        return "retry \(a.count + 1)/\(policy.attempts(for: cls)) of \(name) in \(Self.seconds(d)) s after \(cls.rawValue): \(msg)"
    }

    static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        let frac = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }
}

/// Walks sorted block ranges one index at a time.
public struct BlockCursor: Sendable {
    let ranges: [Range<UInt64>]
    var r = 0
    var i: UInt64

    /// Creates a cursor.
    public init(ranges: [Range<UInt64>]) {
        self.ranges = ranges.filter { !$0.isEmpty }
        i = self.ranges.first?.lowerBound ?? 0
    }

    /// The total number of indexes.
    public var total: UInt64 { ranges.reduce(0) { $0 + UInt64($1.count) } }

    /// The next index, or nil at the end.
    public mutating func next() -> UInt64? {
        guard r < ranges.count else { return nil }
        let v = i
        i += 1
        if i >= ranges[r].upperBound {
            r += 1
            if r < ranges.count { i = ranges[r].lowerBound }
        }
        return v
    }
}

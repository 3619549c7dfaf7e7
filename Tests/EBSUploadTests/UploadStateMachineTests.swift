import AWSCore
import EBSUpload
import Testing

/// The upload state machine with scripted results and times: no network, no clock.
@Suite("Upload state machine")
struct UploadStateMachineTests {
    static let policy = RetryPolicy(
        maxAttempts: 4, baseDelay: .milliseconds(100), throttleBaseDelay: .seconds(1), maxDelay: .seconds(5),
        attemptTimeout: .seconds(10), operationTimeout: .seconds(60), notFoundWindow: .seconds(120))

    static func started(_ candidates: [Range<UInt64>], workers: Int = 2) -> UploadStateMachine {
        var m = UploadStateMachine(candidates: candidates, workers: workers, policy: policy, seed: 1)
        #expect(m.next(now: .zero) == .startSnapshot(attempt: 1, delay: .zero))
        #expect(m.next(now: .zero) == .awaitResult)
        m.handle(.snapshotStarted(id: "snap-1"), now: .seconds(1))
        return m
    }

    @Test("walks every candidate once, never more than `workers` in flight, then completes")
    func happyPath() {
        var m = Self.started([0..<3, 10..<12], workers: 2)
        var inFlight: [UInt64] = []
        var done: [UInt64] = []
        var t = Duration.seconds(1)
        for _ in 0..<100 {
            let a = m.next(now: t)
            #expect(m.inFlightCount <= 2)
            switch a {
            case .processBlock(let i, let attempt, let delay):
                #expect(attempt == 1 && delay == .zero)
                inFlight.append(i)
            case .awaitResult:
                let i = inFlight.removeFirst()
                m.handle(.blockDone(index: i, outcome: i == 2 ? .skippedZero : .uploaded), now: t)
                done.append(i)
            case .completeSnapshot(let attempt, _):
                #expect(attempt == 1)
                #expect(inFlight.isEmpty)
                m.handle(.completed(status: "pending"), now: t)
            case .finished(let id):
                #expect(id == "snap-1")
                #expect(done == [0, 1, 2, 10, 11])
                #expect(m.counts.uploaded == 4 && m.counts.skippedZero == 1)
                return
            default:
                Issue.record("unexpected \(a)")
                return
            }
            t += .milliseconds(1)
        }
        Issue.record("did not finish")
    }

    @Test("throttling is retried with growing, jittered, capped delays; each retry is logged")
    func throttleRetries() {
        var m = Self.started([5..<6], workers: 1)
        #expect(m.next(now: .seconds(1)) == .processBlock(index: 5, attempt: 1, delay: .zero))
        var last = Duration.zero
        for attempt in 1...3 {
            let line = m.handle(.blockFailed(index: 5, .throttled, "RequestThrottledException"), now: .seconds(2))
            #expect(line?.contains("retry \(attempt + 1)/4") == true)
            guard case .processBlock(5, attempt + 1, let d) = m.next(now: .seconds(2)) else {
                Issue.record("expected a retry")
                return
            }
            let cap = min(Duration.seconds(1) * (1 << (attempt - 1)), .seconds(5))
            #expect(d >= cap / 2 && d <= cap, "attempt \(attempt): \(d) within [\(cap / 2), \(cap)]")
            #expect(d >= last / 2)
            last = d
        }
        // Fourth failure: attempts used up.
        let line = m.handle(.blockFailed(index: 5, .transient, "HTTP 503"), now: .seconds(3))
        #expect(line?.contains("giving up") == true)
        guard case .failed(let f) = m.next(now: .seconds(3)) else {
            Issue.record("expected failure")
            return
        }
        #expect(f.block == 5 && f.reason.contains("4 attempts"))
        #expect(m.counts.retries == 3)
    }

    @Test("access denied: no retry, nothing new dispatched, fails once in-flight blocks return")
    func accessDeniedStops() {
        var m = Self.started([0..<100], workers: 3)
        for i in 0..<3 { #expect(m.next(now: .seconds(1)) == .processBlock(index: UInt64(i), attempt: 1, delay: .zero)) }
        m.handle(.blockFailed(index: 1, .accessDenied, "AccessDeniedException"), now: .seconds(1))
        #expect(m.isStopping)
        #expect(m.next(now: .seconds(1)) == .awaitResult)
        m.handle(.blockDone(index: 0, outcome: .uploaded), now: .seconds(1))
        #expect(m.next(now: .seconds(1)) == .awaitResult)
        m.handle(.blockFailed(index: 2, .transient, "cancelled"), now: .seconds(1))
        guard case .failed(let f) = m.next(now: .seconds(1)) else {
            Issue.record("expected failure")
            return
        }
        #expect(f.retryClass == .accessDenied && f.block == 1)
        #expect(m.counts.retries == 0)
    }

    @Test("not found is retried only while the snapshot is fresh")
    func notFoundWindow() {
        var m = Self.started([0..<2], workers: 2)
        _ = m.next(now: .seconds(1))
        _ = m.next(now: .seconds(1))
        m.handle(.blockFailed(index: 0, .notFound, "ResourceNotFoundException"), now: .seconds(30))
        #expect(!m.isStopping)
        m.handle(.blockFailed(index: 1, .notFound, "ResourceNotFoundException"), now: .seconds(200))
        #expect(m.isStopping)
    }

    @Test("inside the window, not found outlasts maxAttempts")
    func notFoundOutlastsAttempts() {
        var m = Self.started([0..<1], workers: 1)
        var now = Duration.seconds(1)
        guard case .processBlock(0, 1, _) = m.next(now: now) else {
            Issue.record("expected the first attempt")
            return
        }
        for attempt in 2...(Self.policy.maxAttempts + 5) {
            m.handle(.blockFailed(index: 0, .notFound, "ResourceNotFoundException"), now: now)
            #expect(!m.isStopping, "attempt \(attempt - 1) inside the window stopped the upload")
            now += .milliseconds(100)
            guard case .processBlock(0, attempt, _) = m.next(now: now) else {
                Issue.record("expected attempt \(attempt)")
                return
            }
        }
    }

    @Test("a resumed snapshot is not fresh: not found is fatal")
    func resumedNotFound() {
        var m = UploadStateMachine(candidates: [0..<1], workers: 1, policy: Self.policy, seed: 1, resumeSnapshotID: "snap-9")
        #expect(m.next(now: .zero) == .processBlock(index: 0, attempt: 1, delay: .zero))
        m.handle(.blockFailed(index: 0, .notFound, "gone"), now: .seconds(1))
        guard case .failed(let f) = m.next(now: .seconds(1)) else {
            Issue.record("expected failure")
            return
        }
        #expect(f.reason.contains("not new"))
    }

    @Test("StartSnapshot and CompleteSnapshot are retried; validation errors are not")
    func startAndComplete() {
        var m = UploadStateMachine(candidates: [], workers: 1, policy: Self.policy, seed: 9)
        #expect(m.next(now: .zero) == .startSnapshot(attempt: 1, delay: .zero))
        m.handle(.startFailed(.transient, "HTTP 500"), now: .seconds(1))
        guard case .startSnapshot(2, let d) = m.next(now: .seconds(1)) else {
            Issue.record("expected a StartSnapshot retry")
            return
        }
        #expect(d > .zero)
        m.handle(.snapshotStarted(id: "snap-2"), now: .seconds(2))
        #expect(m.next(now: .seconds(2)) == .completeSnapshot(attempt: 1, delay: .zero))
        m.handle(.completeFailed(.throttled, "ThrottlingException"), now: .seconds(2))
        guard case .completeSnapshot(2, _) = m.next(now: .seconds(2)) else {
            Issue.record("expected a CompleteSnapshot retry")
            return
        }
        m.handle(.completeFailed(.fatal, "ValidationException"), now: .seconds(3))
        guard case .failed(let f) = m.next(now: .seconds(3)) else {
            Issue.record("expected failure")
            return
        }
        #expect(f.operation == "CompleteSnapshot" && f.retryClass == .fatal)
    }

    @Test("resuming at CompleteSnapshot sends only CompleteSnapshot")
    func resumeCompleting() {
        var m = UploadStateMachine(
            candidates: [0..<10], workers: 4, policy: Self.policy, seed: 1, resumeSnapshotID: "snap-3",
            resumeCompleting: true)
        #expect(m.next(now: .zero) == .completeSnapshot(attempt: 1, delay: .zero))
        m.handle(.completed(status: "completed"), now: .zero)
        #expect(m.next(now: .zero) == .finished(snapshotID: "snap-3"))
    }

    @Test("retries are served before new blocks, and the operation time limit applies")
    func retryOrderAndDeadline() {
        var m = Self.started([0..<10], workers: 1)
        #expect(m.next(now: .seconds(1)) == .processBlock(index: 0, attempt: 1, delay: .zero))
        m.handle(.blockFailed(index: 0, .transient, "reset"), now: .seconds(1))
        guard case .processBlock(0, 2, _) = m.next(now: .seconds(1)) else {
            Issue.record("the retry should come first")
            return
        }
        m.handle(.blockFailed(index: 0, .transient, "reset"), now: .seconds(62))
        #expect(m.isStopping, "past the 60 s operation limit")
    }

    @Test("block cursor walks ranges in order")
    func cursor() {
        var c = BlockCursor(ranges: [3..<5, 5..<5, 9..<10])
        #expect(c.total == 3)
        var out: [UInt64] = []
        while let i = c.next() { out.append(i) }
        #expect(out == [3, 4, 9])
    }
}

@Suite("Upload failure messages")
struct UploadFailureMessageTests {
    @Test("a service error is named once: not 'StartSnapshot failed: StartSnapshot failed: …'")
    func operationNamedOnce() {
        let service = AWSServiceError(operation: "StartSnapshot", status: 403, code: "AccessDeniedException", message: "no")
        let f = UploadFailure(operation: "StartSnapshot", block: nil, error: service.description,
                              reason: "not retried", retryClass: .accessDenied)
        #expect(f.description == "StartSnapshot failed: AccessDeniedException, HTTP 403: no (not retried)")
        let block = UploadFailure(operation: "PutSnapshotBlock", block: 7, error: "connect: refused", reason: "r",
                                  retryClass: .connection)
        #expect(block.description == "PutSnapshotBlock of block 7 failed: connect: refused (r)")
    }
}

// The async driver around UploadStateMachine: it runs the machine's actions (StartSnapshot, block work in a
// task group of at most `workers` children, CompleteSnapshot), keeps the journal, and reports progress.
// Every decision (what next, retry or not, how long to wait) is the machine's; what to send is the plan's.

import AWSCore
import Crypto
import Foundation
import NIOCore

/// Runs one planned upload into its journal, from StartSnapshot (or the resumed snapshot) to CompleteSnapshot.
struct UploadDriver: Sendable {
    /// What a run did.
    struct Outcome: Sendable {
        var snapshotID: String
        var counts: UploadStateMachine.Counts
        var bytesRead: UInt64
        var bytesUploaded: UInt64
        /// CompleteSnapshot's status, `pending` until it answered otherwise.
        var completeStatus: String
        /// ChangedBlocksCount sent with CompleteSnapshot.
        var changedBlocks: Int
    }

    let ebs: EBSClient
    let resumption: UploadResumption
    let log: AWSLog
    let plan: UploadPlan
    let reader: ImageBlockReader
    let journal: UploadJournal
    let name: String
    let started: ContinuousClock.Instant

    /// Runs the upload; `resume` continues the journal's snapshot (or its StartSnapshot token).
    ///
    /// - Throws: ``SnapshotUploadError`` when the machine gives up; journal errors.
    func run(resume: Bool, progress: (@Sendable (UploadProgress) -> Void)?) async throws -> Outcome {
        let options = plan.options
        let header = journal.header
        let policy = options.policy
        var machine = UploadStateMachine(
            candidates: plan.candidates, workers: options.workers, policy: policy,
            seed: options.seed ?? UInt64.random(in: 0...UInt64.max),
            resumeSnapshotID: resume ? header.snapshotID : nil,
            resumeCompleting: resume && header.state.completing == header.state)
        var start = plan.startInput(clientToken: header.clientToken)
        var bytesRead: UInt64 = 0
        var bytesUploaded: UInt64 = 0
        var completeStatus = "pending"
        var changedBlocks = 0
        // A StartSnapshot with this token may already have reached AWS: in an interrupted run (the journal has
        // the token but no snapshot id) or in an earlier attempt of this run whose answer was lost.
        var tokenMayBeUsed = resume
        let work = BlockWork(
            reader: reader, ebs: ebs, parent: plan.parent, encrypted: plan.encrypted,
            attemptTimeout: policy.attemptTimeout)
        let total = plan.candidateCount
        let skippedSoFar = { (c: UploadStateMachine.Counts) in c.skippedZero + c.skippedUnchanged + c.alreadyUploaded }
        // Blocks are dispatched in candidate order; the kernel is asked to read ahead of them by twice the
        // workers, so that a cold image's reads do not block the tasks that hash and send.
        var ahead = plan.candidates.lazy.joined().makeIterator()
        for _ in 0..<(2 * options.workers) {
            guard let next = ahead.next() else { break }
            reader.prefetch(block: next)
        }
        let snapshotID = try await withThrowingTaskGroup(of: BlockWork.Result.self) { group in
            func now() -> Duration { ContinuousClock.now - started }
            func report() {
                progress?(
                    UploadProgress(
                        blocksTotal: total, blocksDone: machine.counts.blocksDone,
                        blocksSkipped: skippedSoFar(machine.counts), bytesUploaded: bytesUploaded,
                        bytesRead: bytesRead, retries: machine.counts.retries, elapsed: now()))
            }
            while true {
                switch machine.next(now: now()) {
                case .startSnapshot(_, let delay):
                    if delay > .zero { try await Task.sleep(for: delay) }
                    if tokenMayBeUsed {
                        switch await resumption.snapshotStarted(withToken: start.clientToken, name: name) {
                        case .pending(let id, let startedAt):
                            try journal.update {
                                $0.state = .uploading(snapshotID: id, startedAt: startedAt ?? Date().timeIntervalSince1970)
                            }
                            machine.handle(.snapshotStarted(id: id), now: now())
                            continue
                        case .unusable(let id, let state):
                            // AWS would answer this token with that snapshot again: take a new token, on disk
                            // before it is sent.
                            let token = UUID().uuidString.lowercased()
                            log.warning(
                                "\(id), started with this upload's client token, is \(state) and cannot take "
                                    + "blocks; starting a new snapshot")
                            try journal.update { $0.clientToken = token }
                            start = plan.startInput(clientToken: token)
                        case .none, .unknown:
                            break
                        }
                    }
                    do {
                        let out = try await ebs.startSnapshot(start, timeout: policy.attemptTimeout)
                        if let b = out.blockSize, b != ebsBlockSize {
                            log.debug("StartSnapshot reported BlockSize \(b); using \(ebsBlockSize)")
                        }
                        CrashPoint.reach(.startSnapshotAnswered)
                        try journal.update {
                            $0.state = .uploading(snapshotID: out.snapshotID, startedAt: Date().timeIntervalSince1970)
                        }
                        CrashPoint.reach(.startSnapshotJournaled)
                        log.info("started \(out.snapshotID) (\(plan.volumeSizeGiB) GiB)")
                        machine.handle(.snapshotStarted(id: out.snapshotID), now: now())
                    } catch {
                        let (c, m) = Self.classify(error)
                        // A connection that could not be made sent nothing, so the token is as unused as it was;
                        // any other failure may have reached EC2 and started a snapshot.
                        if c != .connection { tokenMayBeUsed = true }
                        if let line = machine.handle(.startFailed(c, m), now: now()) { note(line, machine) }
                    }
                case .processBlock(let index, let attempt, let delay):
                    if attempt == 1, let next = ahead.next() { reader.prefetch(block: next) }
                    if attempt == 1 && journal.isDone(index) {
                        machine.handle(.blockDone(index: index, outcome: .alreadyUploaded), now: now())
                        continue
                    }
                    let id = machine.snapshotID!
                    group.addTask { await work.run(index: index, delay: delay, snapshotID: id) }
                case .awaitResult:
                    guard let r = try await group.next() else { continue }
                    bytesRead += UInt64(r.bytesRead)
                    switch r.kind {
                    case .done(let outcome, let digest):
                        if let d = digest {
                            try journal.record(index: r.index, sha256: d.sha256, xxh3: d.xxh3, isZero: d.isZero)
                            CrashPoint.reach(.blockRecorded)
                            bytesUploaded += UInt64(ebsBlockSize)
                        }
                        machine.handle(.blockDone(index: r.index, outcome: outcome), now: now())
                    case .failed(let c, let m):
                        if let line = machine.handle(.blockFailed(index: r.index, c, m), now: now()) {
                            note(line, machine)
                        }
                        if machine.isStopping { group.cancelAll() }
                    }
                    report()
                case .completeSnapshot(_, let delay):
                    if delay > .zero { try await Task.sleep(for: delay) }
                    let id = machine.snapshotID!
                    try journal.update { $0.state = .completing(snapshotID: id, startedAt: $0.state.snapshotStartedAt) }
                    CrashPoint.reach(.beforeComplete)
                    let (count, aggregate) = try journal.completion()
                    changedBlocks = count
                    do {
                        let status = try await ebs.completeSnapshot(
                            snapshotID: id, changedBlocksCount: count, aggregateChecksum: aggregate,
                            timeout: policy.attemptTimeout)
                        completeStatus = status ?? "pending"
                        CrashPoint.reach(.completeAnswered)
                        try journal.update {
                            $0.state = .completed(snapshotID: id, startedAt: $0.state.snapshotStartedAt)
                        }
                        CrashPoint.reach(.completeJournaled)
                        log.info("completed \(id): \(count) blocks, status \(completeStatus)")
                        machine.handle(.completed(status: completeStatus), now: now())
                    } catch {
                        let (c, m) = Self.classify(error)
                        if let line = machine.handle(.completeFailed(c, m), now: now()) { note(line, machine) }
                    }
                case .finished(let id):
                    report()
                    return id
                case .failed(let f):
                    group.cancelAll()
                    throw SnapshotUploadError(
                        snapshotID: machine.snapshotID, failure: f,
                        resumable: f.retryClass != .accessDenied && f.retryClass != .fatal)
                }
            }
        }
        return Outcome(
            snapshotID: snapshotID, counts: machine.counts, bytesRead: bytesRead, bytesUploaded: bytesUploaded,
            completeStatus: completeStatus, changedBlocks: changedBlocks)
    }

    /// Logs a retry decision; the give-up line only at debug level, since the failure itself is thrown and
    /// printed once.
    func note(_ line: String, _ machine: UploadStateMachine) {
        if machine.hasGivenUp { log.debug(line) } else { log.info(line) }
    }

    static func classify(_ error: any Error) -> (RetryClass, String) {
        if let e = error as? any RetryClassified { return (e.retryClass, e.description) }
        if error is CancellationError { return (.fatal, "cancelled") }
        if let e = error as? AWSConfigurationError { return (.accessDenied, "credentials: \(e)") }
        if let e = error as? AWSResponseError { return (.transient, e.description) }
        if let e = error as? ImageError { return (.fatal, "read failed: \(e)") }
        return (.fatal, "\(error)")
    }
}

/// The per-block work: read, hash, decide, send. Runs in the driver's child tasks.
struct BlockWork: Sendable {
    enum Kind: Sendable {
        case done(BlockOutcome, BlockDigest?)
        case failed(RetryClass, String)
    }
    struct Result: Sendable {
        var index: UInt64
        var bytesRead: Int
        var kind: Kind
    }

    let reader: ImageBlockReader
    let ebs: EBSClient
    let parent: BlockManifest?
    let encrypted: Bool
    let attemptTimeout: Duration

    func run(index: UInt64, delay: Duration, snapshotID: String) async -> Result {
        if delay > .zero {
            do { try await Task.sleep(for: delay) } catch { return Result(index: index, bytesRead: 0, kind: .failed(.fatal, "cancelled")) }
        }
        // Read straight into the buffer the request is sent from, without zero-filling it first: `read` writes
        // every byte of the block (holes and the tail as zeros).
        var n = 0
        var buf = ByteBufferAllocator().buffer(capacity: ebsBlockSize)
        do {
            try buf.writeWithUnsafeMutableBytes(minimumWritableBytes: ebsBlockSize) { storage in
                n = try reader.read(block: index, into: UnsafeMutableRawBufferPointer(rebasing: storage[0..<ebsBlockSize]))
                return ebsBlockSize
            }
        } catch {
            return Result(index: index, bytesRead: 0, kind: .failed(.fatal, "read failed: \(error)"))
        }
        var d = buf.withUnsafeReadableBytes { BlockDigest.of($0, needSHA: false) }
        let parentHash = parent?.hash(of: index)
        if d.isZero && !encrypted && parentHash == nil {
            return Result(index: index, bytesRead: n, kind: .done(.skippedZero, nil))
        }
        if !d.isZero, let p = parentHash, p == d.xxh3 {
            return Result(index: index, bytesRead: n, kind: .done(.skippedUnchanged, nil))
        }
        d.sha256 = buf.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        let checksum = EBSAPI.base64(d.sha256)
        do {
            try await ebs.putSnapshotBlock(
                snapshotID: snapshotID, index: Int(index), data: buf, checksum: checksum, timeout: attemptTimeout)
        } catch {
            let (c, m) = UploadDriver.classify(error)
            return Result(index: index, bytesRead: n, kind: .failed(c, m))
        }
        return Result(index: index, bytesRead: n, kind: .done(d.isZero ? .uploadedZero : .uploaded, d))
    }
}

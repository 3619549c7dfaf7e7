// The async driver around UploadStateMachine: it runs the machine's actions (StartSnapshot, block work in a
// task group of at most `workers` children, CompleteSnapshot), keeps the journal, and reports progress.
// Every decision (what next, retry or not, how long to wait) is the machine's; what to send is the plan's.

import AWSCore
import BlockHashing
import Foundation
import NIOCore
import Synchronization

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
            attemptTimeout: policy.attemptTimeout, prepared: PreparedBlocks())
        // First attempts come in candidate order; `upcoming` follows them, so that the blocks after the one
        // being dispatched can be given to its task as companions to hash with (see BlockWork).
        var upcoming = BlockCursor(ranges: plan.candidates)
        let sideBySide = SHA256Lanes.sideBySide
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
                    var companions: [UInt64] = []
                    if attempt == 1 {
                        if let next = ahead.next() { reader.prefetch(block: next) }
                        while let u = upcoming.next(), u != index {}
                        if journal.isDone(index) {
                            machine.handle(.blockDone(index: index, outcome: .alreadyUploaded), now: now())
                            continue
                        }
                        if sideBySide, delay == .zero, !work.prepared.contains(index) {
                            var peek = upcoming
                            while companions.count < BlockWork.batch - 1, let c = peek.next(), !journal.isDone(c) {
                                work.prepared.promise(c)
                                companions.append(c)
                            }
                        }
                    }
                    let id = machine.snapshotID!
                    let batch = companions
                    group.addTask { await work.run(index: index, delay: delay, snapshotID: id, companions: batch) }
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
                    log.debug("SHA-256: \(work.prepared.hashedTogether.load(ordering: .relaxed)) blocks hashed side by side")
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

/// The per-block work: read, decide, hash, send. Runs in the driver's child tasks.
///
/// SHA-256 is most of an upload's CPU, and hashing blocks side by side costs less than hashing them one after
/// the other (``SHA256Lanes``: two blocks at once take about 65 % of the time of two alone). So the task of a
/// first attempt may be given *companions* (``batch`` less one): the blocks the driver will dispatch next. The
/// task reads and decides them all, hashes them together, leaves each companion's buffer and digest in
/// ``PreparedBlocks``, and sends its own block; a companion's task, when the driver dispatches it, takes what
/// was left for it and only sends.
/// Preparing is synchronous, so every companion is left for its task (or left unprepared, when its read failed)
/// before the preparing task can be suspended or cancelled: a task waiting for its block always wakes.
struct BlockWork: Sendable {
    /// Blocks read and hashed together: a first attempt and the companion it is given. Two, not four: four
    /// lanes hash faster in isolation (3.7 against 3.1 GB/s), but in an upload, where the same CPU also copies
    /// blocks into sockets, reading and hashing four 512 KiB blocks at once lets them fall out of the cache
    /// between read and hash, and the upload took more CPU than with two (1.39–1.74 against 0.94–1.07 s/GiB).
    static let batch = 2

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
    let prepared: PreparedBlocks

    /// Runs block `index`; with `companions`, also prepares those blocks for their own tasks (see the type).
    func run(index: UInt64, delay: Duration, snapshotID: String, companions: [UInt64] = []) async -> Result {
        if delay > .zero {
            do { try await Task.sleep(for: delay) } catch { return Result(index: index, bytesRead: 0, kind: .failed(.fatal, "cancelled")) }
        }
        var block: PreparedBlock
        if let ready = await prepared.take(index) {
            block = ready
        } else {
            var blocks = [prepare(index)] + companions.map(prepare)
            let together = Self.hash(&blocks)
            if together > 0 { prepared.hashedTogether.add(together, ordering: .relaxed) }
            // A failed read is not handed over: the companion's task reads again and reports it.
            for (c, b) in zip(companions, blocks.dropFirst()) { prepared.deposit(c, b.failure == nil ? b : nil) }
            block = blocks[0]
        }
        if let f = block.failure { return Result(index: index, bytesRead: 0, kind: .failed(.fatal, f)) }
        guard case .upload(let buf, let d) = block.decision else {
            if case .skip(let outcome) = block.decision {
                return Result(index: index, bytesRead: block.bytesRead, kind: .done(outcome, nil))
            }
            preconditionFailure("a prepared block is failed, skipped or to be uploaded")
        }
        do {
            try await ebs.putSnapshotBlock(
                snapshotID: snapshotID, index: Int(index), data: buf, checksum: EBSAPI.base64(d.sha256),
                timeout: attemptTimeout)
        } catch {
            let (c, m) = UploadDriver.classify(error)
            return Result(index: index, bytesRead: block.bytesRead, kind: .failed(c, m))
        }
        return Result(index: index, bytesRead: block.bytesRead, kind: .done(d.isZero ? .uploadedZero : .uploaded, d))
    }

    /// Reads block `index` and decides whether it is sent; its SHA-256 is left for ``hash(_:)``.
    func prepare(_ index: UInt64) -> PreparedBlock {
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
            return PreparedBlock(bytesRead: 0, decision: .skip(.skippedZero), failure: "read failed: \(error)")
        }
        let d = buf.withUnsafeReadableBytes { BlockDigest.of($0, needSHA: false) }
        let parentHash = parent?.hash(of: index)
        if d.isZero && !encrypted && parentHash == nil {
            return PreparedBlock(bytesRead: n, decision: .skip(.skippedZero))
        }
        if !d.isZero, let p = parentHash, p == d.xxh3 {
            return PreparedBlock(bytesRead: n, decision: .skip(.skippedUnchanged))
        }
        return PreparedBlock(bytesRead: n, decision: .upload(buf, d))
    }

    /// Fills in the SHA-256 of the blocks that are to be sent, side by side (``SHA256Lanes/hash(all:)``).
    ///
    /// - Returns: how many were hashed side by side with another.
    static func hash(_ blocks: inout [PreparedBlock]) -> Int {
        let sent = blocks.indices.filter { if case .upload = blocks[$0].decision { true } else { false } }
        guard !sent.isEmpty else { return 0 }
        let buffers = sent.map { i -> ByteBuffer in
            guard case .upload(let b, _) = blocks[i].decision else { preconditionFailure("filtered above") }
            return b
        }
        let digests = withReadableBytes(of: buffers[...]) { SHA256Lanes.hash(all: $0) }
        for (i, sha) in zip(sent, digests) {
            guard case .upload(let b, var d) = blocks[i].decision else { continue }
            d.sha256 = sha
            blocks[i].decision = .upload(b, d)
        }
        return SHA256Lanes.sideBySide && sent.count > 1 ? sent.count - sent.count % 2 : 0
    }

    /// Calls `body` with the readable bytes of every buffer (nested, so all stay valid during the call).
    private static func withReadableBytes<R>(
        of buffers: ArraySlice<ByteBuffer>, _ done: [UnsafeRawBufferPointer] = [],
        _ body: ([UnsafeRawBufferPointer]) -> R
    ) -> R {
        guard let first = buffers.first else { return body(done) }
        return first.withUnsafeReadableBytes { withReadableBytes(of: buffers.dropFirst(), done + [$0], body) }
    }
}

/// A block read and decided, and hashed when it is to be sent.
struct PreparedBlock: Sendable {
    enum Decision: Sendable {
        case skip(BlockOutcome)
        case upload(ByteBuffer, BlockDigest)
    }
    var bytesRead: Int
    var decision: Decision
    /// Why reading failed (then `decision` means nothing).
    var failure: String? = nil
}

/// Companion blocks prepared by one task for another (see ``BlockWork``), by block index.
final class PreparedBlocks: Sendable {
    private enum Entry {
        case preparing([CheckedContinuation<PreparedBlock?, Never>])
        case ready(PreparedBlock?)
    }
    private let entries = Mutex<[UInt64: Entry]>([:])
    /// Blocks whose SHA-256 was computed side by side with another's.
    let hashedTogether = Atomic<Int>(0)

    /// Marks `index` as being prepared by a task; its own task will wait for it.
    func promise(_ index: UInt64) {
        entries.withLock { $0[index] = .preparing([]) }
    }

    /// Whether `index` is promised or ready.
    func contains(_ index: UInt64) -> Bool { entries.withLock { $0[index] != nil } }

    /// How many tasks wait for `index` (for tests).
    func waiting(for index: UInt64) -> Int {
        entries.withLock { if case .preparing(let w)? = $0[index] { w.count } else { 0 } }
    }

    /// Hands over block `index` (nil: its task is to prepare it itself) and wakes a task waiting for it.
    func deposit(_ index: UInt64, _ block: PreparedBlock?) {
        let waiting = entries.withLock { e -> [CheckedContinuation<PreparedBlock?, Never>] in
            guard case .preparing(let w) = e[index] else { return [] }
            if w.isEmpty {
                e[index] = .ready(block)
                return []
            }
            e[index] = nil
            return w
        }
        if let first = waiting.first { first.resume(returning: block) }
        for w in waiting.dropFirst() { w.resume(returning: nil) }
    }

    /// Takes block `index` if another task prepares or prepared it, waiting until it is ready; nil when no task
    /// did or its read failed.
    func take(_ index: UInt64) async -> PreparedBlock? {
        enum Now { case none, ready(PreparedBlock?), wait }
        let now = entries.withLock { e -> Now in
            switch e[index] {
            case nil: return .none
            case .ready(let b)?:
                e[index] = nil
                return .ready(b)
            case .preparing?: return .wait
            }
        }
        switch now {
        case .none: return nil
        case .ready(let b): return b
        case .wait:
            return await withCheckedContinuation { c in
                let done = entries.withLock { e -> Entry? in
                    switch e[index] {
                    case .preparing(let w)?:
                        e[index] = .preparing(w + [c])
                        return nil
                    case let other:
                        e[index] = nil
                        return other ?? .ready(nil)
                    }
                }
                if case .ready(let b)? = done { c.resume(returning: b) }
            }
        }
    }
}

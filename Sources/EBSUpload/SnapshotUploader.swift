// The async driver around UploadStateMachine: it runs the machine's actions (StartSnapshot, block work in a
// task group of at most `workers` children, CompleteSnapshot), keeps the journal, and reports progress.
// Every decision (what next, retry or not, how long to wait) is the machine's.

public import AWSCore
import Crypto
public import Foundation
import NIOCore

/// What to upload and how.
public struct UploadOptions: Sendable {
    /// Volume size in GiB; nil for the image size rounded up to whole GiB (at least 1).
    public var volumeSizeGiB: Int?
    /// Snapshot description.
    public var description: String?
    /// Snapshot tags.
    public var tags: [SnapshotTag] = []
    /// Parent snapshot for an incremental upload (needs its local manifest).
    public var parentSnapshotID: String?
    /// Encrypt the snapshot (zero blocks are then uploaded too).
    public var encrypted = false
    /// KMS key for encryption (implies `encrypted`).
    public var kmsKeyARN: String?
    /// StartSnapshot's Timeout: AWS cancels the snapshot when it is not completed in time.
    public var timeoutMinutes = 60
    /// Blocks in flight at most.
    public var workers = 16
    /// Bytes that replace the image's own, without touching the file.
    public var overlay = ByteRangeOverlay()
    /// Where journals (`uploads/`) and manifests (`manifests/`) live.
    public var stateDirectory: String
    /// Continue an interrupted upload of the same image when its journal allows it.
    public var resume = true
    /// Poll DescribeSnapshots until the snapshot is completed.
    public var wait = false
    /// Limit for `wait`.
    public var waitTimeout: Duration = .seconds(3600)
    /// Interval for `wait`.
    public var waitInterval: Duration = .seconds(2)
    /// Retry limits.
    public var policy = RetryPolicy()
    /// Seed for retry jitter (random when nil).
    public var seed: UInt64?

    /// Options with defaults.
    public init(stateDirectory: String) { self.stateDirectory = stateDirectory }

    /// The default state directory: `$XDG_STATE_HOME/zlabel`, else `~/.local/state/zlabel`.
    public static func defaultStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        if let x = environment["XDG_STATE_HOME"], !x.isEmpty { return x + "/zlabel" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state/zlabel"
    }
}

/// Progress so far.
public struct UploadProgress: Sendable, Equatable {
    /// Blocks to go through (data, overlay and parent blocks).
    public var blocksTotal: UInt64
    /// Blocks done, whatever the outcome.
    public var blocksDone: Int
    /// Blocks skipped (zero, unchanged, or sent by an earlier run).
    public var blocksSkipped: Int
    /// Bytes sent in PutSnapshotBlock bodies.
    public var bytesUploaded: UInt64
    /// Bytes read from the image.
    public var bytesRead: UInt64
    /// Retries so far.
    public var retries: Int
    /// Time since the upload began.
    public var elapsed: Duration
}

/// What an upload did.
public struct UploadResult: Sendable, Codable, Equatable {
    /// The snapshot.
    public var snapshotID: String
    /// Its volume size.
    public var volumeSizeGiB: Int
    /// State after CompleteSnapshot (or after waiting): `pending` or `completed`.
    public var state: String
    /// True when an interrupted upload was continued, or when an earlier run had already uploaded the same image
    /// with the same options and its snapshot was named again (then nothing was sent).
    public var resumed: Bool
    /// Why an interrupted upload could not be continued, when one was found and dropped.
    public var resumeRefusedReason: String?
    /// Block indexes gone through.
    public var blocksConsidered: UInt64
    /// Blocks sent with data.
    public var blocksUploaded: Int
    /// Zero blocks sent (encrypted snapshots, or clearing a parent's blocks).
    public var zeroBlocksUploaded: Int
    /// Zero blocks not sent.
    public var zeroBlocksSkipped: Int
    /// Blocks equal to the parent's, not sent.
    public var unchangedBlocksSkipped: Int
    /// Blocks sent by the interrupted run.
    public var blocksFromEarlierRun: Int
    /// ChangedBlocksCount sent with CompleteSnapshot.
    public var changedBlocksCount: Int
    /// Bytes sent in block bodies.
    public var bytesUploaded: UInt64
    /// Bytes read from the image (holes are never read).
    public var bytesRead: UInt64
    /// Bytes of the image in data extents.
    public var imageDataBytes: UInt64
    /// Retries of any call.
    public var retries: Int
    /// Wall time in seconds.
    public var seconds: Double
    /// The block manifest written for this snapshot (for later incremental uploads).
    public var manifestPath: String?
}

/// An upload that failed after a snapshot was started.
public struct SnapshotUploadError: Error, Sendable, CustomStringConvertible {
    /// The pending snapshot, if one was started.
    public var snapshotID: String?
    /// The cause.
    public var failure: UploadFailure
    /// True when rerunning the same command continues the upload.
    public var resumable: Bool

    public var description: String {
        var s = "\(failure)"
        if let id = snapshotID {
            s += resumable
                ? "; snapshot \(id) stays pending: run the same command again to continue it"
                : "; snapshot \(id) is left pending and will expire"
        }
        return s
    }
}

/// Uploads an image into a new EBS snapshot.
public struct SnapshotUploader: Sendable {
    /// The EBS client.
    public let ebs: EBSClient
    /// The EC2 client, for resume checks and `wait`; nil to skip both.
    public let ec2: EC2Client?
    /// The log.
    public let log: AWSLog

    /// Creates an uploader.
    public init(ebs: EBSClient, ec2: EC2Client?, log: AWSLog) {
        self.ebs = ebs
        self.ec2 = ec2
        self.log = log
    }

    /// Uploads an image file.
    ///
    /// - Parameters:
    ///   - image: the opened image.
    ///   - options: what to create and how.
    ///   - progress: called after each block (from the driver's task; keep it quick).
    /// - Returns: what was done.
    /// - Throws: ``SnapshotUploadError`` after a snapshot was started, `AWSConfigurationError`,
    ///   ``OverlayError``, ``ManifestError``, ``ImageError`` or a service error before that.
    public func upload(
        image: ImageFile, options: UploadOptions, progress: (@Sendable (UploadProgress) -> Void)? = nil
    ) async throws -> UploadResult {
        try await upload(source: image, name: image.path, identity: image.identity, options: options, progress: progress)
    }

    /// Uploads any image source; `name` and `identity` key and guard the resume journal.
    public func upload(
        source: any ImageSource, name: String, identity: FileIdentity, options: UploadOptions,
        progress: (@Sendable (UploadProgress) -> Void)? = nil
    ) async throws -> UploadResult {
        let clock = ContinuousClock()
        let t0 = clock.now
        let bs = UInt64(ebsBlockSize)
        let gib: UInt64 = 1 << 30
        var encrypted = options.encrypted || options.kmsKeyARN != nil
        if encrypted && options.parentSnapshotID != nil {
            throw AWSConfigurationError("--encrypted/--kms-key-id cannot be combined with --parent-snapshot")
        }
        guard (1...4096).contains(options.workers) else {
            throw AWSConfigurationError("--workers must be between 1 and 4096")
        }
        guard (10...4320).contains(options.timeoutMinutes) else {
            throw AWSConfigurationError("the snapshot timeout must be 10 to 4320 minutes")
        }

        // Parent manifest.
        let manifestDir = options.stateDirectory + "/manifests"
        var parent: BlockManifest?
        if let p = options.parentSnapshotID {
            let path = BlockManifest.path(directory: manifestDir, snapshotID: p)
            guard FileManager.default.fileExists(atPath: path) else {
                throw AWSConfigurationError(
                    "no local block manifest for \(p) (looked for \(path)); an incremental upload needs the "
                        + "manifest that zlabel wrote when it uploaded \(p)")
            }
            let m = try BlockManifest(path: path)
            guard m.header.snapshotID == p else {
                throw ManifestError(path: path, offset: 12, "manifest is for \(m.header.snapshotID), not \(p)")
            }
            if m.header.encrypted { encrypted = true }
            parent = m
        }

        // Volume size.
        let needed = Int(max(1, (source.size + gib - 1) / gib))
        var volume = options.volumeSizeGiB ?? needed
        if let p = parent, options.volumeSizeGiB == nil { volume = max(volume, p.header.volumeSizeGiB) }
        guard volume >= needed else {
            throw AWSConfigurationError("--volume-size \(volume) GiB is smaller than the image (\(needed) GiB needed)")
        }
        guard volume <= 65536 else { throw AWSConfigurationError("volume size \(volume) GiB is over the 64 TiB EBS limit") }
        let blockCount = UInt64(volume) * (gib / bs)

        let reader = try BlockReader(source: source, overlay: options.overlay)
        // Unwritten blocks of an encrypted snapshot read back as garbage, so every block of the volume is
        // sent; holes are still not read (the reader fills them with zeros).
        let candidates =
            encrypted
            ? [0..<blockCount]
            : reader.candidateRanges(blockLimit: blockCount, extra: parent?.blockRanges ?? [])
        let total = candidates.reduce(UInt64(0)) { $0 + UInt64($1.count) }
        log.debug(
            "\(name): \(source.size) bytes, \(reader.extents.count) data extents holding \(reader.dataBytes) bytes; "
                + "\(total) candidate blocks; volume \(volume) GiB")

        // Journal: resume or start over.
        let freshHeader = UploadJournalHeader(
            imagePath: name, image: identity, overlayDigest: options.overlay.digest,
            optionsDigest: Self.optionsDigest(options, volume: volume, encrypted: encrypted),
            volumeSizeGiB: volume, region: ebs.client.region, endpoint: ebs.client.endpoint.baseURL,
            clientToken: UUID().uuidString.lowercased(), snapshotID: nil, snapshotStartedAt: nil,
            timeoutMinutes: options.timeoutMinutes, state: "starting")
        let uploadsDir = options.stateDirectory + "/uploads"
        let key = UploadJournal.key(imagePath: name, region: ebs.client.region, endpoint: ebs.client.endpoint.baseURL)
        var resumeRefused: String?
        var resume = false
        var completedRemotely = false
        let existing = options.resume ? UploadJournal.existingHeader(directory: uploadsDir, key: key) : nil
        if let old = existing, old.state == "done" {
            let (earlier, why) = try await earlierUpload(
                old, fresh: freshHeader, name: name, options: options, blocksConsidered: total,
                imageDataBytes: reader.dataBytes, manifestDirectory: manifestDir, started: t0)
            if let earlier { return earlier }
            resumeRefused = why
        } else if let old = existing {
            let slots = uploadsDir + "/\(key).blocks"
            let last = (try? FileManager.default.attributesOfItem(atPath: slots)[.modificationDate] as? Date) ?? nil
            if let why = Self.resumeRefusal(old: old, new: freshHeader, lastActivity: last, now: Date()) {
                resumeRefused = why
            } else if let id = old.snapshotID, old.state != "completed" {
                let (why, remoteState) = await remoteCheck(id, old)
                resumeRefused = why
                resume = why == nil
                // CompleteSnapshot went through but the kill came before the journal said so.
                completedRemotely = resume && old.state == "completing" && remoteState == "completed"
            } else {
                resume = true
            }
            if let why = resumeRefused {
                log.warning("cannot resume the interrupted upload\(old.snapshotID.map { " into \($0)" } ?? ""): \(why); starting a new snapshot")
            }
        }
        CrashPoint.reach(.beforeJournal)
        let journal = try UploadJournal(
            directory: uploadsDir, key: key, header: freshHeader, resume: resume, blockCount: blockCount)
        CrashPoint.reach(.journalCreated)
        if completedRemotely { try journal.update { $0.state = "completed" } }
        let header = journal.header
        if resume {
            log.info(
                "resuming the interrupted upload"
                    + (header.snapshotID.map { " into \($0)" } ?? " (StartSnapshot with the same client token)")
                    + ": \(journal.recordedCount) blocks already sent")
        }

        let snapshotID: String
        var counts = UploadStateMachine.Counts()
        var bytesRead: UInt64 = 0
        var bytesUploaded: UInt64 = 0
        var completeStatus = "pending"
        var changedBlocks = 0
        if header.state == "completed", let id = header.snapshotID {
            snapshotID = id
            log.info("\(id) was already completed by the interrupted run")
            changedBlocks = journal.recordedCount
        } else {
            var machine = UploadStateMachine(
                candidates: candidates, workers: options.workers, policy: options.policy,
                seed: options.seed ?? UInt64.random(in: 0...UInt64.max),
                resumeSnapshotID: resume ? header.snapshotID : nil,
                resumeCompleting: resume && header.state == "completing")
            var start = StartSnapshotInput(
                volumeSizeGiB: volume, clientToken: header.clientToken, description: options.description,
                tags: Self.startTags(options.tags, clientToken: header.clientToken),
                parentSnapshotID: options.parentSnapshotID, encrypted: encrypted,
                kmsKeyARN: options.kmsKeyARN, timeoutMinutes: options.timeoutMinutes)
            // A StartSnapshot with this token may already have reached AWS: in an interrupted run (the journal
            // has the token but no snapshot id) or in an earlier attempt of this run whose answer was lost.
            var tokenMayBeUsed = resume
            let work = BlockWork(
                reader: reader, ebs: ebs, parent: parent, encrypted: encrypted,
                attemptTimeout: options.policy.attemptTimeout)
            let skippedSoFar = { (c: UploadStateMachine.Counts) in c.skippedZero + c.skippedUnchanged + c.alreadyUploaded }
            // Blocks are dispatched in candidate order; the kernel is asked to read ahead of them by twice the
            // workers, so that a cold image's reads do not block the tasks that hash and send.
            var ahead = candidates.lazy.joined().makeIterator()
            for _ in 0..<(2 * options.workers) {
                guard let next = ahead.next() else { break }
                reader.prefetch(block: next)
            }
            snapshotID = try await withThrowingTaskGroup(of: BlockWork.Result.self) { group in
                    func now() -> Duration { clock.now - t0 }
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
                                switch await snapshotStarted(withToken: start.clientToken, name: name) {
                                case .pending(let id, let startedAt):
                                    try journal.update {
                                        $0.snapshotID = id
                                        $0.snapshotStartedAt = startedAt ?? Date().timeIntervalSince1970
                                        $0.state = "uploading"
                                    }
                                    machine.handle(.snapshotStarted(id: id), now: now())
                                    continue
                                case .unusable(let id, let state):
                                    // AWS would answer this token with that snapshot again: take a new token,
                                    // on disk before it is sent.
                                    let token = UUID().uuidString.lowercased()
                                    log.warning(
                                        "\(id), started with this upload's client token, is \(state) and cannot take "
                                            + "blocks; starting a new snapshot")
                                    try journal.update { $0.clientToken = token }
                                    start.clientToken = token
                                    start.tags = Self.startTags(options.tags, clientToken: token)
                                case .none, .unknown:
                                    break
                                }
                            }
                            do {
                                let out = try await ebs.startSnapshot(start, timeout: options.policy.attemptTimeout)
                                if let b = out.blockSize, b != ebsBlockSize {
                                    log.debug("StartSnapshot reported BlockSize \(b); using \(ebsBlockSize)")
                                }
                                CrashPoint.reach(.startSnapshotAnswered)
                                try journal.update {
                                    $0.snapshotID = out.snapshotID
                                    $0.snapshotStartedAt = Date().timeIntervalSince1970
                                    $0.state = "uploading"
                                }
                                CrashPoint.reach(.startSnapshotJournaled)
                                log.info("started \(out.snapshotID) (\(volume) GiB)")
                                machine.handle(.snapshotStarted(id: out.snapshotID), now: now())
                            } catch {
                                let (c, m) = Self.classify(error)
                                // A connection that could not be made sent nothing, so the token is as unused as it
                                // was; any other failure may have reached EC2 and started a snapshot.
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
                                    bytesUploaded += bs
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
                            try journal.update { $0.state = "completing" }
                            CrashPoint.reach(.beforeComplete)
                            let (count, aggregate) = try journal.completion()
                            changedBlocks = count
                            do {
                                let status = try await ebs.completeSnapshot(
                                    snapshotID: machine.snapshotID!, changedBlocksCount: count,
                                    aggregateChecksum: aggregate, timeout: options.policy.attemptTimeout)
                                completeStatus = status ?? "pending"
                                CrashPoint.reach(.completeAnswered)
                                try journal.update { $0.state = "completed" }
                                CrashPoint.reach(.completeJournaled)
                                log.info("completed \(machine.snapshotID!): \(count) blocks, status \(completeStatus)")
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
            counts = machine.counts
        }

        var state = completeStatus
        if options.wait, let ec2 {
            let s = try await ec2.waitForSnapshot(
                id: snapshotID, interval: options.waitInterval, timeout: options.waitTimeout)
            state = s.state
        }

        // Manifest for later incremental uploads, then the journal goes.
        let manifest = try BlockManifest.merged(
            parent: parent,
            header: BlockManifestHeader(
                snapshotID: snapshotID, volumeSizeGiB: volume, blockSize: ebsBlockSize, encrypted: encrypted,
                parentSnapshotID: options.parentSnapshotID),
            journal: journal)
        let manifestPath = BlockManifest.path(directory: manifestDir, snapshotID: snapshotID)
        try manifest.write(to: manifestPath)
        CrashPoint.reach(.manifestWritten)
        try journal.finish(changedBlocksCount: changedBlocks)
        CrashPoint.reach(.journalDone)

        return UploadResult(
            snapshotID: snapshotID, volumeSizeGiB: volume, state: state, resumed: resume,
            resumeRefusedReason: resumeRefused, blocksConsidered: total, blocksUploaded: counts.uploaded,
            zeroBlocksUploaded: counts.uploadedZero, zeroBlocksSkipped: counts.skippedZero,
            unchangedBlocksSkipped: counts.skippedUnchanged, blocksFromEarlierRun: counts.alreadyUploaded,
            changedBlocksCount: changedBlocks, bytesUploaded: bytesUploaded, bytesRead: bytesRead,
            imageDataBytes: reader.dataBytes, retries: counts.retries,
            seconds: Self.seconds(clock.now - t0), manifestPath: manifestPath)
    }

    /// What an earlier, finished upload of the same image with the same options left, when its snapshot can still
    /// be used. Running the same command twice then names one snapshot, even when the first run was killed after
    /// CompleteSnapshot but before it printed the id. Without a result a new upload is needed; `refusal` then says
    /// why, when the earlier snapshot is gone (not when the image or the options changed, the usual case).
    func earlierUpload(
        _ old: UploadJournalHeader, fresh: UploadJournalHeader, name: String, options: UploadOptions,
        blocksConsidered: UInt64, imageDataBytes: UInt64, manifestDirectory: String, started: ContinuousClock.Instant
    ) async throws -> (result: UploadResult?, refusal: String?) {
        guard let id = old.snapshotID else { return (nil, nil) }
        if let why = Self.resumeRefusal(old: old, new: fresh, lastActivity: nil, now: Date()) {
            log.debug("not reusing \(id) of an earlier upload of \(name): \(why)")
            return (nil, nil)
        }
        let (why, remoteState) = await remoteCheck(id, old)
        if let why {
            log.warning("an earlier run uploaded \(name) into \(id), but \(why); uploading again")
            return (nil, why)
        }
        log.info(
            "\(name) was already uploaded into \(id) by an earlier run with the same image and options; "
                + "nothing to send (--no-resume starts a new snapshot)")
        var state = remoteState ?? "completed"
        if options.wait, let ec2 {
            state = try await ec2.waitForSnapshot(id: id, interval: options.waitInterval, timeout: options.waitTimeout)
                .state
        }
        let manifestPath = BlockManifest.path(directory: manifestDirectory, snapshotID: id)
        let changed = old.changedBlocksCount ?? 0
        let result = UploadResult(
            snapshotID: id, volumeSizeGiB: old.volumeSizeGiB, state: state, resumed: true, resumeRefusedReason: nil,
            blocksConsidered: blocksConsidered, blocksUploaded: 0, zeroBlocksUploaded: 0, zeroBlocksSkipped: 0,
            unchangedBlocksSkipped: 0, blocksFromEarlierRun: changed, changedBlocksCount: changed, bytesUploaded: 0,
            bytesRead: 0, imageDataBytes: imageDataBytes, retries: 0,
            seconds: Self.seconds(ContinuousClock.now - started),
            manifestPath: FileManager.default.fileExists(atPath: manifestPath) ? manifestPath : nil)
        return (result, nil)
    }

    /// The tag that names a snapshot's StartSnapshot client token.
    ///
    /// AWS answers a repeated StartSnapshot with the same token with the same snapshot, but only a service that
    /// remembers the token does (moto does not, and nothing documents how long AWS does). With the token also in
    /// a tag, a rerun finds the snapshot with DescribeSnapshots.
    public static let clientTokenTagKey = "zlabel:client-token"

    /// The user's tags and the client-token tag (unless the user set that key).
    static func startTags(_ tags: [SnapshotTag], clientToken: String) -> [SnapshotTag] {
        if tags.contains(where: { $0.key == clientTokenTagKey }) { return tags }
        return tags + [SnapshotTag(key: clientTokenTagKey, value: clientToken)]
    }

    /// What DescribeSnapshots says about snapshots tagged with a client token.
    enum TokenLookup: Equatable {
        /// A pending snapshot of this account carries the token: continue it.
        case pending(id: String, startedAt: Double?)
        /// A snapshot carries the token but can no longer take blocks.
        case unusable(id: String, state: String)
        /// No snapshot carries it.
        case none
        /// EC2 could not be asked (no client, or the call failed).
        case unknown
    }

    /// Looks for a snapshot of this account tagged with `token` (``clientTokenTagKey``). Several pending ones
    /// (only possible when a service ignored the token) are named in the log; the earliest is used.
    func snapshotStarted(withToken token: String, name: String) async -> TokenLookup {
        guard let ec2 else { return .unknown }
        var p = EC2Parameters()
        p.addList("Owner", ["self"])
        p.addFilters([("tag:\(Self.clientTokenTagKey)", [token])])
        var found: [(snapshot: EC2Snapshot, started: Double?)] = []
        do {
            let doc = try await ec2.call("DescribeSnapshots", p)
            for item in doc.items("snapshotSet") {
                let s = try EC2Snapshot(item: item)
                let started = item.string("startTime").flatMap { Self.parseTimestamp($0) }
                found.append((s, started))
            }
        } catch {
            log.warning(
                "could not look for a snapshot started with this upload's client token (\(error)); "
                    + "sending StartSnapshot again with the same token")
            return .unknown
        }
        let pending = found.filter { $0.snapshot.state == "pending" }
            .sorted { ($0.started ?? 0, $0.snapshot.snapshotID) < ($1.started ?? 0, $1.snapshot.snapshotID) }
        if let first = pending.first {
            log.info(
                "\(first.snapshot.snapshotID) was started for \(name) by a StartSnapshot whose answer was not recorded "
                    + "(same client token); continuing it")
            for other in pending.dropFirst() {
                log.warning(
                    "\(other.snapshot.snapshotID) also carries this upload's client token; it is not used and AWS "
                        + "cancels it when its timeout runs out")
            }
            return .pending(id: first.snapshot.snapshotID, startedAt: first.started)
        }
        if let other = found.first { return .unusable(id: other.snapshot.snapshotID, state: other.snapshot.state) }
        return .none
    }

    /// Seconds since 1970 of an EC2 timestamp (`2026-12-04T17:30:27.000Z`).
    static func parseTimestamp(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)?.timeIntervalSince1970
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Why an interrupted upload cannot be continued, judged from the journal alone; nil when it can.
    public static func resumeRefusal(old: UploadJournalHeader, new: UploadJournalHeader, lastActivity: Date?, now: Date)
        -> String?
    {
        if old.version != new.version { return "the journal was written by another zlabel version" }
        if old.image.size != new.image.size {
            return "the image changed size (\(old.image.size) → \(new.image.size) bytes)"
        }
        if old.image.device != new.image.device || old.image.inode != new.image.inode {
            return "the image path now names a different file"
        }
        if old.image.modifiedNanoseconds != new.image.modifiedNanoseconds {
            return "the image was modified since the interrupted upload"
        }
        if old.overlayDigest != new.overlayDigest { return "the overlaid bytes differ from the interrupted upload's" }
        if old.optionsDigest != new.optionsDigest {
            return "the snapshot options (volume size, description, tags, parent, encryption, timeout) differ"
        }
        if old.state == "uploading" || old.state == "completing" {
            let since = lastActivity ?? old.snapshotStartedAt.map { Date(timeIntervalSince1970: $0) }
            if let since, now.timeIntervalSince(since) > Double(old.timeoutMinutes * 60) {
                return "\(old.snapshotID ?? "the snapshot") has expired: its last block was sent at \(since), "
                    + "more than its \(old.timeoutMinutes)-minute timeout ago, so AWS has cancelled it"
            }
        }
        return nil
    }

    /// Asks EC2 whether the interrupted run's snapshot can still take blocks. Returns the reason it cannot
    /// (nil when it can, or when EC2 cannot say) and the state EC2 reports.
    func remoteCheck(_ id: String, _ old: UploadJournalHeader) async -> (refusal: String?, state: String?) {
        guard let ec2 else { return (nil, nil) }
        do {
            let snaps = try await ec2.describeSnapshots(ids: [id])
            guard let s = snaps.first(where: { $0.snapshotID == id }) else {
                return ("\(id) no longer exists (DescribeSnapshots does not list it)", nil)
            }
            switch s.state {
            case "pending": return (nil, s.state)
            case "completed" where old.state == "completing" || old.state == "done": return (nil, s.state)
            case "completed": return ("\(id) is already completed, so it cannot take more blocks", s.state)
            default: return ("\(id) is in state \(s.state)" + (s.stateMessage.map { ": \($0)" } ?? ""), s.state)
            }
        } catch let e as AWSServiceError where e.code.hasPrefix("InvalidSnapshot.NotFound") {
            return ("\(id) no longer exists (\(e.code))", nil)
        } catch {
            log.warning("could not check \(id) with DescribeSnapshots (\(error)); trying to resume anyway")
            return (nil, nil)
        }
    }

    static func optionsDigest(_ o: UploadOptions, volume: Int, encrypted: Bool) -> String {
        var s = "v=\(volume)\nd=\(o.description ?? "")\np=\(o.parentSnapshotID ?? "")\ne=\(encrypted)\n"
        s += "k=\(o.kmsKeyARN ?? "")\nt=\(o.timeoutMinutes)\n"
        for t in o.tags { s += "tag=\(t.key.utf8.count):\(t.key)=\(t.value)\n" }
        return SHA256.hash(data: Array(s.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Logs a retry decision; the give-up line only with `--verbose`, since the failure itself is thrown and
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

    let reader: BlockReader
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
        let checksum = Data(d.sha256).base64EncodedString()
        do {
            try await ebs.putSnapshotBlock(
                snapshotID: snapshotID, index: Int(index), data: buf, checksum: checksum, timeout: attemptTimeout)
        } catch {
            let (c, m) = SnapshotUploader.classify(error)
            return Result(index: index, bytesRead: n, kind: .failed(c, m))
        }
        return Result(index: index, bytesRead: n, kind: .done(d.isZero ? .uploadedZero : .uploaded, d))
    }
}

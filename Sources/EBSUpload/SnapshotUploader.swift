// An upload in three layers: `UploadPlan` decides what to create and which blocks to go through (no network),
// `UploadResumption` decides whether an earlier run's journal is continued, named again or dropped, and
// `UploadDriver` runs the requests. `SnapshotUploader` strings them together and writes the manifest.

public import AWSCore
public import Foundation

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
    /// - Throws: ``SnapshotUploadError`` after a snapshot was started, `InvalidOptionError`,
    ///   `AWSConfigurationError`, ``OverlayError``, ``ManifestError``, `ImageError` or a service error before
    ///   that.
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
        let started = ContinuousClock.now
        try options.validate()
        let parent = try UploadPlan.loadParent(options)
        let reader = try ImageBlockReader(source: source, overlay: options.overlay)
        let plan = try UploadPlan(options: options, reader: reader, parent: parent)
        log.debug(
            "\(name): \(source.size) bytes, \(reader.extents.count) data extents holding \(reader.dataBytes) bytes; "
                + "\(plan.candidateCount) candidate blocks; volume \(plan.volumeSizeGiB) GiB")

        // Journal: resume, name an earlier snapshot again, or start over.
        let region = ebs.client.region
        let endpoint = ebs.client.endpoint.baseURL
        let fresh = plan.journalHeader(
            name: name, identity: identity, region: region, endpoint: endpoint,
            clientToken: UUID().uuidString.lowercased())
        let key = UploadJournal.key(imagePath: name, region: region, endpoint: endpoint)
        let uploads = options.uploadsDirectory
        let existing = options.resume ? UploadJournal.existingHeader(directory: uploads, key: key) : nil
        let slots = uploads + "/\(key).blocks"
        let last = (try? FileManager.default.attributesOfItem(atPath: slots)[.modificationDate] as? Date) ?? nil
        let resumption = UploadResumption(ec2: ec2, log: log)
        var resume = false
        var completedRemotely = false
        var resumeRefused: String?
        switch await resumption.decide(existing: existing, fresh: fresh, name: name, lastActivity: last) {
        case .reuse(let id, let changed, let remoteState):
            return try await reused(
                id, changedBlocksCount: changed, remoteState: remoteState,
                volumeSizeGiB: existing?.volumeSizeGiB ?? plan.volumeSizeGiB, name: name, plan: plan,
                imageDataBytes: reader.dataBytes, started: started)
        case .resume(let c):
            resume = true
            completedRemotely = c
        case .startNew(let why):
            resumeRefused = why
        }
        CrashPoint.reach(.beforeJournal)
        let journal = try UploadJournal(
            directory: uploads, key: key, header: fresh, resume: resume, blockCount: plan.blockCount)
        CrashPoint.reach(.journalCreated)
        if completedRemotely, let s = journal.header.state.completed { try journal.update { $0.state = s } }
        if resume {
            log.info(
                "resuming the interrupted upload"
                    + (journal.header.snapshotID.map { " into \($0)" } ?? " (StartSnapshot with the same client token)")
                    + ": \(journal.recordedCount) blocks already sent")
        }

        let run: UploadDriver.Outcome
        if case .completed(let id, _) = journal.header.state {
            log.info("\(id) was already completed by the interrupted run")
            run = UploadDriver.Outcome(
                snapshotID: id, counts: UploadStateMachine.Counts(), bytesRead: 0, bytesUploaded: 0,
                completeStatus: "pending", changedBlocks: journal.recordedCount)
        } else {
            let driver = UploadDriver(
                ebs: ebs, resumption: resumption, log: log, plan: plan, reader: reader, journal: journal, name: name,
                started: started)
            run = try await driver.run(resume: resume, progress: progress)
        }

        var state = run.completeStatus
        if options.wait, let ec2 {
            let s = try await ec2.waitForSnapshot(
                id: run.snapshotID, interval: options.waitInterval, timeout: options.waitTimeout)
            state = s.state
        }

        // Manifest for later incremental uploads, then the journal goes.
        let manifest = try BlockManifest.merged(
            parent: plan.parent,
            header: BlockManifestHeader(
                snapshotID: run.snapshotID, volumeSizeGiB: plan.volumeSizeGiB, blockSize: ebsBlockSize,
                encrypted: plan.encrypted, parentSnapshotID: options.parentSnapshotID),
            journal: journal)
        let manifestPath = BlockManifest.path(directory: options.manifestDirectory, snapshotID: run.snapshotID)
        try manifest.write(to: manifestPath)
        CrashPoint.reach(.manifestWritten)
        try journal.finish(changedBlocksCount: run.changedBlocks)
        CrashPoint.reach(.journalDone)

        let counts = run.counts
        return UploadResult(
            snapshotID: run.snapshotID, volumeSizeGiB: plan.volumeSizeGiB, state: state, resumed: resume,
            resumeRefusedReason: resumeRefused, blocksConsidered: plan.candidateCount, blocksUploaded: counts.uploaded,
            zeroBlocksUploaded: counts.uploadedZero, zeroBlocksSkipped: counts.skippedZero,
            unchangedBlocksSkipped: counts.skippedUnchanged, blocksFromEarlierRun: counts.alreadyUploaded,
            changedBlocksCount: run.changedBlocks, bytesUploaded: run.bytesUploaded, bytesRead: run.bytesRead,
            imageDataBytes: reader.dataBytes, retries: counts.retries,
            seconds: Self.seconds(ContinuousClock.now - started), manifestPath: manifestPath)
    }

    /// The result of an earlier, finished upload of the same image with the same options, whose snapshot is named
    /// again: nothing is sent.
    func reused(
        _ id: String, changedBlocksCount changed: Int, remoteState: String?, volumeSizeGiB: Int, name: String,
        plan: UploadPlan, imageDataBytes: UInt64, started: ContinuousClock.Instant
    ) async throws -> UploadResult {
        let options = plan.options
        log.info(
            "\(name) was already uploaded into \(id) by an earlier run with the same image and options; "
                + "nothing to send (turning resume off starts a new snapshot)")
        var state = remoteState ?? "completed"
        if options.wait, let ec2 {
            state = try await ec2.waitForSnapshot(id: id, interval: options.waitInterval, timeout: options.waitTimeout)
                .state
        }
        let manifestPath = BlockManifest.path(directory: options.manifestDirectory, snapshotID: id)
        return UploadResult(
            snapshotID: id, volumeSizeGiB: volumeSizeGiB, state: state, resumed: true, resumeRefusedReason: nil,
            blocksConsidered: plan.candidateCount, blocksUploaded: 0, zeroBlocksUploaded: 0, zeroBlocksSkipped: 0,
            unchangedBlocksSkipped: 0, blocksFromEarlierRun: changed, changedBlocksCount: changed, bytesUploaded: 0,
            bytesRead: 0, imageDataBytes: imageDataBytes, retries: 0,
            seconds: Self.seconds(ContinuousClock.now - started),
            manifestPath: FileManager.default.fileExists(atPath: manifestPath) ? manifestPath : nil)
    }

    /// The tag that names a snapshot's StartSnapshot client token (``UploadPlan/clientTokenTagKey``).
    public static var clientTokenTagKey: String { UploadPlan.clientTokenTagKey }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

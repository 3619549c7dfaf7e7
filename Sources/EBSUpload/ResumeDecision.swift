// Whether an upload continues what an earlier run left: the journal decides what it can (same image, same
// overlay, same options, not expired), EC2 says whether the earlier snapshot can still be used, and a
// StartSnapshot whose answer was lost is found again by its client-token tag.

public import AWSCore
public import Foundation

/// What to do with the journal an earlier run left.
public enum ResumeDecision: Sendable, Equatable {
    /// Start a new snapshot with a new journal. `refusal` says why an earlier upload could not be continued or
    /// named again, when that is news (not when the image or the options simply changed since a finished one).
    case startNew(refusal: String?)
    /// Continue the interrupted upload with its journal. `completedRemotely`: CompleteSnapshot went through but
    /// the run was killed before its journal said so.
    case resume(completedRemotely: Bool)
    /// An earlier, finished upload of the same image with the same options holds the snapshot: name it again.
    /// `remoteState` is what DescribeSnapshots said (nil when EC2 could not be asked).
    case reuse(snapshotID: String, changedBlocksCount: Int, remoteState: String?)
}

/// What EC2 says about the snapshot of an earlier run.
public struct RemoteSnapshotCheck: Sendable, Equatable {
    /// Why it cannot be used; nil when it can, or when EC2 cannot say.
    public var refusal: String?
    /// The state EC2 reports.
    public var state: String?

    /// Creates an answer.
    public init(refusal: String?, state: String?) {
        self.refusal = refusal
        self.state = state
    }
}

/// What DescribeSnapshots says about snapshots tagged with a client token.
public enum TokenLookup: Sendable, Equatable {
    /// A pending snapshot of this account carries the token: continue it.
    case pending(id: String, startedAt: Double?)
    /// A snapshot carries the token but can no longer take blocks.
    case unusable(id: String, state: String)
    /// No snapshot carries it.
    case none
    /// EC2 could not be asked (no client, or the call failed).
    case unknown
}

/// Decides whether to resume, and asks EC2 what the decision needs.
public struct UploadResumption: Sendable {
    /// The EC2 client; nil when EC2 cannot be asked (then the journal alone decides).
    public let ec2: EC2Client?
    /// The log.
    public let log: AWSLog

    /// Creates a resumption for an upload.
    public init(ec2: EC2Client?, log: AWSLog) {
        self.ec2 = ec2
        self.log = log
    }

    /// The decision for a journal header `existing` (nil when there is none or resume is off), against the
    /// header a new upload would write, asking EC2 about the earlier snapshot.
    public func decide(existing: UploadJournalHeader?, fresh: UploadJournalHeader, name: String, lastActivity: Date?)
        async -> ResumeDecision
    {
        await Self.decide(
            existing: existing, fresh: fresh, name: name, lastActivity: lastActivity, now: Date(), log: log,
            remote: { id, old in await remoteCheck(id, old) })
    }

    /// The decision, with EC2's answer about a snapshot coming from `remote`. Nothing else is asked and no file
    /// is read.
    ///
    /// - Parameters:
    ///   - existing: the journal header an earlier run left; nil when there is none or resume is off.
    ///   - fresh: the header a new upload would write.
    ///   - name: the image, for log lines.
    ///   - lastActivity: the time the interrupted run last recorded a block (its slot file's mtime), if any.
    ///   - now: the current time, for the expiry of a pending snapshot.
    ///   - log: where refusals are logged.
    ///   - remote: EC2's answer about a snapshot of the earlier run.
    public static func decide(
        existing: UploadJournalHeader?, fresh: UploadJournalHeader, name: String, lastActivity: Date?, now: Date,
        log: AWSLog, remote: (String, UploadJournalHeader) async -> RemoteSnapshotCheck
    ) async -> ResumeDecision {
        guard let old = existing else { return .startNew(refusal: nil) }
        switch old.state {
        case .done(let id, _, let changed):
            // Running the same command twice names one snapshot, even when the first run was killed after
            // CompleteSnapshot but before it printed the id.
            if let why = refusal(old: old, new: fresh, lastActivity: nil, now: now) {
                log.debug("not reusing \(id) of an earlier upload of \(name): \(why)")
                return .startNew(refusal: nil)
            }
            let check = await remote(id, old)
            if let why = check.refusal {
                log.warning("an earlier run uploaded \(name) into \(id), but \(why); uploading again")
                return .startNew(refusal: why)
            }
            return .reuse(snapshotID: id, changedBlocksCount: changed, remoteState: check.state)
        case .starting, .completed:
            if let why = refusal(old: old, new: fresh, lastActivity: lastActivity, now: now) {
                return refused(why, old, log)
            }
            return .resume(completedRemotely: false)
        case .uploading(let id, _), .completing(let id, _):
            if let why = refusal(old: old, new: fresh, lastActivity: lastActivity, now: now) {
                return refused(why, old, log)
            }
            let check = await remote(id, old)
            if let why = check.refusal { return refused(why, old, log) }
            // CompleteSnapshot went through but the kill came before the journal said so.
            if case .completing = old.state, check.state == "completed" { return .resume(completedRemotely: true) }
            return .resume(completedRemotely: false)
        }
    }

    private static func refused(_ why: String, _ old: UploadJournalHeader, _ log: AWSLog) -> ResumeDecision {
        log.warning(
            "cannot resume the interrupted upload\(old.snapshotID.map { " into \($0)" } ?? ""): \(why); "
                + "starting a new snapshot")
        return .startNew(refusal: why)
    }

    /// Why an interrupted upload cannot be continued, judged from the journal alone; nil when it can.
    public static func refusal(old: UploadJournalHeader, new: UploadJournalHeader, lastActivity: Date?, now: Date)
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
        switch old.state {
        case .uploading(let id, let startedAt), .completing(let id, let startedAt):
            let since = lastActivity ?? startedAt.map { Date(timeIntervalSince1970: $0) }
            if let since, now.timeIntervalSince(since) > Double(old.timeoutMinutes * 60) {
                return "\(id) has expired: its last block was sent at \(since), "
                    + "more than its \(old.timeoutMinutes)-minute timeout ago, so AWS has cancelled it"
            }
        case .starting, .completed, .done:
            break
        }
        return nil
    }

    /// Asks EC2 whether the earlier run's snapshot can still be used.
    func remoteCheck(_ id: String, _ old: UploadJournalHeader) async -> RemoteSnapshotCheck {
        guard let ec2 else { return RemoteSnapshotCheck(refusal: nil, state: nil) }
        do {
            let snaps = try await ec2.describeSnapshots(ids: [id])
            guard let s = snaps.first(where: { $0.snapshotID == id }) else {
                return RemoteSnapshotCheck(refusal: "\(id) no longer exists (DescribeSnapshots does not list it)", state: nil)
            }
            return RemoteSnapshotCheck(refusal: Self.remoteRefusal(s, old), state: s.state)
        } catch let e as AWSServiceError where e.code.hasPrefix("InvalidSnapshot.NotFound") {
            return RemoteSnapshotCheck(refusal: "\(id) no longer exists (\(e.code))", state: nil)
        } catch {
            log.warning("could not check \(id) with DescribeSnapshots (\(error)); trying to resume anyway")
            return RemoteSnapshotCheck(refusal: nil, state: nil)
        }
    }

    /// Why a snapshot in EC2's state `s` cannot serve the journal `old`; nil when it can.
    static func remoteRefusal(_ s: EC2Snapshot, _ old: UploadJournalHeader) -> String? {
        let id = s.snapshotID
        switch (s.state, old.state) {
        case ("pending", _): return nil
        case ("completed", .completing), ("completed", .done): return nil
        case ("completed", _): return "\(id) is already completed, so it cannot take more blocks"
        default: return "\(id) is in state \(s.state)" + (s.stateMessage.map { ": \($0)" } ?? "")
        }
    }

    /// Looks for a snapshot of this account tagged with `token` (``UploadPlan/clientTokenTagKey``).
    func snapshotStarted(withToken token: String, name: String) async -> TokenLookup {
        guard let ec2 else { return .unknown }
        var p = EC2Parameters()
        p.addList("Owner", ["self"])
        p.addFilters([("tag:\(UploadPlan.clientTokenTagKey)", [token])])
        var found: [(snapshot: EC2Snapshot, startedAt: Double?)] = []
        do {
            let doc = try await ec2.call("DescribeSnapshots", p)
            for item in doc.items("snapshotSet") {
                let s = try EC2Snapshot(item: item)
                found.append((s, item.string("startTime").flatMap { Self.parseTimestamp($0) }))
            }
        } catch {
            log.warning(
                "could not look for a snapshot started with this upload's client token (\(error)); "
                    + "sending StartSnapshot again with the same token")
            return .unknown
        }
        let (lookup, ignored) = Self.lookup(found)
        if case .pending(let id, _) = lookup {
            log.info(
                "\(id) was started for \(name) by a StartSnapshot whose answer was not recorded "
                    + "(same client token); continuing it")
        }
        for other in ignored {
            log.warning(
                "\(other) also carries this upload's client token; it is not used and AWS "
                    + "cancels it when its timeout runs out")
        }
        return lookup
    }

    /// The snapshot to continue among those carrying the token: the earliest pending one (several only when a
    /// service ignored the token; the others are returned to be named), else any other one as unusable.
    static func lookup(_ found: [(snapshot: EC2Snapshot, startedAt: Double?)]) -> (TokenLookup, ignored: [String]) {
        let pending = found.filter { $0.snapshot.state == "pending" }
            .sorted { ($0.startedAt ?? 0, $0.snapshot.snapshotID) < ($1.startedAt ?? 0, $1.snapshot.snapshotID) }
        if let first = pending.first {
            return (
                .pending(id: first.snapshot.snapshotID, startedAt: first.startedAt),
                pending.dropFirst().map(\.snapshot.snapshotID)
            )
        }
        if let other = found.first { return (.unusable(id: other.snapshot.snapshotID, state: other.snapshot.state), []) }
        return (.none, [])
    }

    /// Seconds since 1970 of an EC2 timestamp (`2026-12-04T17:30:27.000Z`).
    static func parseTimestamp(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)?.timeIntervalSince1970
    }
}

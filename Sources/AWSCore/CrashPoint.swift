// A test hook for crash-safety tests: the process kills itself (SIGKILL) at a named point of an upload or a
// publish, so a test can stop a real run deterministically between two steps (say, after StartSnapshot was
// answered and before the journal records the snapshot id) instead of racing a timer against it.
//
// It is driven by the environment variable ZLABEL_TEST_CRASH_AT=NAME or NAME@N (the N-th time NAME is
// reached; 1 when omitted). Unset, `reach` costs one comparison of a cached value.

import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The points of an upload and a publish where ``CrashPoint/reach(_:)`` can end the process, in the order a
/// publish passes them.
public enum CrashPoint: String, CaseIterable, Sendable {
    /// Upload: the journal is about to be created (or reopened).
    case beforeJournal = "upload.before-journal"
    /// Upload: the journal (client token, state `starting`) is on disk; StartSnapshot not sent.
    case journalCreated = "upload.journal-created"
    /// Upload: StartSnapshot was answered (the snapshot exists) and the answer is not yet parsed.
    case startSnapshotSent = "upload.start-snapshot-sent"
    /// Upload: the snapshot id is known, the journal does not hold it yet.
    case startSnapshotAnswered = "upload.start-snapshot-answered"
    /// Upload: the journal holds the snapshot id (state `uploading`).
    case startSnapshotJournaled = "upload.start-snapshot-journaled"
    /// Upload: a block was acknowledged and recorded in the journal (use `@N` for the N-th block).
    case blockRecorded = "upload.block-recorded"
    /// Upload: the journal says `completing`; CompleteSnapshot not sent.
    case beforeComplete = "upload.before-complete"
    /// Upload: CompleteSnapshot was answered; the journal still says `completing`.
    case completeAnswered = "upload.complete-answered"
    /// Upload: the journal says `completed`.
    case completeJournaled = "upload.complete-journaled"
    /// Upload: the block manifest is written; the journal is not yet `done`.
    case manifestWritten = "upload.manifest-written"
    /// Upload: the journal is `done`; the result is not yet returned (nor printed).
    case journalDone = "upload.journal-done"
    /// Publish: the publish state file names the snapshot; nothing registered.
    case publishStateSaved = "publish.state-saved"
    /// Publish: RegisterImage was answered; the AMI id is not yet used.
    case registerAnswered = "publish.register-answered"
    /// Publish: the AMI is registered (and available when waited for); no copy started.
    case registered = "publish.registered"
    /// Publish: CopyImage was answered; the copy's id is not yet used.
    case copyAnswered = "publish.copy-answered"
    /// Publish: everything is done; the result is not yet printed.
    case published = "publish.done"

    /// The environment variable that arms a point.
    public static let environmentVariable = "ZLABEL_TEST_CRASH_AT"

    static let armed: (name: String, count: Int)? = {
        guard let p = getenv(environmentVariable) else { return nil }
        let spec = String(cString: p)
        guard !spec.isEmpty else { return nil }
        if let at = spec.lastIndex(of: "@"), let n = Int(spec[spec.index(after: at)...]), n >= 1 {
            return (String(spec[..<at]), n)
        }
        return (spec, 1)
    }()

    static let hits = Mutex(0)

    /// Ends the process with SIGKILL when this point is the armed one (and reached for the armed time).
    public static func reach(_ point: CrashPoint) {
        guard let armed, armed.name == point.rawValue else { return }
        let n = hits.withLock {
            $0 += 1
            return $0
        }
        if n == armed.count {
            kill(getpid(), SIGKILL)
        }
    }
}

import AWSCore
import EBSUpload
import EC2TestSupport
import Foundation
import Testing

@Suite("Upload plan: options, volume size, candidate blocks (no network)")
struct UploadPlanTests {
    static let gib: UInt64 = 1 << 30
    static let bs = UInt64(ebsBlockSize)

    static func reader(size: UInt64, data: [Range<UInt64>]) throws -> ImageBlockReader {
        try ImageBlockReader(source: SizedImage(size: size, data: data))
    }

    @Test("the volume is the image rounded up to whole GiB; only blocks with data are candidates")
    func volumeAndCandidates() throws {
        let size = Self.gib + Self.gib / 2
        let r = try Self.reader(size: size, data: [0..<10, (3 * Self.bs + 5)..<(5 * Self.bs)])
        let plan = try UploadPlan(options: UploadOptions(stateDirectory: "/nonexistent"), reader: r, parent: nil)
        #expect(plan.volumeSizeGiB == 2)
        #expect(plan.blockCount == 2 * Self.gib / Self.bs)
        #expect(!plan.encrypted)
        #expect(plan.candidates == [0..<1, 3..<5])
        #expect(plan.candidateCount == 3)
        // An empty image still makes a 1 GiB volume with nothing to send.
        let empty = try UploadPlan(
            options: UploadOptions(stateDirectory: "/x"), reader: try Self.reader(size: 0, data: []), parent: nil)
        #expect(empty.volumeSizeGiB == 1 && empty.candidates.isEmpty)
    }

    @Test("a volume size below the image's is refused, naming the option; a larger one is kept")
    func volumeSizeOption() throws {
        let r = try Self.reader(size: 3 * Self.gib - 1, data: [0..<1])
        var o = UploadOptions(stateDirectory: "/x")
        o.volumeSizeGiB = 2
        #expect {
            _ = try UploadPlan(options: o, reader: r, parent: nil)
        } throws: { ($0 as? InvalidOptionError)?.option == .volumeSize && "\($0)".contains("3 GiB needed") }
        o.volumeSizeGiB = 8
        #expect(try UploadPlan(options: o, reader: r, parent: nil).volumeSizeGiB == 8)
    }

    @Test("an image over 64 TiB cannot be planned")
    func overLimit() throws {
        let r = try Self.reader(size: 65537 * Self.gib, data: [])
        #expect(throws: AWSConfigurationError.self) {
            _ = try UploadPlan(options: UploadOptions(stateDirectory: "/x"), reader: r, parent: nil)
        }
    }

    @Test("encryption (or a KMS key) makes every block of the volume a candidate")
    func encrypted() throws {
        let r = try Self.reader(size: Self.gib, data: [0..<1])
        var o = UploadOptions(stateDirectory: "/x")
        o.kmsKeyARN = "arn:aws:kms:us-east-1:123456789012:key/k"
        let plan = try UploadPlan(options: o, reader: r, parent: nil)
        #expect(plan.encrypted)
        #expect(plan.candidates == [0..<(Self.gib / Self.bs)])
    }

    @Test("an incremental plan adds the parent's blocks, takes its size and its encryption")
    func parent() throws {
        let r = try Self.reader(size: Self.gib, data: [(7 * Self.bs)..<(7 * Self.bs + 1)])
        var o = UploadOptions(stateDirectory: "/x")
        o.parentSnapshotID = "snap-p"
        let parent = BlockManifest(
            header: BlockManifestHeader(snapshotID: "snap-p", volumeSizeGiB: 4, blockSize: ebsBlockSize, encrypted: false),
            entries: [(2, 20), (7, 70), (5000, 1)])
        let plan = try UploadPlan(options: o, reader: r, parent: parent)
        #expect(plan.volumeSizeGiB == 4 && !plan.encrypted)
        #expect(plan.candidates == [2..<3, 7..<8, 5000..<5001])
        // A parent's manifest is required when a parent is named.
        #expect(throws: AWSConfigurationError.self) { _ = try UploadPlan(options: o, reader: r, parent: nil) }
        var encryptedParent = parent
        encryptedParent.header.encrypted = true
        let e = try UploadPlan(options: o, reader: r, parent: encryptedParent)
        #expect(e.encrypted && e.candidateCount == 4 * Self.gib / Self.bs)
    }

    @Test("the parent's manifest comes from the state directory, and must be the parent's")
    func loadParent() throws {
        let dir = try TestEnv.tempDir("plan-parent")
        var o = UploadOptions(stateDirectory: dir)
        #expect(try UploadPlan.loadParent(o) == nil)
        o.parentSnapshotID = "snap-p"
        #expect { _ = try UploadPlan.loadParent(o) } throws: {
            ($0 as? AWSConfigurationError)?.message.contains("no local block manifest for snap-p") == true
        }
        let other = BlockManifest(
            header: BlockManifestHeader(snapshotID: "snap-q", volumeSizeGiB: 1, blockSize: ebsBlockSize, encrypted: false),
            entries: [(1, 10)])
        try other.write(to: BlockManifest.path(directory: dir + "/manifests", snapshotID: "snap-p"))
        #expect { _ = try UploadPlan.loadParent(o) } throws: { ($0 as? ManifestError)?.message.contains("snap-q") == true }
        try other.write(to: BlockManifest.path(directory: dir + "/manifests", snapshotID: "snap-q"))
        o.parentSnapshotID = "snap-q"
        #expect(try UploadPlan.loadParent(o) == other)
    }

    @Test("options are checked once, with one range each, and the error names the option")
    func validation() throws {
        var o = UploadOptions(stateDirectory: "/x")
        try o.validate()
        for (w, ok) in [(0, false), (1, true), (1024, true), (1025, false)] {
            o.workers = w
            if ok { try o.validate() } else { #expect(throws: InvalidOptionError.self) { try o.validate() } }
        }
        #expect(UploadOptions.workerRange == 1...1024)
        o.workers = 16
        for (t, ok) in [(9, false), (10, true), (4320, true), (4321, false)] {
            o.timeoutMinutes = t
            #expect((try? o.validate()) != nil || !ok)
            if !ok { #expect { try o.validate() } throws: { ($0 as? InvalidOptionError)?.option == .snapshotTimeout } }
        }
        o.timeoutMinutes = 60
        o.volumeSizeGiB = 65537
        #expect { try o.validate() } throws: { ($0 as? InvalidOptionError)?.option == .volumeSize }
        o.volumeSizeGiB = nil
        o.encrypted = true
        o.parentSnapshotID = "snap-p"
        #expect { try o.validate() } throws: {
            ($0 as? InvalidOptionError)?.text.options == [.encrypted, .kmsKey, .parentSnapshot]
        }
    }

    @Test("the options digest covers what the snapshot is made with, not how it is sent")
    func optionsDigest() throws {
        let r = try Self.reader(size: Self.gib, data: [0..<1])
        let base = UploadOptions(stateDirectory: "/x")
        let d0 = try UploadPlan(options: base, reader: r, parent: nil).optionsDigest
        var o = base
        o.workers = 3
        o.resume = false
        #expect(try UploadPlan(options: o, reader: r, parent: nil).optionsDigest == d0)
        o = base
        o.description = "other"
        #expect(try UploadPlan(options: o, reader: r, parent: nil).optionsDigest != d0)
        o = base
        o.tags = [SnapshotTag(key: "a", value: "b")]
        #expect(try UploadPlan(options: o, reader: r, parent: nil).optionsDigest != d0)
        o = base
        o.volumeSizeGiB = 2
        #expect(try UploadPlan(options: o, reader: r, parent: nil).optionsDigest != d0)
    }
}

@Suite("Resume decision: journal and EC2's answer (scripted, no network)")
struct ResumeDecisionTests {
    static let identity = FileIdentity(device: 1, inode: 2, size: 100, modifiedNanoseconds: 5)
    static let now = Date(timeIntervalSince1970: 100_000)

    static func header(_ state: UploadState, options: String = "p") -> UploadJournalHeader {
        UploadJournalHeader(
            imagePath: "/x", image: identity, overlayDigest: "o", optionsDigest: options, volumeSizeGiB: 1,
            region: "r", endpoint: "e", clientToken: "t", timeoutMinutes: 60, state: state)
    }

    /// The decision with EC2 answering `answer`; also returns the snapshots EC2 was asked about.
    static func decide(
        _ existing: UploadJournalHeader?, fresh: UploadJournalHeader = header(.starting), lastActivity: Date? = nil,
        answer: RemoteSnapshotCheck = RemoteSnapshotCheck(refusal: nil, state: "pending")
    ) async -> (ResumeDecision, asked: [String]) {
        final class Asked: @unchecked Sendable { var ids: [String] = [] }
        let asked = Asked()
        let d = await UploadResumption.decide(
            existing: existing, fresh: fresh, name: "/x", lastActivity: lastActivity, now: now, log: .silent
        ) { id, _ in
            asked.ids.append(id)
            return answer
        }
        return (d, asked.ids)
    }

    @Test("no journal: a new snapshot, nothing asked")
    func none() async {
        let (d, asked) = await Self.decide(nil)
        #expect(d == .startNew(refusal: nil) && asked.isEmpty)
    }

    @Test("an interrupted upload resumes when EC2 says its snapshot is pending, and not when it is gone")
    func uploading() async {
        let old = Self.header(.uploading(snapshotID: "snap-1", startedAt: Self.now.timeIntervalSince1970 - 60))
        var (d, asked) = await Self.decide(old)
        #expect(d == .resume(completedRemotely: false) && asked == ["snap-1"])
        (d, _) = await Self.decide(old, answer: RemoteSnapshotCheck(refusal: "snap-1 no longer exists", state: nil))
        #expect(d == .startNew(refusal: "snap-1 no longer exists"))
        // EC2 cannot be asked: the journal alone decides.
        (d, _) = await Self.decide(old, answer: RemoteSnapshotCheck(refusal: nil, state: nil))
        #expect(d == .resume(completedRemotely: false))
    }

    @Test("a journal that is no longer valid is refused before EC2 is asked")
    func refusedLocally() async {
        let old = Self.header(.uploading(snapshotID: "snap-1", startedAt: 0))
        var (d, asked) = await Self.decide(old, lastActivity: Self.now.addingTimeInterval(-3601))
        guard case .startNew(let why?) = d else { Issue.record("\(d)"); return }
        #expect(why.contains("expired") && asked.isEmpty)
        (d, asked) = await Self.decide(old, fresh: Self.header(.starting, options: "other"), lastActivity: Self.now)
        guard case .startNew(let why2?) = d else { Issue.record("\(d)"); return }
        #expect(why2.contains("options") && asked.isEmpty)
    }

    @Test("killed between CompleteSnapshot and its journal entry: resumed as completed when EC2 says so")
    func completing() async {
        let old = Self.header(.completing(snapshotID: "snap-1", startedAt: Self.now.timeIntervalSince1970))
        var (d, _) = await Self.decide(old, answer: RemoteSnapshotCheck(refusal: nil, state: "completed"))
        #expect(d == .resume(completedRemotely: true))
        (d, _) = await Self.decide(old, answer: RemoteSnapshotCheck(refusal: nil, state: "pending"))
        #expect(d == .resume(completedRemotely: false))
    }

    @Test("starting and completed journals resume without asking EC2")
    func noSnapshotToAsk() async {
        for state: UploadState in [.starting, .completed(snapshotID: "snap-1", startedAt: nil)] {
            let (d, asked) = await Self.decide(Self.header(state))
            #expect(d == .resume(completedRemotely: false) && asked.isEmpty, "\(state)")
        }
    }

    @Test("a finished upload of the same image and options is named again while its snapshot exists")
    func done() async {
        let old = Self.header(.done(snapshotID: "snap-1", startedAt: nil, changedBlocksCount: 7))
        var (d, asked) = await Self.decide(old, answer: RemoteSnapshotCheck(refusal: nil, state: "completed"))
        #expect(d == .reuse(snapshotID: "snap-1", changedBlocksCount: 7, remoteState: "completed") && asked == ["snap-1"])
        (d, _) = await Self.decide(old, answer: RemoteSnapshotCheck(refusal: "snap-1 no longer exists", state: nil))
        #expect(d == .startNew(refusal: "snap-1 no longer exists"))
        // Other options: the usual case of a new upload, not a refusal worth reporting.
        (d, asked) = await Self.decide(old, fresh: Self.header(.starting, options: "other"))
        #expect(d == .startNew(refusal: nil) && asked.isEmpty)
    }
}

@Suite("Journal header: the state enum keeps the on-disk format")
struct JournalFormatTests {
    /// Headers as the journal wrote them before its state became an enum (pretty-printed, sorted keys).
    static func oldHeader(_ stateKeys: String) -> String {
        """
        {
          "clientToken" : "0c1d2e3f-aaaa-bbbb-cccc-0123456789ab",
          "endpoint" : "http://127.0.0.1:5000",
          "image" : {
            "device" : 2049,
            "inode" : 1234,
            "modifiedNanoseconds" : 1764900000123456789,
            "size" : 1073741824
          },
          "imagePath" : "/images/pool.img",
          "optionsDigest" : "9f",
          "overlayDigest" : "e3",
          "region" : "us-east-1",
        \(stateKeys)
          "timeoutMinutes" : 60,
          "version" : 1,
          "volumeSizeGiB" : 1
        }
        """
    }

    static let cases: [(String, UploadState)] = [
        ("  \"state\" : \"starting\",", .starting),
        (
            "  \"snapshotID\" : \"snap-1\",\n  \"snapshotStartedAt\" : 1764900000.5,\n  \"state\" : \"uploading\",",
            .uploading(snapshotID: "snap-1", startedAt: 1_764_900_000.5)
        ),
        (
            "  \"snapshotID\" : \"snap-1\",\n  \"snapshotStartedAt\" : 1764900000.5,\n  \"state\" : \"completing\",",
            .completing(snapshotID: "snap-1", startedAt: 1_764_900_000.5)
        ),
        (
            "  \"snapshotID\" : \"snap-1\",\n  \"snapshotStartedAt\" : 1764900000.5,\n  \"state\" : \"completed\",",
            .completed(snapshotID: "snap-1", startedAt: 1_764_900_000.5)
        ),
        (
            "  \"changedBlocksCount\" : 12,\n  \"snapshotID\" : \"snap-1\",\n  \"snapshotStartedAt\" : 1764900000.5,\n"
                + "  \"state\" : \"done\",",
            .done(snapshotID: "snap-1", startedAt: 1_764_900_000.5, changedBlocksCount: 12)
        ),
    ]

    @Test("every state of the old format decodes, and encodes back to the same keys and values")
    func roundTrip() throws {
        for (keys, state) in Self.cases {
            let text = Self.oldHeader(keys)
            let h = try JSONDecoder().decode(UploadJournalHeader.self, from: Data(text.utf8))
            #expect(h.state == state)
            #expect(h.image.inode == 1234 && h.clientToken.hasPrefix("0c1d"))
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let again = try enc.encode(h)
            let a = try JSONSerialization.jsonObject(with: again) as? NSDictionary
            let b = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
            #expect(a == b, "\(state)")
        }
    }

    @Test("an old journal on disk resumes: its header and slots are kept")
    func oldJournalResumes() throws {
        let dir = try TestEnv.tempDir("old-journal")
        let text = Self.oldHeader(Self.cases[1].0)
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/k.json"))
        let old = try #require(UploadJournal.existingHeader(directory: dir, key: "k"))
        #expect(old.state == .uploading(snapshotID: "snap-1", startedAt: 1_764_900_000.5))
        let fresh = UploadJournalHeader(
            imagePath: old.imagePath, image: old.image, overlayDigest: old.overlayDigest,
            optionsDigest: old.optionsDigest, volumeSizeGiB: 1, region: "us-east-1", endpoint: old.endpoint,
            clientToken: "new", timeoutMinutes: 60, state: .starting)
        #expect(UploadResumption.refusal(old: old, new: fresh, lastActivity: nil, now: Date(timeIntervalSince1970: 1_764_900_100)) == nil)
        do {
            let j = try UploadJournal(directory: dir, key: "k", header: fresh, resume: true, blockCount: 2048)
            try j.record(index: 9, sha256: [UInt8](repeating: 7, count: 32), xxh3: 1, isZero: false)
        }
        let j = try UploadJournal(directory: dir, key: "k", header: fresh, resume: true, blockCount: 2048)
        #expect(j.header == old && j.isDone(9) && j.recordedCount == 1)
    }

    @Test("combinations no run writes do not decode (the journal is then not resumed)")
    func impossible() throws {
        for keys in ["  \"state\" : \"uploading\",", "  \"state\" : \"done\",", "  \"state\" : \"paused\","] {
            #expect(throws: DecodingError.self) {
                _ = try JSONDecoder().decode(UploadJournalHeader.self, from: Data(Self.oldHeader(keys).utf8))
            }
        }
    }
}

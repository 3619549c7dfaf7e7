import Foundation
import Synchronization
import Testing
import TestSupport
import ZFSImage
import ZFSLabel

/// Where a simulated crash cuts an edit: after `survivingWrites` writes, the next one fails (or, torn, writes only
/// the first half of its bytes and then fails), and so does every write and flush after it, as if the machine
/// had stopped. Shared by the images of one edit, so the count runs across members in the writer's order.
final class CrashPoint: Sendable {
    enum Kind: String, Sendable { case fail, tear }
    enum Event: Sendable, Equatable {
        case write(image: String, offset: UInt64, count: Int)
        case flush(image: String)
    }

    let survivingWrites: Int
    let kind: Kind
    private let state = Mutex<(writes: Int, crashed: Bool, log: [Event])>((0, false, []))

    /// `survivingWrites: .max` never crashes (to record what an uninterrupted edit does).
    init(after survivingWrites: Int, _ kind: Kind = .fail) {
        self.survivingWrites = survivingWrites
        self.kind = kind
    }

    var crashed: Bool { state.withLock { $0.crashed } }
    var log: [Event] { state.withLock { $0.log } }

    enum Verdict { case pass, fail, tear }

    fileprivate func nextWrite(_ event: Event) -> Verdict {
        state.withLock { s in
            if s.crashed { return .fail }
            if s.writes == survivingWrites {
                s.crashed = true
                return kind == .tear ? .tear : .fail
            }
            s.writes += 1
            s.log.append(event)
            return .pass
        }
    }

    fileprivate func nextFlush(_ event: Event) -> Bool {
        state.withLock { s in
            if s.crashed { return false }
            s.log.append(event)
            return true
        }
    }
}

/// An image that obeys a ``CrashPoint``: the fault injector of the crash simulation.
final class FaultInjectingImage: ImageStorage {
    let base: any ImageStorage
    let crash: CrashPoint

    init(_ base: any ImageStorage, crash: CrashPoint) {
        self.base = base
        self.crash = crash
    }

    var path: String { base.path }
    var size: UInt64 { base.size }
    var isWritable: Bool { base.isWritable }

    func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        try base.read(at: offset, count: count)
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        switch crash.nextWrite(.write(image: path, offset: offset, count: bytes.count)) {
        case .pass:
            try base.write(bytes, at: offset)
        case .tear:
            try base.write(Array(bytes.prefix(bytes.count / 2)), at: offset)
            try base.synchronize()
            throw ImageError(.write, path: path, offset: offset, message: "simulated crash: torn write")
        case .fail:
            throw ImageError(.write, path: path, offset: offset, message: "simulated crash")
        }
    }

    func synchronize() throws(ImageError) {
        guard crash.nextFlush(.flush(image: path)) else {
            throw ImageError(.flush, path: path, message: "simulated crash")
        }
        try base.synchronize()
    }
}

/// Issue 3, proof 4: at every instant of an edit at least one consistent set of labels is valid, so real ZFS
/// imports the pool with the old or the new config, never neither; and running the same edit again finishes it.
@Suite("Crash safety of label edits")
struct CrashSafetyTests {
    struct Pool: Sendable {
        var images: [String]
        var edit: @Sendable ([UInt64]) -> LeafEdit
    }

    static let single = Pool(images: ["rpool-kvm.img"]) { _ in
        var edit = LeafEdit()
        edit.path = .set("/dev/dsk/c2t0d0s0")
        edit.physPath = .set("/xpvd/xdf@51712:a")
        edit.devid = .set("id1,xdf@AXEN51712_________/a")
        return edit
    }
    static let mirror = Pool(images: ["rpool-mirror-0.img", "rpool-mirror-1.img"]) { guids in
        var edit = LeafEdit(leaf: .guid(guids[0]))
        edit.path = .set("/dev/dsk/c2t0d0s0")
        edit.physPath = .set("/xpvd/xdf@51712:a")
        return edit
    }

    /// One crash: which pool, after how many writes, clean failure or torn write.
    struct Cut: Sendable, CustomTestStringConvertible {
        var mirror: Bool
        var survivingWrites: Int
        var kind: CrashPoint.Kind
        var pool: Pool { mirror ? CrashSafetyTests.mirror : CrashSafetyTests.single }
        var testDescription: String {
            "\(mirror ? "mirror (8 labels)" : "single disk (4 labels)"): \(kind == .tear ? "write \(survivingWrites + 1) torn" : "\(survivingWrites) writes, then stop")"
        }
    }

    /// A crash after every number of writes an uninterrupted edit makes (each label's changed blocks are written
    /// in one or more runs, so there are more writes than labels).
    static let cuts: [Cut] =
        [false, true].flatMap { mirror in
            (0..<writeCount(mirror ? CrashSafetyTests.mirror : CrashSafetyTests.single, labels: mirror ? 8 : 4)).flatMap { k in
                [Cut(mirror: mirror, survivingWrites: k, kind: .fail), Cut(mirror: mirror, survivingWrites: k, kind: .tear)]
            }
        }

    /// How many writes the uninterrupted edit of `pool` makes; `labels` (one write each) if that cannot be found.
    static func writeCount(_ pool: Pool, labels: Int) -> Int {
        guard let scratch = try? Fixture.scratchCopy(pool.images), let guids = try? LibraryEdit.leafGuids(scratch.urls[0]),
              let plain = try? LibraryEdit.targets(scratch.urls)
        else { return labels }
        let crash = CrashPoint(after: .max)
        let targets = plain.map { EditTarget(image: FaultInjectingImage($0.image, crash: crash), region: $0.region) }
        guard let plan = try? LabelWriter.plan(targets, edit: pool.edit(guids)),
              (try? LabelWriter.apply(plan, to: targets, backupPath: nil)) != nil
        else { return labels }
        return crash.log.filter { if case .write = $0 { return true } else { return false } }.count
    }

    /// The images after an uninterrupted edit, and the label configs before and after, as libzpool decodes them.
    struct Reference: Sendable {
        let scratch: Fixture.Scratch
        let old: [[ExactJSON]]  // per member, per label
        let new: [ExactJSON]  // per member (all four labels equal)
    }

    static func reference(_ pool: Pool) throws -> Reference {
        let scratch = try Fixture.scratchCopy(pool.images)
        let old = try scratch.urls.map { url in try Oracle.zlabelJSON(url).labels.map { try #require($0.config) } }
        try LibraryEdit.apply(scratch.urls, pool.edit(try LibraryEdit.leafGuids(scratch.urls[0])))
        let new = try scratch.urls.map { url in
            let dump = try Oracle.zlabelJSON(url)
            #expect(dump.labelsValid == 4, "\(dump.result)")
            return try #require(dump.labels[0].config)
        }
        for (o, n) in zip(old, new) { #expect(o[0] != n, "the reference edit changed nothing") }
        return Reference(scratch: scratch, old: old, new: new)
    }

    @Test("the writer's order: even labels of every member, flush, odd labels, flush; only config areas")
    func writeOrder() throws {
        for pool in [Self.single, Self.mirror] {
            let scratch = try Fixture.scratchCopy(pool.images)
            let crash = CrashPoint(after: .max)
            let targets = try LibraryEdit.targets(scratch.urls).map {
                EditTarget(image: FaultInjectingImage($0.image, crash: crash), region: $0.region)
            }
            let plan = try LabelWriter.plan(targets, edit: pool.edit(try LibraryEdit.leafGuids(scratch.urls[0])))
            let report = try LabelWriter.apply(plan, to: targets, backupPath: nil)
            let size = UInt64(64 << 20)
            let area = { (label: Int) in LabelLayout.labelOffset(label, vdevSize: size) + UInt64(LabelLayout.configOffset) }
            // Each label's writes are the changed blocks of its config area, in ascending order, inside it.
            let labelOf = { (offset: UInt64, count: Int) in
                (0..<4).first { area($0) <= offset && offset + UInt64(count) <= area($0) + UInt64(LabelLayout.configSize) }
            }
            var seen: [CrashPoint.Event] = []  // per label one write event (at the area's start), then the flushes
            var last: (image: String, label: Int, end: UInt64)?
            for event in crash.log {
                switch event {
                case .write(let image, let offset, let count):
                    let label = try #require(labelOf(offset, count), "a write outside every config area: \(event)")
                    if let l = last, l.image == image, l.label == label {
                        #expect(offset >= l.end, "the writes of a label go up: \(event)")
                    } else {
                        seen.append(.write(image: image, offset: area(label), count: LabelLayout.configSize))
                    }
                    last = (image, label, offset + UInt64(count))
                default:
                    seen.append(event)
                    last = nil
                }
            }
            var expected: [CrashPoint.Event] = []
            for phase in [[0, 2], [1, 3]] {
                for url in scratch.urls {
                    for label in phase { expected.append(.write(image: url.path, offset: area(label), count: LabelLayout.configSize)) }
                }
                for url in scratch.urls { expected.append(.flush(image: url.path)) }
            }
            #expect(seen == expected)
            #expect(report.writes.map(\.label) == expected.compactMap {
                if case .write(_, let offset, _) = $0 { return (0..<4).first { area($0) == offset } }
                return nil
            })
            // Fewer bytes than the four whole areas (only the changed blocks), and the result is the planned areas.
            let written = crash.log.reduce(0) { if case .write(_, _, let count) = $1 { return $0 + count } else { return $0 } }
            #expect(written < scratch.urls.count * 4 * LabelLayout.configSize)
        }
    }

    @Test("after a crash at any write ZFS imports the old or the new config; rerunning finishes the edit",
          .oracle(.zlabelJSON, .zdb), arguments: cuts)
    func crashAtEveryWrite(_ cut: Cut) throws {
        let reference = try Self.reference(cut.pool)
        let scratch = try Fixture.scratchCopy(cut.pool.images)
        let guids = try LibraryEdit.leafGuids(scratch.urls[0])
        let edit = cut.pool.edit(guids)
        let crash = CrashPoint(after: cut.survivingWrites, cut.kind)
        let backups = try TemporaryDirectory(prefix: "zlabel-crash")
        do {
            let targets = try LibraryEdit.targets(scratch.urls).map {
                EditTarget(image: FaultInjectingImage($0.image, crash: crash), region: $0.region)
            }
            let plan = try LabelWriter.plan(targets, edit: edit)
            let error = #expect(throws: LabelWriteError.self) {
                _ = try LabelWriter.apply(plan, to: targets, backupPath: backups.file("backup").path)
            }
            #expect(error?.backup == backups.file("backup").path, "the error names the backup")
            #expect(crash.crashed)
        }

        // Every label that unpacks holds the old or the new config (discovery takes the first that unpacks,
        // without checking its checksum); at least one label per member is valid.
        for (m, url) in scratch.urls.enumerated() {
            let dump = try Oracle.zlabelJSON(url)
            #expect(dump.labelsValid >= 1, "member \(m): no valid label left\n\(dump.result)")
            for label in dump.labels where label.unpacked {
                let config = try #require(label.config)
                #expect(config == reference.old[m][label.index] || config == reference.new[m],
                        "member \(m) label \(label.index) holds neither the old nor the new config")
            }
        }
        // Real ZFS imports it (userland import: label and uberblock checksums, guid sum, MOS config).
        let imported = try Self.zdbImports(scratch)
        #expect(imported.succeeded, "\(cut): real ZFS does not import the pool after the crash\n\(imported)")

        // The same edit again completes it: byte for byte the images of the uninterrupted edit.
        let (_, report) = try LibraryEdit.apply(scratch.urls, edit)
        #expect(!report.writes.isEmpty)
        for (url, done) in zip(scratch.urls, reference.scratch.urls) {
            #expect(try Data(contentsOf: url) == Data(contentsOf: done),
                    "\(url.lastPathComponent) after the rerun differs from an uninterrupted edit")
        }
    }

    /// `zdb -e -p DIR -C POOL` over the scratch directory (which holds only the pool's images).
    static func zdbImports(_ scratch: Fixture.Scratch) throws -> ProcessResult {
        try Oracle.require(.zdb)
        let pool = try Fixture.named(scratch.urls[0].lastPathComponent).poolName
        return try Run.run("zdb", ["-e", "-p", scratch.directory.url.path, "-C", pool], timeout: 120)
    }
}

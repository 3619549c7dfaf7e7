import Foundation
import NVList
import Testing
import TestSupport
import ZFSImage
import ZFSLabel

/// Issue 3, proof 5 (restore): the backup taken before an edit puts the original bytes back exactly, refuses an
/// image that changed since, and is never written over an existing file.
@Suite("Backup and restore of label edits")
struct RestoreTests {
    static func edit(_ physPath: String, leaf: LeafSelector = .automatic) -> LeafEdit {
        var edit = LeafEdit(leaf: leaf)
        edit.physPath = .set(NVString(physPath))
        edit.devid = .remove
        return edit
    }

    static func restore(_ backup: URL, into url: URL, entry: Int = 0) throws -> LabelBackup.RestoreOutcome {
        let file = try ImageFile(path: url.path, mode: .readWrite)
        return try LabelBackup.restore(try LabelBackup(contentsOf: backup.path).entries[entry], into: file)
    }

    @Test("restore returns the original bytes exactly; a second restore writes nothing")
    func restoresExactly() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let backup = scratch.directory.file("kvm.backup")
        let (_, report) = try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: backup)
        #expect(report.backup == backup.path)
        #expect(try !original.isUnchanged())

        let saved = try LabelBackup(contentsOf: backup.path)
        #expect(saved.entries.count == 1)
        #expect(saved.entries[0].path == scratch.url.path && saved.entries[0].imageSize == 64 << 20)
        #expect(saved.entries[0].before == LeafRanges.wholeLabels(size: 64 << 20).map { [UInt8](original[$0]) })

        #expect(try Self.restore(backup, into: scratch.url) == .restored(labels: 4))
        let change = try original.firstChange()
        #expect(change == nil, "differs from the original at byte \(change ?? -1)")
        #expect(try Self.restore(backup, into: scratch.url) == .alreadyOriginal)
        #expect(try original.isUnchanged())
    }

    @Test("a mirror edited through both members is restored member by member")
    func restoresMirror() throws {
        let scratch = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        let originals = try scratch.urls.map(ImageSnapshot.init)
        let guid = try LibraryEdit.leafGuids(scratch.urls[0])[1]
        let backup = scratch.directory.file("mirror.backup")
        try LibraryEdit.apply(scratch.urls, Self.edit("/xpvd/xdf@51728:a", leaf: .guid(guid)), backup: backup)
        let saved = try LabelBackup(contentsOf: backup.path)
        #expect(saved.entries.map(\.path) == scratch.urls.map(\.path))
        for (i, url) in scratch.urls.enumerated() {
            #expect(try Self.restore(backup, into: url, entry: i) == .restored(labels: 4))
        }
        for original in originals { #expect(try original.isUnchanged()) }
    }

    @Test("restore refuses an image that changed since the edit, and writes nothing")
    func refusesChangedImage() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let first = scratch.directory.file("first.backup"), second = scratch.directory.file("second.backup")
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: first)
        let afterFirst = try ImageSnapshot(scratch.url)
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51728:a"), backup: second)
        let afterSecond = try ImageSnapshot(scratch.url)

        let error = #expect(throws: ImageError.self) { _ = try Self.restore(first, into: scratch.url) }
        #expect(error?.message.contains("changed since") == true, "\(String(describing: error))")
        #expect(try afterSecond.isUnchanged(), "a refused restore wrote bytes")

        // Undo in order: the second backup, then the first.
        #expect(try Self.restore(second, into: scratch.url) == .restored(labels: 4))
        #expect(try afterFirst.isUnchanged())
        #expect(try Self.restore(first, into: scratch.url) == .restored(labels: 4))
        #expect(try original.isUnchanged())
    }

    @Test("restore refuses an image of another size")
    func refusesOtherSize() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img", "rpool-v28.img")
        let backup = scratch.directory.file("kvm.backup")
        try LibraryEdit.apply([scratch.urls[0]], Self.edit("/xpvd/xdf@51712:a"), backup: backup)
        // same size, other pool: every label differs from both recorded states
        let other = try ImageSnapshot(scratch.urls[1])
        #expect(throws: ImageError.self) { _ = try Self.restore(backup, into: scratch.urls[1]) }
        #expect(try other.isUnchanged())
        // a truncated copy
        let short = scratch.directory.file("short.img")
        try Fixture.sparseCopy(from: scratch.urls[0], to: short)
        let handle = try FileHandle(forWritingTo: short)
        try handle.truncate(atOffset: 48 << 20)
        try handle.close()
        let shortSnapshot = try ImageSnapshot(short)
        let error = #expect(throws: ImageError.self) { _ = try Self.restore(backup, into: short) }
        #expect(error?.code == .range)
        #expect(try shortSnapshot.isUnchanged())
    }

    @Test("restore after a crash mid-edit returns the original bytes")
    func restoresAfterCrash() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let backup = scratch.directory.file("crash.backup")
        try Self.crashingEdit(scratch.url, after: 2 * Self.writesPerLabel, .fail, backup: backup)
        // Labels 0 and 2 hold the new config, 1 and 3 the old one: restore puts back the two that changed.
        #expect(try !original.isUnchanged())
        #expect(try Self.restore(backup, into: scratch.url) == .restored(labels: 2))
        let change = try original.firstChange()
        #expect(change == nil, "differs from the original at byte \(change ?? -1)")
    }

    @Test("after a torn write restore refuses safely; rerunning the edit, then restoring, gives the original")
    func restoresAfterTornWrite() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let backup = scratch.directory.file("crash.backup")
        try Self.crashingEdit(scratch.url, after: 2 * Self.writesPerLabel, .tear, backup: backup)
        // Label 1 is half new, half old: it matches neither recorded state, so restore writes nothing.
        let torn = try ImageSnapshot(scratch.url)
        #expect(throws: ImageError.self) { _ = try Self.restore(backup, into: scratch.url) }
        #expect(try torn.isUnchanged())
        // Finish the edit (its own backup goes elsewhere), then the first backup undoes it all.
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: scratch.directory.file("rerun.backup"))
        #expect(try Self.restore(backup, into: scratch.url) == .restored(labels: 4))
        #expect(try original.isUnchanged())
    }

    /// The writes of one label in this edit: only the changed blocks of a config area are written, here two runs
    /// (the blocks of the nvlist from the first change on, and the block holding the checksum).
    static let writesPerLabel = 2

    static func crashingEdit(_ url: URL, after writes: Int, _ kind: CrashPoint.Kind, backup: URL) throws {
        let crash = CrashPoint(after: writes, kind)
        let targets = try LibraryEdit.targets([url]).map {
            EditTarget(image: FaultInjectingImage($0.image, crash: crash), region: $0.region)
        }
        let plan = try LabelWriter.plan(targets, edit: Self.edit("/xpvd/xdf@51712:a"))
        #expect(throws: LabelWriteError.self) { _ = try LabelWriter.apply(plan, to: targets, backupPath: backup.path) }
    }

    /// Writes the backup of `plan` (made from `targets`) as version 1 did: the SHA-256 of each whole edited label.
    static func writeVersion1(_ plan: LabelEditPlan, _ targets: [EditTarget], to url: URL) throws {
        let entries = try zip(targets, plan.members).map { t, member in
            let before = try LeafRanges.wholeLabels(offset: t.region.offset, size: t.region.size).map { r in
                try t.image.read(at: UInt64(r.lowerBound), count: r.count)
            }
            let after = before.indices.map { i -> [UInt8] in
                var label = before[i]
                if let area = member.labels.first(where: { $0.index == i })?.newConfigArea {
                    label.replaceSubrange(LabelLayout.configOffset..<(LabelLayout.configOffset + area.count), with: area)
                }
                return label
            }
            return LabelBackup.Entry(path: t.image.path, imageSize: t.image.size, region: t.region, before: before, after: after)
        }
        try LabelBackup(entries: entries).write(to: url.path)
    }

    static func firstLine(_ url: URL) throws -> String {
        String(decoding: try Data(contentsOf: url).prefix { $0 != 10 }, as: UTF8.self)
    }

    @Test("a version 1 backup (digests of the whole edited labels) is still read: it restores exactly, names itself, refuses a changed image")
    func version1Backups() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let v1 = scratch.directory.file("v1.backup"), v2 = scratch.directory.file("v2.backup")
        let targets = try LibraryEdit.targets([scratch.url])
        let plan = try LabelWriter.plan(targets, edit: Self.edit("/xpvd/xdf@51712:a"))
        try Self.writeVersion1(plan, targets, to: v1)
        #expect(try Self.firstLine(v1) == LabelBackup.magicLineV1)
        _ = try LabelWriter.apply(plan, to: targets, backupPath: nil)
        let edited = try ImageSnapshot(scratch.url)
        let file = try ImageFile(path: scratch.url.path)
        #expect(LabelBackup.backup(thatWrote: file, among: [v1.path]) == v1.path)

        // A second edit (backed up as version 2): the version 1 backup no longer matches and is refused.
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51728:a"), backup: v2)
        #expect(try Self.firstLine(v2) == LabelBackup.magicLine)
        #expect(LabelBackup.backup(thatWrote: file, among: [v1.path]) == nil)
        #expect(LabelBackup.backup(thatWrote: file, among: [v1.path, v2.path]) == v2.path)
        let changed = try ImageSnapshot(scratch.url)
        let error = #expect(throws: ImageError.self) { _ = try Self.restore(v1, into: scratch.url) }
        #expect(error?.message.contains("changed since") == true, "\(String(describing: error))")
        #expect(try changed.isUnchanged(), "a refused restore wrote bytes")

        // Undone in order, version 2 then version 1: the original bytes.
        #expect(try Self.restore(v2, into: scratch.url) == .restored(labels: 4))
        #expect(try edited.isUnchanged())
        #expect(try Self.restore(v1, into: scratch.url) == .restored(labels: 4))
        #expect(try original.isUnchanged())
    }

    @Test("a version 2 backup refuses a label changed since the edit, outside its config area or inside it", arguments: [
        LabelLayout.configOffset - 1, LabelLayout.configOffset + 100, LabelLayout.configOffset + LabelLayout.configSize + 5,
    ])
    func version2Identity(at: Int) throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let backup = scratch.directory.file("kvm.backup")
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: backup)
        #expect(try Self.firstLine(backup) == LabelBackup.magicLine)
        #expect(try LabelBackup(contentsOf: backup.path).entries[0].afterConfigChecksums?.count == 4)
        // One byte of label 1 changed: the boot header before the config area, the config nvlist (its
        // embedded checksum left as it was), an uberblock slot.
        let file = try ImageFile(path: scratch.url.path, mode: .readWrite)
        let offset = LabelLayout.labelOffset(1, vdevSize: file.size) + UInt64(at)
        var byte = try file.read(at: offset, count: 1)
        byte[0] ^= 0x40
        try file.write(byte, at: offset)
        try file.synchronize()
        let changed = try ImageSnapshot(scratch.url)
        let error = #expect(throws: ImageError.self) { _ = try Self.restore(backup, into: scratch.url) }
        #expect(error?.message.contains("label 1 has changed since") == true, "\(String(describing: error))")
        #expect(try changed.isUnchanged(), "a refused restore wrote bytes")
        #expect(LabelBackup.backup(thatWrote: file, among: [backup.path]) == nil)
    }

    @Test("a backup is never written over an existing file")
    func backupNeverOverwrites() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let image = scratch.url.path
        // The default path: IMAGE.zlabel-backup, then -1, -2, … past every existing one.
        #expect(LabelWriter.defaultBackupPath(for: image) == image + ".zlabel-backup")
        try Data("mine".utf8).write(to: URL(fileURLWithPath: image + ".zlabel-backup"))
        try Data("mine too".utf8).write(to: URL(fileURLWithPath: image + ".zlabel-backup-1"))
        #expect(LabelWriter.defaultBackupPath(for: image) == image + ".zlabel-backup-2")

        // An explicit backup path that exists is refused before the image is touched.
        let existing = scratch.directory.file("precious.backup")
        try Data("an older backup".utf8).write(to: existing)
        let snapshot = try ImageSnapshot(scratch.url)
        let error = #expect(throws: ImageError.self) {
            _ = try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: existing)
        }
        #expect(error?.message.contains("already exists") == true, "\(String(describing: error))")
        #expect(try Data(contentsOf: existing) == Data("an older backup".utf8), "the existing backup was overwritten")
        #expect(try snapshot.isUnchanged(), "the image was written although its backup could not be saved")
        #expect(try Data(contentsOf: URL(fileURLWithPath: image + ".zlabel-backup")) == Data("mine".utf8))
    }

    @Test("the backup leaves its all-zero blocks unwritten (holes), reads back byte for byte, and restores exactly")
    func sparseBackup() throws {
        // The writer alone: buffers whose zero and non-zero bytes fall on, across and between block boundaries.
        let dir = try TemporaryDirectory()
        var pieces: [[UInt8]] = [Array("a header line\n".utf8), [UInt8](repeating: 0, count: 10_000),
                                 [UInt8](repeating: 0, count: 3 * LabelBackup.sparseBlockSize), [UInt8](repeating: 0, count: 9_000)]
        pieces[1][5_000] = 1
        pieces[3][8_999] = 0xFF
        pieces[3][0] = 7
        let path = dir.file("pieces").path
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0)
        #expect(LabelBackup.writeSkippingZeroBlocks(fd, pieces) == nil)
        close(fd)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == pieces.flatMap { $0 })

        // A real backup: most of it is holes, and it restores the original bytes exactly.
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let backup = scratch.directory.file("kvm.backup")
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: backup)
        var info = stat()
        #expect(stat(backup.path, &info) == 0)
        #expect(info.st_size > 4 * 256 * 1024)
        #expect(Int(info.st_blocks) * 512 < Int(info.st_size) / 2, "allocated \(info.st_blocks * 512) of \(info.st_size) bytes")
        let saved = try LabelBackup(contentsOf: backup.path)
        #expect(saved.entries[0].before == LeafRanges.wholeLabels(size: 64 << 20).map { [UInt8](original[$0]) })
        #expect(try Self.restore(backup, into: scratch.url) == .restored(labels: 4))
        #expect(try original.isUnchanged())
    }

    @Test("a damaged backup file is rejected")
    func damagedBackup() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let backup = scratch.directory.file("kvm.backup")
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: backup)
        var bytes = try Data(contentsOf: backup)
        bytes[bytes.count - 1000] ^= 0xFF
        try bytes.write(to: backup)
        #expect(throws: ImageError.self) { _ = try LabelBackup(contentsOf: backup.path) }
        try Data("zlabel label backup v1\n{}\n".utf8).write(to: backup)
        #expect(throws: ImageError.self) { _ = try LabelBackup(contentsOf: backup.path) }
    }

    @Test("a backup records when it was made, in UTC, as Date's ISO 8601 format style prints it")
    func creationTime() throws {
        // The epoch, leap days (2000 is a leap year, 2100 is not), a year past 2038, the last second of a
        // century, and a day in every month of two years: computed by arithmetic, they must read as Foundation
        // writes them.
        var samples: [Int64] = [0, 59, 86_399, 86_400, 951_782_400, 951_868_799, 2_208_988_799, 4_102_444_799,
                                4_107_542_400, 1_764_936_000]
        for month: Int64 in 0..<24 { samples.append(1_704_067_200 + month * 2_595_661) }  // 30 days, 1:01:01 apart
        for seconds in samples {
            #expect(LabelBackup.utcTimestamp(seconds)
                        == Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601), "\(seconds)")
        }
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let backup = scratch.directory.file("kvm.backup")
        let before = Date().timeIntervalSince1970.rounded(.down)
        try LibraryEdit.apply([scratch.url], Self.edit("/xpvd/xdf@51712:a"), backup: backup)
        let after = Date().timeIntervalSince1970.rounded(.up)
        let bytes = try Data(contentsOf: backup)
        let lines = bytes.split(separator: 10, maxSplits: 2)
        let header = try JSONSerialization.jsonObject(with: Data(lines[1])) as? [String: Any]
        let created = try #require(header?["created"] as? String)
        let when = try #require(try? Date(created, strategy: .iso8601), "created: \(created)").timeIntervalSince1970
        #expect(before <= when && when <= after, "created \(created) is not the time of the edit")
    }
}

import Foundation
import NVList
import Testing
import TestSupport
import ZFSImage
import ZFSLabel

/// Issue 3, proof 2 and 3: after every edit, real ZFS and GRUB accept the labels, all four labels carry the new
/// values with valid checksums, and no byte outside the four config areas has changed.
@Suite("Label edits judged by real ZFS and GRUB")
struct LabelEditOracleTests {
    static let xenPath = "/dev/dsk/c2t0d0s0"
    static let xenPhysPath = "/xpvd/xdf@51712:a"
    static let xenDevid = "id1,xdf@AXEN51712_________/a"

    /// One edit of one pool: which images, which leaf, what to set, and how hard to check.
    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        /// Fixture images given to the edit (all members unless the case says otherwise).
        var images: [String]
        /// Index of the edited leaf in `vdev_tree` order; nil: the pool's only leaf.
        var child: Int?
        var path: String?
        var physPath: String?
        var devid: String?
        var bigEndian = false
        /// Run zdb-check's full mode (`zdb -bc` and each label alone) rather than the fast one.
        var full = false
        /// GRUB checks: nil when GRUB 2 gives no bootpath for this pool (raidz), else the partition of hd0.
        var grub: GrubCheck?
        var testDescription: String { label }
    }

    struct GrubCheck: Sendable {
        var partition: String?
    }

    static let cases: [Case] = [
        Case(label: "single disk, v5000 (full check)", images: ["rpool-kvm.img"], path: xenPath, physPath: xenPhysPath,
             devid: xenDevid, full: true, grub: GrubCheck()),
        Case(label: "pool version 28, ashift 12", images: ["rpool-v28.img"], physPath: "/xpvd/xdf@51728:a",
             devid: "id1,xdf@v28/a", grub: GrubCheck()),
        Case(label: "2-way mirror, both members, child 0 (full check)", images: ["rpool-mirror-0.img", "rpool-mirror-1.img"],
             child: 0, path: xenPath, physPath: xenPhysPath, devid: xenDevid, full: true, grub: GrubCheck()),
        Case(label: "raidz1 of 3, all members, child 2", images: ["tank-raidz-0.img", "tank-raidz-1.img", "tank-raidz-2.img"],
             child: 2, path: "/dev/dsk/c2t2d0s0", physPath: "/xpvd/xdf@51744:a"),
        Case(label: "big-endian v15 single vdev (full check)", images: ["zfs-pool-v15.dat"], path: "/dev/dsk/c9t0d0s0",
             physPath: "/xpvd/xdf@51712:a", devid: "id1,sd@v15/a", bigEndian: true, full: true),
        Case(label: "big-endian v2 3-way mirror, child 1",
             images: ["zfs-pool-v2mirror1.dat", "zfs-pool-v2mirror2.dat", "zfs-pool-v2mirror3.dat"], child: 1,
             path: "/var/tmp/renamed-mirror-member-2.dat", bigEndian: true),
        Case(label: "GPT whole disk, pool in p1", images: ["disk-gpt.img"], path: xenPath, physPath: xenPhysPath,
             devid: xenDevid, grub: GrubCheck(partition: "gpt1")),
        Case(label: "MBR + VTOC whole disk, pool in s0", images: ["disk-vtoc.img"], path: xenPath, physPath: xenPhysPath,
             devid: xenDevid, grub: GrubCheck()),
    ]

    @Test("an edit passes every oracle", .oracle(.zlabelJSON, .zdbCheck, .grub, .zfs23), arguments: cases)
    func editPassesOracles(_ c: Case) throws {
        let fixtures = try c.images.map(Fixture.named)
        let scratch = try Fixture.scratchCopy(c.images)
        let snapshots = try scratch.urls.map(ImageSnapshot.init)
        let devices = zip(scratch.urls, fixtures).map { Oracle.Device($0, fixture: $1) }
        let guids = try LibraryEdit.leafGuids(devices[0].url)
        let guid = c.child.map { guids[$0] } ?? guids[0]
        // What the edited leaf held before, for the keys the case leaves alone.
        let before = try #require(try Oracle.zlabelJSON(devices[0]).labels[0].config)
        let oldNode = try #require(EditProof.leafNode(before, guid: guid))

        var edit = LeafEdit(leaf: c.child == nil ? .automatic : .guid(guid))
        if let v = c.path { edit.path = .set(NVString(v)) }
        if let v = c.physPath { edit.physPath = .set(NVString(v)) }
        if let v = c.devid { edit.devid = .set(NVString(v)) }
        let (plan, report) = try LibraryEdit.apply(scratch.urls, edit)
        #expect(report.writes.count == 4 * c.images.count)
        #expect(plan.notes.isEmpty, "every member was given: \(plan.notes)")

        let expected: EditProof.Expected = [
            ("path", c.path ?? oldNode["path"]?.string),
            ("phys_path", c.physPath ?? oldNode["phys_path"]?.string),
            ("devid", c.devid ?? oldNode["devid"]?.string),
        ]
        for (device, fixture) in zip(devices, fixtures) {
            let dump = try EditProof.labelsHold(device, leaf: guid, expected, bigEndian: c.bigEndian)
            // Exactly the requested pairs changed: the rest of the config is as it was, txg included.
            let after = try #require(dump.labels[0].config)
            let original = try #require(try Oracle.zlabelJSON(Oracle.Device(try fixture.url(), fixture: fixture)).labels[0].config)
            #expect(after.keys == original.keys)
            #expect(after["txg"] == original["txg"])
            #expect(after["guid"] == original["guid"] && after["pool_guid"] == original["pool_guid"])
            #expect(dump.labels.map(\.bestUberblock?.txg) == (try Oracle.zlabelJSON(Oracle.Device(try fixture.url(), fixture: fixture))).labels.map(\.bestUberblock?.txg))
        }
        for (snapshot, fixture) in zip(snapshots, fixtures) {
            let areas = LeafRanges.configAreas(offset: fixture.partition?.offset ?? 0, size: fixture.partition?.size ?? fixture.size)
            try EditProof.onlyChanged(areas, since: snapshot)
        }
        try EditProof.imports(devices, full: c.full)
        if let grub = c.grub {
            let newPhys = try #require(c.physPath)
            // GRUB opens a GPT partition by name; a VTOC slice only as a byte range (ZFS-ORACLE.md §4).
            let grubDevices = grub.partition == nil ? devices : scratch.urls.map { Oracle.Device($0) }
            try EditProof.grubReads(grubDevices, partition: grub.partition, bootpath: newPhys, diskdevid: c.devid ?? "")
        }
        if fixtures.allSatisfy(\.isBareVdev) && !c.bigEndian {
            for url in scratch.urls { try EditProof.zhackFindsNothingToRepair(url) }
        }
    }

    @Test("removing devid, hostid and hostname: GRUB then gives no bootpath, ZFS still imports",
          .oracle(.zlabelJSON, .zdbCheck, .grub))
    func removals() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let snapshot = try ImageSnapshot(scratch.url)
        let guid = try LibraryEdit.leafGuids(scratch.url)[0]
        var edit = LeafEdit()
        edit.physPath = .set(NVString(Self.xenPhysPath))
        edit.devid = .remove
        edit.removeHostid = true
        edit.removeHostname = true
        let (plan, _) = try LibraryEdit.apply([scratch.url], edit)
        #expect(plan.members[0].diff.map(\.path).sorted() == ["hostid", "hostname", "vdev_tree.devid", "vdev_tree.phys_path"])

        let device = Oracle.Device(scratch.url)
        try EditProof.labelsHold(device, leaf: guid, [("phys_path", Self.xenPhysPath), ("devid", nil),
                                                      ("path", "/dev/dsk/c1t0d0s0")],
                                 absentTopLevel: ["hostid", "hostname"])
        try EditProof.onlyChanged(LeafRanges.configAreas(size: 64 << 20), since: snapshot)
        try EditProof.imports([device], full: false)
        // GRUB 2 drops bootpath and diskdevid unless the leaf has both phys_path and devid.
        try EditProof.grubReads([device], bootpath: "", diskdevid: "")
    }

    @Test("editing back to the original values restores the original bytes exactly")
    func roundTripIsExact() throws {
        // The config areas are re-encoded as libnvpair encodes them and zero-filled, so undoing the values by a
        // second edit (not by restore) must give the bytes real ZFS wrote.
        for name in ["rpool-kvm.img", "zfs-pool-v15.dat"] {
            let scratch = try Fixture.scratchCopy(name)
            let snapshot = try ImageSnapshot(scratch.url)
            let leaf = try #require(try LibraryEdit.labels(scratch.url).config?.vdevLeaves.first)
            var there = LeafEdit()
            there.path = .set("/dev/dsk/c2t0d0s0")
            there.physPath = .set("/xpvd/xdf@51712:a")
            try LibraryEdit.apply([scratch.url], there)
            #expect(try !snapshot.isUnchanged())
            var back = LeafEdit()
            back.path = .set(try #require(leaf.path))
            back.physPath = leaf.physPath.map(LeafEdit.Change.set) ?? .remove
            try LibraryEdit.apply([scratch.url], back)
            let change = try snapshot.firstChange()
            #expect(change == nil, "\(name): differs at byte \(change ?? -1) after the round trip")
        }
    }

    @Test("an edit that changes nothing writes nothing")
    func noOpEdit() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let snapshot = try ImageSnapshot(scratch.url)
        let backups = try TemporaryDirectory(prefix: "zlabel-backup")
        var edit = LeafEdit()
        edit.physPath = .set("/pci@0,0/pci1af4,2@4/blkdev@0,0:a")  // what it already is
        let (plan, report) = try LibraryEdit.apply([scratch.url], edit, backup: backups.file("b"))
        #expect(!plan.writesAnything)
        #expect(plan.members[0].labels.allSatisfy { $0.action == .keep })
        #expect(report.writes.isEmpty && report.backup == nil)
        #expect(try snapshot.isUnchanged())
        #expect(!FileManager.default.fileExists(atPath: backups.file("b").path))
    }

    @Test("a damaged label is written afresh; only the four labels change", .oracle(.zlabelJSON, .zdbCheck, .labelTool))
    func damagedLabelWrittenAfresh() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        // Label 1's nvlist no longer unpacks (its encoding byte is flipped); label 2 fails its checksum only.
        try Oracle.flipByte(in: scratch.url, label: 1, at: 0x4000)
        try Oracle.flipByte(in: scratch.url, label: 2, at: 0x5000)
        let damaged = try Oracle.zlabelJSON(scratch.url)
        #expect(damaged.labels.map(\.isValid) == [true, false, false, true])
        #expect(damaged.labels[1].unpacked == false)
        let snapshot = try ImageSnapshot(scratch.url)
        let guid = try LibraryEdit.leafGuids(scratch.url)[0]

        var edit = LeafEdit()
        edit.physPath = .set(NVString(Self.xenPhysPath))
        edit.devid = .set(NVString(Self.xenDevid))
        let targets = try LibraryEdit.targets([scratch.url])
        let plan = try LabelWriter.plan(targets, edit: edit)
        let actions = plan.members[0].labels.map(\.action)
        #expect(actions[0] == .rewrite && actions[3] == .rewrite)
        guard case .writeFresh(let why1) = actions[1], case .writeFresh(let why2) = actions[2] else {
            Issue.record("labels 1 and 2 should be written afresh: \(actions)")
            return
        }
        #expect(why1.contains("unreadable") && why2.contains("checksum"), "\(why1) / \(why2)")
        #expect(plan.summary.contains("label 1: write afresh") && plan.summary.contains("label 2: write afresh"), "\(plan.summary)")
        _ = try LabelWriter.apply(plan, to: targets, backupPath: nil)

        let device = Oracle.Device(scratch.url)
        try EditProof.labelsHold(device, leaf: guid, [("phys_path", Self.xenPhysPath), ("devid", Self.xenDevid)])
        try EditProof.onlyChanged(LeafRanges.wholeLabels(size: 64 << 20), since: snapshot, what: "the four labels")
        try EditProof.imports([device], full: true)
    }

    @Test("a truncated mirror half: the missing label 2 is written afresh and the pool imports",
          .oracle(.zlabelJSON, .zdbCheck))
    func truncatedMirrorHalf() throws {
        let names = ["zfs-broken-mirror1.dat", "zfs-broken-mirror2.dat"]
        let scratch = try Fixture.scratchCopy(names)
        let snapshots = try scratch.urls.map(ImageSnapshot.init)
        let guids = try LibraryEdit.leafGuids(scratch.urls[1])
        var edit = LeafEdit(leaf: .guid(guids[0]))
        edit.path = .set("/dev/dsk/c3t0d0s0")
        let targets = try LibraryEdit.targets(scratch.urls)
        let plan = try LabelWriter.plan(targets, edit: edit)
        guard case .writeFresh = plan.members[0].labels[2].action else {
            Issue.record("label 2 of the short half should be written afresh: \(plan.summary)")
            return
        }
        #expect(plan.summary.contains("label 2: write afresh"))
        #expect(plan.members[1].labels.allSatisfy { $0.action == .rewrite })
        _ = try LabelWriter.apply(plan, to: targets, backupPath: nil)

        for (url, fixture) in zip(scratch.urls, try names.map(Fixture.named)) {
            let dump = try Oracle.zlabelJSON(url)
            #expect(dump.labelsValid == 4, "\(dump.result)")
            for label in dump.labels {
                let config = try #require(label.config)
                #expect(EditProof.leafNode(config, guid: guids[0])?["path"]?.string == "/dev/dsk/c3t0d0s0")
                #expect(label.byteSwapped)
            }
            let snapshot = try #require(snapshots.first { $0.url == url })
            try EditProof.onlyChanged(LeafRanges.wholeLabels(size: fixture.size), since: snapshot, what: "the four labels")
        }
        // Label 2 of the short half has no uberblock ring (ZFS never wrote one there), so "each label alone"
        // cannot hold for it; the pool as a whole must import.
        let result = try Oracle.zdbCheck(scratch.urls.map { Oracle.Device($0) }, fast: true, isolation: false)
        #expect(result.succeeded, "\(result)")
    }
}

import Foundation
import Testing
import TestSupport
import ZLabel
#if canImport(Glibc)
import Glibc
#endif

/// Issue 3 through the command line: `zlabel set`, `restore` and `repair-checksums` as a user runs them, judged
/// by real ZFS (libzpool, zdb, zhack 2.3) and GRUB 2.
@Suite("zlabel set, restore and repair-checksums")
struct SetCommandTests {
    static let xenPath = "/dev/dsk/c2t0d0s0"
    static let xenPhysPath = "/xpvd/xdf@51712:a"

    // MARK: golden pair

    @Test("golden pair: zlabel set on rpool-kvm.img gives the labels real ZFS wrote in rpool-kvm-to-xen.img",
          .oracle(.zlabelJSON, .zdbCheck, .grub, .zfs23))
    func goldenPair() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let snapshot = try ImageSnapshot(scratch.url)
        let backup = scratch.directory.file("golden.backup")
        let run = try ZLabelCLI.run(["set", scratch.url.path, "--path", Self.xenPath, "--phys-path", Self.xenPhysPath,
                                     "--backup", backup.path])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.contains("wrote 4 labels"), "\(run)")

        let ours = try Oracle.zlabelJSON(scratch.url)
        let golden = try Oracle.zlabelJSON(try Fixture.image("rpool-kvm-to-xen.img"))
        let original = try Oracle.zlabelJSON(try Fixture.image("rpool-kvm.img"))
        #expect(ours.labelsValid == 4, "\(ours.result)")
        for i in 0..<4 {
            let config = try #require(ours.labels[i].config)
            let expected = try #require(golden.labels[i].config)
            // every pair but txg equal, in the same order, as libnvpair decodes them
            #expect(withoutTXG(config) == withoutTXG(expected), "label \(i):\nours   \(config)\ngolden \(expected)")
            #expect(config.keys == expected.keys)
            // and txg is the one the labels had: an offline edit never moves it
            #expect(config["txg"] == original.labels[i].config?["txg"])
            #expect(config["txg"] != expected["txg"], "the golden pair should differ in txg")
        }
        // The same, by our own decoder: NVLists equal but for txg.
        let mine = try #require(try labels(scratch.url).config)
        let theirs = try #require(try labels(try Fixture.image("rpool-kvm-to-xen.img")).config)
        var a = mine, b = theirs
        a["txg"] = nil
        b["txg"] = nil
        #expect(a == b)

        #expect(try snapshot.firstChange(outside: configAreas(size: 64 << 20)) == nil)
        let check = try Oracle.zdbCheck([Oracle.Device(scratch.url)],
                                        expect: ["path": Self.xenPath, "phys_path": Self.xenPhysPath])
        #expect(check.succeeded, "\(check)")
        let grub = try Oracle.grubBootpath([Oracle.Device(scratch.url)])
        #expect(grub.bootpath == Self.xenPhysPath && grub.diskdevid == "id1,kdev@AQM00001___________/a", "\(grub.result)")
        let zdb23 = try Oracle.zdb23Label(scratch.url)
        #expect(zdb23.succeeded && !zdb23.stdoutText.contains("Bad label cksum"), "\(zdb23)")
    }

    // MARK: mirrors

    @Test("a mirror given both members: both are edited consistently", .oracle(.zlabelJSON, .zdbCheck, .grub))
    func mirrorBothMembers() throws {
        let scratch = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        let snapshots = try scratch.urls.map(ImageSnapshot.init)
        let leaves = try #require(try labels(scratch.urls[0]).config).vdevLeaves
        let run = try ZLabelCLI.run(["set"] + scratch.urls.map(\.path) + [
            "--vdev", leaves[0].path?.description ?? "", "--phys-path", Self.xenPhysPath, "--devid", "id1,xdf@mirror0/a",
            "--backup", scratch.directory.file("b").path,
        ])
        #expect(run.status == 0, "\(run)")
        #expect(!run.stdoutText.contains("still carry"), "\(run)")
        for url in scratch.urls {
            let dump = try Oracle.zlabelJSON(url)
            #expect(dump.labelsValid == 4, "\(dump.result)")
            for label in dump.labels {
                let children = label.config?[path: "vdev_tree.children"]?.array ?? []
                #expect(children.count == 2)
                #expect(children.first?["phys_path"]?.string == Self.xenPhysPath, "\(url.lastPathComponent) L\(label.index)")
                #expect(children.first?["devid"]?.string == "id1,xdf@mirror0/a")
                #expect(children.last?["phys_path"]?.string == leaves[1].physPath?.string, "the sibling keeps its own")
            }
        }
        for s in snapshots { #expect(try s.firstChange(outside: configAreas(size: 64 << 20)) == nil) }
        let check = try Oracle.zdbCheck(scratch.urls.map { Oracle.Device($0) }, expect: ["phys_path": Self.xenPhysPath], fast: true)
        #expect(check.succeeded, "\(check)")
        // GRUB 2 takes the first child with both keys: the one just edited.
        let grub = try Oracle.grubBootpath(scratch.urls.map { Oracle.Device($0) })
        #expect(grub.bootpath == Self.xenPhysPath && grub.diskdevid == "id1,xdf@mirror0/a", "\(grub.result)")
    }

    @Test("a mirror given one member: it is edited, and the output says the other keeps the old value",
          .oracle(.zlabelJSON, .zdbCheck))
    func mirrorOneMember() throws {
        let scratch = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        let other = try ImageSnapshot(scratch.urls[1])
        let leaves = try #require(try labels(scratch.urls[0]).config).vdevLeaves
        let run = try ZLabelCLI.run(["set", scratch.urls[0].path, "--vdev", String(leaves[0].guid),
                                     "--phys-path", Self.xenPhysPath, "--backup", scratch.directory.file("b").path])
        #expect(run.status == 0, "\(run)")
        let out = run.stdoutText + run.stderrText
        #expect(out.contains("still carry the old value"), "\(run)")
        #expect(out.contains(String(leaves[1].guid)), "the note names the member not given\n\(run)")
        let dump = try Oracle.zlabelJSON(scratch.urls[0])
        #expect(dump.labelsValid == 4)
        #expect(dump.labels.allSatisfy { $0.config?[path: "vdev_tree.children[0].phys_path"]?.string == Self.xenPhysPath })
        #expect(try other.firstChange() == nil, "the member not given was written")
        // Real ZFS still imports the pool from both members (same txg, same guids).
        let check = try Oracle.zdbCheck(scratch.urls.map { Oracle.Device($0) }, fast: true, isolation: false)
        #expect(check.succeeded, "\(check)")
    }

    @Test("big-endian 3-way mirror: all members edited, labels stay big-endian, zdb imports",
          .oracle(.zlabelJSON, .zdbCheck))
    func bigEndianMirror() throws {
        let scratch = try Fixture.scratchCopy("zfs-pool-v2mirror1.dat", "zfs-pool-v2mirror2.dat", "zfs-pool-v2mirror3.dat")
        let leaves = try #require(try labels(scratch.urls[0]).config).vdevLeaves
        let run = try ZLabelCLI.run(["set"] + scratch.urls.map(\.path) + [
            "--vdev", String(leaves[2].guid), "--path", "/dev/dsk/c5t2d0s0", "--phys-path", "/xpvd/xdf@51760:a",
            "--devid", "id1,sd@v2mirror3/a", "--backup", scratch.directory.file("b").path,
        ])
        #expect(run.status == 0, "\(run)")
        for url in scratch.urls {
            let dump = try Oracle.zlabelJSON(url)
            #expect(dump.labelsValid == 4, "\(dump.result)")
            for label in dump.labels {
                #expect(label.byteSwapped, "\(url.lastPathComponent) L\(label.index) is no longer big-endian")
                let child = label.config?[path: "vdev_tree.children[2]"]
                #expect(child?["path"]?.string == "/dev/dsk/c5t2d0s0")
                #expect(child?["phys_path"]?.string == "/xpvd/xdf@51760:a")
                #expect(child?["devid"]?.string == "id1,sd@v2mirror3/a")
            }
            // our decoder agrees, and sees the nvlist header still saying big-endian
            let ours = try labels(url)
            #expect(ours.labels.allSatisfy { $0.byteOrder == .big && $0.streamHeader?.hostByteOrder == .big })
        }
        let check = try Oracle.zdbCheck(scratch.urls.map { Oracle.Device($0) }, expect: ["path": "/dev/dsk/c5t2d0s0"])
        #expect(check.succeeded, "\(check)")
    }

    // MARK: whole disks

    @Test("a whole disk: the pool partition is found (GPT) or given as IMAGE@OFFSET:SIZE (VTOC)",
          .oracle(.zlabelJSON, .zdbCheck, .grub))
    func wholeDisks() throws {
        for name in ["disk-gpt-linux.img", "disk-vtoc.img"] {
            let fixture = try Fixture.named(name)
            let partition = try #require(fixture.partition)
            let scratch = try Fixture.scratchCopy(name)
            let snapshot = try ImageSnapshot(scratch.url)
            let argument = partition.scheme == .gpt ? scratch.url.path : "\(scratch.url.path)@\(partition.offset):\(partition.size)"
            let run = try ZLabelCLI.run(["set", argument, "--phys-path", Self.xenPhysPath, "--devid", "id1,xdf@disk/a",
                                         "--backup", scratch.directory.file("b").path])
            #expect(run.status == 0, "\(run)")
            let device = Oracle.Device(scratch.url, fixture: fixture)
            let dump = try Oracle.zlabelJSON(device)
            #expect(dump.labelsValid == 4, "\(dump.result)")
            #expect(dump.labels.allSatisfy { $0.config?[path: "vdev_tree.phys_path"]?.string == Self.xenPhysPath })
            #expect(try snapshot.firstChange(outside: configAreas(offset: partition.offset, size: partition.size)) == nil,
                    "\(name): bytes outside the pool's config areas changed")
            let check = try Oracle.zdbCheck([device], expect: ["phys_path": Self.xenPhysPath], fast: true, isolation: false)
            #expect(check.succeeded, "\(check)")
            let grub = try Oracle.grubBootpath(partition.grubPartition == nil ? [device] : [Oracle.Device(scratch.url)],
                                               partition: partition.grubPartition)
            #expect(grub.bootpath == Self.xenPhysPath && grub.diskdevid == "id1,xdf@disk/a", "\(grub.result)")
        }
    }

    // MARK: dry run and JSON

    @Test("--dry-run prints old and new values and the plan, and writes nothing")
    func dryRun() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let snapshot = try ImageSnapshot(scratch.url)
        let run = try ZLabelCLI.run(["set", scratch.url.path, "--phys-path", Self.xenPhysPath, "--remove-devid", "--dry-run"])
        #expect(run.status == 0, "\(run)")
        let out = run.stdoutText
        #expect(out.contains("'/pci@0,0/pci1af4,2@4/blkdev@0,0:a' -> '\(Self.xenPhysPath)'"), "\(out)")
        #expect(out.contains("'id1,kdev@AQM00001___________/a' -> (absent)"), "\(out)")
        for i in 0..<4 { #expect(out.contains("label \(i): rewrite"), "\(out)") }
        #expect(out.contains("write order"), "\(out)")
        #expect(try snapshot.firstChange() == nil)
        #expect(try siblings(of: scratch.url).isEmpty, "a dry run left a backup")

        let json = try ZLabelCLI.run(["set", scratch.url.path, "--phys-path", Self.xenPhysPath, "--dry-run", "--json"])
        #expect(json.status == 0, "\(json)")
        let doc = try ExactJSON.parse(json.stdout)
        #expect(doc[path: "members[0].changes[0].new"]?.string == Self.xenPhysPath, "\(json)")
        #expect(doc[path: "members[0].labels"]?.array?.count == 4)
        #expect(try snapshot.firstChange() == nil)
    }

    // MARK: refusals

    /// Runs `zlabel set` expecting a refusal: a non-zero status, a message, no byte of any image written and no
    /// backup file next to them.
    func expectRefusal(_ arguments: [String], images: [URL], status: Int32 = 3, message: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let snapshots = try images.map(ImageSnapshot.init)
        let before = try Set(images.flatMap(siblings))
        let run = try ZLabelCLI.run(["set"] + arguments)
        #expect(run.status == status, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderrText.contains(message), "\(run)", sourceLocation: sourceLocation)
        if status == 3 {
            #expect(run.stderrText.contains("refused, nothing written"), "\(run)", sourceLocation: sourceLocation)
        }
        for s in snapshots {
            let change = try s.firstChange()
            #expect(change == nil, "\(s.url.lastPathComponent) changed at byte \(change ?? -1)", sourceLocation: sourceLocation)
        }
        #expect(try Set(images.flatMap(siblings)) == before, "a backup file appeared", sourceLocation: sourceLocation)
    }

    @Test("refusals write zero bytes: active pool, ambiguous leaf, unknown leaf, bad values, different pools")
    func refusals() throws {
        let active = try Fixture.scratchCopy("unclean_export.dat")
        try expectRefusal([active.url.path, "--phys-path", Self.xenPhysPath], images: [active.url], message: "ACTIVE")
        let mirror = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        let paths = mirror.urls.map(\.path)
        try expectRefusal(paths + ["--phys-path", Self.xenPhysPath], images: mirror.urls, message: "--vdev")
        try expectRefusal(paths + ["--vdev", "12345", "--phys-path", Self.xenPhysPath], images: mirror.urls,
                          message: "no leaf with guid 12345")
        try expectRefusal(paths + ["--vdev", "/dev/dsk/c7t7d7s7", "--phys-path", Self.xenPhysPath], images: mirror.urls,
                          message: "no leaf with path")
        let guid = try #require(try labels(mirror.urls[0]).config?.vdevLeaves.first?.guid)
        try expectRefusal(paths + ["--vdev", String(guid), "--phys-path", String(repeating: "x", count: 1024)],
                          images: mirror.urls, message: "1024 bytes")
        let kvm = try Fixture.scratchCopy("rpool-kvm.img")
        try expectRefusal([kvm.url.path, mirror.urls[0].path, "--vdev", String(guid), "--phys-path", Self.xenPhysPath],
                          images: [kvm.url, mirror.urls[0]], message: "different pools")
        // The library's message names no flag; the command line adds the flags that are the remedy.
        try expectRefusal([kvm.url.path], images: [kvm.url], message: "nothing to change: no field to set or remove (give --phys-path")
        try expectRefusal(paths + ["--phys-path", Self.xenPhysPath], images: mirror.urls,
                          message: "choose one by its guid or path (--vdev GUID or --vdev PATH)")
        // --devid and --remove-devid together: a usage error, before any file is opened
        try expectRefusal([kvm.url.path, "--devid", "x", "--remove-devid"], images: [kvm.url], status: 64,
                          message: "exclude each other")
    }

    @Test("an image that cannot be opened for writing is refused, zero bytes written")
    func unwritableImage() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        // root ignores file modes, so make the file immutable (ext4, xfs, btrfs); as another user, chmod 0444.
        let root = geteuid() == 0
        if root {
            let made = try Run.run("chattr", ["+i", scratch.url.path])
            guard made.succeeded else {
                try Test.cancel("cannot make a file unwritable for root here (chattr +i failed: \(made.stderrText))")
            }
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: scratch.url.path)
        }
        defer { if root { _ = try? Run.run("chattr", ["-i", scratch.url.path]) } }
        try expectRefusal([scratch.url.path, "--phys-path", Self.xenPhysPath], images: [scratch.url], status: 2,
                          message: "cannot open for writing")
        // a dry run only reads, so it works on the same file
        let dry = try ZLabelCLI.run(["set", scratch.url.path, "--phys-path", Self.xenPhysPath, "--dry-run"])
        #expect(dry.status == 0, "\(dry)")
    }

    // MARK: backup and restore

    @Test("restore puts the original bytes back; backups next to the image never overwrite one another")
    func restoreRoundTrip() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try ImageSnapshot(scratch.url)
        let image = scratch.url.path
        let first = try ZLabelCLI.run(["set", image, "--phys-path", Self.xenPhysPath])
        #expect(first.status == 0, "\(first)")
        #expect(first.stdoutText.contains(image + ".zlabel-backup"), "\(first)")
        let afterFirst = try ImageSnapshot(scratch.url)
        let firstBackup = try Data(contentsOf: URL(fileURLWithPath: image + ".zlabel-backup"))

        let second = try ZLabelCLI.run(["set", image, "--phys-path", "/xpvd/xdf@51728:a", "--remove-devid"])
        #expect(second.status == 0, "\(second)")
        #expect(second.stdoutText.contains(image + ".zlabel-backup-1"), "\(second)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: image + ".zlabel-backup")) == firstBackup,
                "the second edit overwrote the first backup")
        let afterSecond = try ImageSnapshot(scratch.url)

        // The image changed since the first backup's edit: refused, nothing written.
        let refused = try ZLabelCLI.run(["restore", image, "--from", image + ".zlabel-backup"])
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.stderrText.contains("changed since"), "\(refused)")
        #expect(try afterSecond.firstChange() == nil)

        let undoSecond = try ZLabelCLI.run(["restore", image, "--from", image + ".zlabel-backup-1"])
        #expect(undoSecond.status == 0, "\(undoSecond)")
        #expect(try afterFirst.firstChange() == nil)
        let undoFirst = try ZLabelCLI.run(["restore", image, "--from", image + ".zlabel-backup"])
        #expect(undoFirst.status == 0, "\(undoFirst)")
        #expect(undoFirst.stdoutText.contains("restored 4 labels"), "\(undoFirst)")
        let cmp = try Run.run("cmp", [image, try Fixture.image("rpool-kvm.img").path])
        #expect(cmp.succeeded, "not the original bytes: \(cmp)")
        #expect(try original.firstChange() == nil)
    }

    @Test("--backup naming an existing file is refused; that file and the image stay as they were")
    func backupToExistingFile() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let existing = scratch.directory.file("older.backup")
        try Data("an older backup".utf8).write(to: existing)
        let snapshot = try ImageSnapshot(scratch.url)
        let run = try ZLabelCLI.run(["set", scratch.url.path, "--phys-path", Self.xenPhysPath, "--backup", existing.path])
        #expect(run.status != 0, "\(run)")
        #expect(try Data(contentsOf: existing) == Data("an older backup".utf8), "the existing backup was overwritten")
        #expect(try snapshot.firstChange() == nil, "the image was written")
    }

    // MARK: repair-checksums

    @Test("repair-checksums: L0 and L2 with a flipped byte in the unused tail, byte-identical to zhack 2.3",
          .oracle(.zfs23, .labelTool, .zlabelJSON))
    func repairChecksumsMatchesZhack() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        for label in [0, 2] { try Oracle.flipByte(in: scratch.url, label: label, at: 0x5000) }
        let theirs = scratch.directory.file("zhack.img")
        try Fixture.sparseCopy(from: scratch.url, to: theirs)
        #expect(try Oracle.zlabelJSON(scratch.url).labels.map(\.checksumValid) == [false, true, false, true])

        let run = try ZLabelCLI.run(["repair-checksums", scratch.url.path])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.components(separatedBy: "checksum recomputed").count - 1 == 2, "\(run)")
        let zhack = try Oracle.zhackRepairChecksums(theirs)
        #expect(zhack.status == 0, "\(zhack)")
        let cmp = try Run.run("cmp", [scratch.url.path, theirs.path])
        #expect(cmp.succeeded, "zlabel and zhack 2.3 differ: \(cmp)")
        #expect(try Oracle.zlabelJSON(scratch.url).labelsValid == 4)

        // Nothing left to repair: exit 1, nothing written.
        let snapshot = try ImageSnapshot(scratch.url)
        let again = try ZLabelCLI.run(["repair-checksums", scratch.url.path])
        #expect(again.status == 1, "\(again)")
        #expect(try snapshot.firstChange() == nil)
    }
}

// MARK: helpers


/// The four config areas of the leaf at `offset` of `size` bytes.
private func configAreas(offset: UInt64 = 0, size: UInt64) -> [Range<Int>] {
    (0..<LabelLayout.labelCount).map { i in
        let start = Int(offset + LabelLayout.labelOffset(i, vdevSize: size)) + LabelLayout.configOffset
        return start..<(start + LabelLayout.configSize)
    }
}

/// The labels of the (only) vdev in an image, by our own decoder.
private func labels(_ url: URL) throws -> VdevLabels {
    let file = try ImageFile(path: url.path)
    let region = try #require(try file.findVdevs().regions.first)
    return try file.readLabels(in: region)
}

/// Other files in the image's directory (backups appear there).
private func siblings(of url: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        .filter { $0 != url.lastPathComponent && $0.hasPrefix(url.lastPathComponent) }
}

private func withoutTXG(_ config: ExactJSON) -> ExactJSON {
    guard case .object(let members) = config else { return config }
    return .object(members.filter { $0.key != "txg" })
}

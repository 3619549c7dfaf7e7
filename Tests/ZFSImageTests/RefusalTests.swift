import Foundation
import NVList
import Testing
import TestSupport
import ZFSImage
import ZFSLabel

/// Issue 3, proof 5 (refusals): each preflight refusal is a clear error and writes zero bytes, to the image or to
/// a backup file.
@Suite("Edits refused before anything is written")
struct RefusalTests {
    /// Runs the whole library edit (plan, backup, write) and expects it refused with `code`, the images byte for
    /// byte as they were, and no backup file.
    @discardableResult
    static func expectRefused(
        _ urls: [URL], _ edit: LeafEdit, _ code: LabelEditError.Code, force: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> LabelEditError? {
        let snapshots = try urls.map(ImageSnapshot.init)
        let backups = try TemporaryDirectory(prefix: "zlabel-refusal")
        let backup = backups.file("backup")
        let error = #expect(throws: LabelEditError.self, sourceLocation: sourceLocation) {
            _ = try LibraryEdit.apply(urls, edit, force: force, backup: backup)
        }
        #expect(error?.code == code, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect(error.map { !$0.message.isEmpty } == true, sourceLocation: sourceLocation)
        for snapshot in snapshots {
            let change = try snapshot.firstChange()
            #expect(change == nil, "\(snapshot.url.lastPathComponent) changed at byte \(change ?? -1)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: backup.path), "a backup was written", sourceLocation: sourceLocation)
        return error
    }

    static func physPathEdit(_ value: String = "/xpvd/xdf@51712:a", leaf: LeafSelector = .automatic) -> LeafEdit {
        var edit = LeafEdit(leaf: leaf)
        edit.physPath = .set(NVString(value))
        return edit
    }

    @Test("an ACTIVE pool (left imported by the Linux module) is refused without --force, edited with it")
    func activePoolFixture() throws {
        let scratch = try Fixture.scratchCopy("unclean_export.dat")
        #expect(try LibraryEdit.labels(scratch.url).config?.uint64("state") == 0)
        let error = try Self.expectRefused([scratch.url], Self.physPathEdit(), .poolActive)
        #expect(error?.message.contains("ACTIVE") == true)
        #expect(error?.message.contains("force the edit") == true)
        #expect(error?.message.contains("--") == false, "a library error names no command-line flag")
        let (plan, report) = try LibraryEdit.apply([scratch.url], Self.physPathEdit(), force: true)
        #expect(report.writes.count == 4)
        #expect(try LibraryEdit.labels(scratch.url).config?.vdevLeaves.first?.physPath == "/xpvd/xdf@51712:a")
        #expect(plan.members[0].after.uint64("state") == 0, "--force edits the strings, not the state")
    }

    @Test("a pool whose labels say state 0 is refused: crafted from an exported pool")
    func activePoolCrafted() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        try CraftLabels.rewrite(scratch.url) { $0["state"] = .uint64(0) }
        let labels = try LibraryEdit.labels(scratch.url)
        #expect(labels.isHealthy && labels.config?.uint64("state") == 0)
        try Self.expectRefused([scratch.url], Self.physPathEdit(), .poolActive)
        // the control: the same image with state 1 is edited
        try CraftLabels.rewrite(scratch.url) { $0["state"] = .uint64(1) }
        try LibraryEdit.apply([scratch.url], Self.physPathEdit())
    }

    @Test("labels that disagree on the pool guid are refused", .oracle(.labelTool))
    func poolGuidDisagreement() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let poolGuid = try #require(try LibraryEdit.labels(scratch.url).config?.uint64("pool_guid"))
        // label-tool makes a copy whose every label names another pool; its label 1 replaces ours.
        let other = scratch.directory.file("other.img")
        try Fixture.sparseCopy(from: scratch.url, to: other)
        let replaced = try Oracle.labelTool(["replace-u64", other.path, String(poolGuid), String(poolGuid &+ 1)])
        #expect(replaced.succeeded, "\(replaced)")
        try Self.splice(label: 1, from: other, into: scratch.url)
        try FileManager.default.removeItem(at: other)
        let labels = try LibraryEdit.labels(scratch.url)
        #expect(labels.labels.allSatisfy { $0.status == .valid })
        #expect(labels.labels[1].config?.uint64("pool_guid") == poolGuid &+ 1)
        let error = try Self.expectRefused([scratch.url], Self.physPathEdit(), .guidDisagreement)
        #expect(error?.message.contains("pool_guid") == true, "\(String(describing: error))")
    }

    @Test("labels that disagree on the vdev guid are refused", .oracle(.labelTool))
    func vdevGuidDisagreement() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let guid = try #require(try LibraryEdit.labels(scratch.url).config?.uint64("guid"))
        let other = scratch.directory.file("other.img")
        try Fixture.sparseCopy(from: scratch.url, to: other)
        let replaced = try Oracle.labelTool(["replace-u64", other.path, String(guid), String(guid &+ 1)])
        #expect(replaced.succeeded, "\(replaced)")
        try Self.splice(label: 3, from: other, into: scratch.url)
        try FileManager.default.removeItem(at: other)
        try Self.expectRefused([scratch.url], Self.physPathEdit(leaf: .guid(guid)), .guidDisagreement)
    }

    @Test("images of two different pools are refused together")
    func differentPools() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img", "rpool-mirror-1.img")
        let guid = try LibraryEdit.leafGuids(scratch.urls[0])[0]
        try Self.expectRefused(scratch.urls, Self.physPathEdit(leaf: .guid(guid)), .guidDisagreement)
    }

    @Test("no valid label to start from (all four checksums broken) is refused", .oracle(.labelTool))
    func noValidLabel() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        for label in 0..<4 { try Oracle.flipByte(in: scratch.url, label: label, at: 0x5000) }
        #expect(try LibraryEdit.labels(scratch.url).labels.allSatisfy { $0.status == .checksumMismatch })
        try Self.expectRefused([scratch.url], Self.physPathEdit(), .noValidLabel)
    }

    @Test("a leaf that is not in the labels is refused, by guid and by path")
    func leafNotFound() throws {
        let scratch = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        try Self.expectRefused(scratch.urls, Self.physPathEdit(leaf: .guid(12345)), .leafNotFound)
        try Self.expectRefused(scratch.urls, Self.physPathEdit(leaf: .path("/dev/dsk/c9t9d9s9")), .leafNotFound)
    }

    @Test("a mirror without --vdev is ambiguous, with one member or both")
    func ambiguousLeaf() throws {
        let scratch = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        let error = try Self.expectRefused(scratch.urls, Self.physPathEdit(), .ambiguousLeaf)
        #expect(error?.message.contains("choose one by its guid") == true)
        #expect(error?.message.contains("--") == false, "a library error names no command-line flag")
        try Self.expectRefused([scratch.urls[1]], Self.physPathEdit(), .ambiguousLeaf)
    }

    @Test("values that are too long, empty or hold a NUL are refused; 1023 bytes is accepted")
    func invalidValues() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let error = try Self.expectRefused([scratch.url], Self.physPathEdit(String(repeating: "p", count: 1024)), .invalidValue)
        #expect(error?.message.contains("1024") == true)
        var devid = LeafEdit()
        devid.devid = .set(NVString(String(repeating: "d", count: 2000)))
        try Self.expectRefused([scratch.url], devid, .invalidValue)
        try Self.expectRefused([scratch.url], Self.physPathEdit(""), .invalidValue)
        // a NUL cannot even be put into a value: an nvlist string holds none
        #expect(NVString(validating: "/xpvd/xdf@51712:a\u{0}x") == nil)
        #expect(NVString(bytes: Array("/xpvd/xdf@51712:a".utf8) + [0, 0x78]) == nil)
        var removePath = LeafEdit()
        removePath.path = .remove
        try Self.expectRefused([scratch.url], removePath, .invalidValue)
        try Self.expectRefused([scratch.url], LeafEdit(), .emptyEdit)
        // the boundary is accepted (planned only; writing it is the other suites' business)
        let longest = String(repeating: "p", count: LeafEdit.maximumStringLength)
        let plan = try LabelWriter.plan(try LibraryEdit.targets([scratch.url]), edit: Self.physPathEdit(longest))
        #expect(plan.members[0].after.vdevLeaves.first?.physPath == NVString(longest))
    }

    @Test("an edited config that does not fit in a label is refused")
    func doesNotFit() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        // Pad the config (an extra pair, as a future ZFS might add) until fewer than 100 bytes are free.
        try CraftLabels.rewrite(scratch.url) { config in
            let base = config.encodedSize
            config.pairs.append(NVPair("com.example:padding", .byteArray([])))
            var n = LabelLayout.configCapacity - base - 64
            config["com.example:padding"] = .byteArray([UInt8](repeating: 0xA5, count: n))
            n += LabelLayout.configCapacity - config.encodedSize - 96
            config["com.example:padding"] = .byteArray([UInt8](repeating: 0xA5, count: n))
        }
        let labels = try LibraryEdit.labels(scratch.url)
        #expect(labels.isHealthy)
        let packed = try #require(labels.labels[0].packedSize)
        #expect(packed > LabelLayout.configCapacity - 100 && packed <= LabelLayout.configCapacity, "\(packed)")
        let error = try Self.expectRefused([scratch.url], Self.physPathEdit(String(repeating: "x", count: 1000)), .doesNotFit)
        #expect(error?.message.contains(String(LabelLayout.configCapacity)) == true)
        // the control: a value of the same length as the old one still fits
        try LibraryEdit.apply([scratch.url], Self.physPathEdit("/pci@0,0/pci1af4,2@5/blkdev@0,0:a"))
    }

    @Test("an image that cannot be written is refused before any write")
    func readOnlyImage() throws {
        let original = try Data(contentsOf: try Fixture.image("rpool-kvm.img"))
        let memory = MemoryImage([UInt8](original), path: "rpool-kvm.img", writable: false)
        let target = EditTarget(image: memory, region: memory.wholeImage)
        let plan = try LabelWriter.plan([target], edit: Self.physPathEdit())
        #expect(plan.writesAnything)
        let backups = try TemporaryDirectory(prefix: "zlabel-refusal")
        let error = #expect(throws: ImageError.self) {
            _ = try LabelWriter.apply(plan, to: [target], backupPath: backups.file("backup").path)
        }
        #expect(error?.code == .open, "\(String(describing: error))")
        #expect(memory.bytes == [UInt8](original))
        #expect(!FileManager.default.fileExists(atPath: backups.file("backup").path))

        // A file opened read-only is refused the same way.
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let snapshot = try ImageSnapshot(scratch.url)
        let file = try ImageFile(path: scratch.url.path, mode: .readOnly)
        let readOnly = EditTarget(image: file, region: file.wholeImage)
        #expect(throws: ImageError.self) {
            _ = try LabelWriter.apply(try LabelWriter.plan([readOnly], edit: Self.physPathEdit()), to: [readOnly], backupPath: nil)
        }
        #expect(try snapshot.isUnchanged())
    }

    @Test("an image that changed between plan and apply is refused")
    func changedSincePlanned() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let targets = try LibraryEdit.targets([scratch.url])
        let plan = try LabelWriter.plan(targets, edit: Self.physPathEdit())
        // someone else changes the labels in between (a field this edit leaves alone)
        var other = LeafEdit()
        other.devid = .set("id1,xdf@someone-else/a")
        try LibraryEdit.apply([scratch.url], other)
        let snapshot = try ImageSnapshot(scratch.url)
        let backups = try TemporaryDirectory(prefix: "zlabel-refusal")
        let error = #expect(throws: LabelWriteError.self) {
            _ = try LabelWriter.apply(plan, to: targets, backupPath: backups.file("backup").path)
        }
        #expect(error?.message.contains("nothing was written") == true)
        #expect(try snapshot.isUnchanged())
        #expect(!FileManager.default.fileExists(atPath: backups.file("backup").path))
    }

    @Test("a byte changed anywhere in the labels between plan and apply is refused", arguments: [
        (label: 0, at: 0), (label: 1, at: 100 << 10), (label: 3, at: LabelLayout.labelSize - 1),
    ])
    func byteChangedSincePlanned(label: Int, at: Int) throws {
        // The labels are compared in pieces: a change in the first, a middle or the last byte of a label counts.
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let targets = try LibraryEdit.targets([scratch.url])
        let plan = try LabelWriter.plan(targets, edit: Self.physPathEdit())
        let file = try ImageFile(path: scratch.url.path, mode: .readWrite)
        let offset = LabelLayout.labelOffset(label, vdevSize: file.size) + UInt64(at)
        var byte = try file.read(at: offset, count: 1)
        byte[0] ^= 0x01
        try file.write(byte, at: offset)
        try file.synchronize()
        let snapshot = try ImageSnapshot(scratch.url)
        let backups = try TemporaryDirectory(prefix: "zlabel-refusal")
        let error = #expect(throws: LabelWriteError.self) {
            _ = try LabelWriter.apply(plan, to: targets, backupPath: backups.file("backup").path)
        }
        #expect(error?.message.contains("changed since the edit was planned") == true, "\(String(describing: error))")
        #expect(try snapshot.isUnchanged())
        #expect(!FileManager.default.fileExists(atPath: backups.file("backup").path))
    }

    @Test("a planned label that is not a valid label of the edited config is refused before any write; no backup file is left", arguments: [
        (label: 0, at: 100), (label: 2, at: 100), (label: 3, at: LabelLayout.configSize - 1),
        (label: 1, at: LabelLayout.configSize - 40),
    ])
    func invalidPlannedLabel(label: Int, at: Int) throws {
        // Label 0 is decoded in full; the others are compared with it up to their checksums, and their checksums
        // verified: a byte changed in the nvlist, the checksum or the magic of any of them must be caught.
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let targets = try LibraryEdit.targets([scratch.url])
        var plan = try LabelWriter.plan(targets, edit: Self.physPathEdit())
        let i = try #require(plan.members[0].labels.firstIndex { $0.index == label && $0.newConfigArea != nil })
        plan.members[0].labels[i].newConfigArea![at] ^= 0x01
        let snapshot = try ImageSnapshot(scratch.url)
        let backups = try TemporaryDirectory(prefix: "zlabel-refusal")
        let error = #expect(throws: LabelWriteError.self) {
            _ = try LabelWriter.apply(plan, to: targets, backupPath: backups.file("backup").path)
        }
        #expect(error?.message.contains("the planned label \(label) is not a valid label of the edited config") == true,
                "\(String(describing: error))")
        // The byte offset of that label's config area in the image is named.
        let area = targets[0].region.offset + plan.members[0].labels[i].configOffset
        #expect(error?.message.contains("at byte 0x\(String(area, radix: 16))") == true, "\(String(describing: error))")
        #expect(try snapshot.isUnchanged())
        #expect(!FileManager.default.fileExists(atPath: backups.file("backup").path))
    }

    /// Copies the config area of one label from `source` into `target` (both bare 64 MiB-class vdevs).
    static func splice(label: Int, from source: URL, into target: URL) throws {
        let from = try ImageFile(path: source.path)
        let to = try ImageFile(path: target.path, mode: .readWrite)
        let offset = LabelLayout.labelOffset(label, vdevSize: from.size) + UInt64(LabelLayout.configOffset)
        try to.write(try from.read(at: offset, count: LabelLayout.configSize), at: offset)
        try to.synchronize()
    }
}

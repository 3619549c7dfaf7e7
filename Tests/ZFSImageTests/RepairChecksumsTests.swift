import Foundation
import Testing
import TestSupport
import ZFSImage
import ZFSLabel

/// Issue 3: `repair-checksums` recomputes the checksum of labels whose nvlist unpacks but whose checksum does not
/// match, byte-identically to OpenZFS 2.3's `zhack label repair -c`.
@Suite("Checksum repair against zhack 2.3")
struct RepairChecksumsTests {
    /// Two copies of a fixture with the same damage: one for us, one for zhack.
    struct DamagedPair {
        /// Keeps the directory (and so the copies) alive.
        let scratch: Fixture.Scratch
        /// Ours first, zhack's second.
        let urls: [URL]
    }

    static func damagedPair(_ name: String, flips: [(label: Int, offset: Int)]) throws -> DamagedPair {
        let scratch = try Fixture.scratchCopy(name)
        for flip in flips { try Oracle.flipByte(in: scratch.url, label: flip.label, at: flip.offset) }
        let theirs = scratch.directory.file("zhack-" + name)
        try Fixture.sparseCopy(from: scratch.url, to: theirs)
        return DamagedPair(scratch: scratch, urls: [scratch.url, theirs])
    }

    static func repair(_ url: URL, dryRun: Bool = false) throws -> [ChecksumRepair.Outcome] {
        let file = try ImageFile(path: url.path, mode: dryRun ? .readOnly : .readWrite)
        return try ChecksumRepair.run(image: file, region: file.wholeImage, dryRun: dryRun)
    }

    // Little-endian pools only: on a big-endian (SPARC) label zhack 2.3 rewrites all four labels with a
    // little-endian checksum tail that libzpool then rejects (the pool no longer imports), so it is no oracle
    // there; the big-endian test below asks libzpool instead.
    @Test("L0 and L2 with a flipped byte in the unused tail: byte-identical to zhack 2.3",
          .oracle(.zfs23, .labelTool, .zlabelJSON), arguments: ["rpool-kvm.img", "rpool-v28.img"])
    func matchesZhack(_ name: String) throws {
        let pair = try Self.damagedPair(name, flips: [(0, 0x5000), (2, 0x5000)])
        let damaged = try ImageSnapshot(pair.urls[0])
        let before = try Oracle.zlabelJSON(pair.urls[0])
        #expect(before.labels.map(\.checksumValid) == [false, true, false, true], "\(before.result)")
        #expect(before.labels.allSatisfy { $0.unpacked })

        let outcomes = try Self.repair(pair.urls[0])
        #expect(outcomes.filter(\.repaired).map(\.label) == [0, 2], "\(outcomes)")
        let zhack = try Oracle.zhackRepairChecksums(pair.urls[1])
        #expect(zhack.status == 0, "\(zhack)")

        let ours = try Data(contentsOf: pair.urls[0]), theirs = try Data(contentsOf: pair.urls[1])
        let diff = ours.indices.first { ours[$0] != theirs[$0] }
        #expect(ours.count == theirs.count && diff == nil, "differs from zhack's result at byte \(diff ?? -1)")

        let after = try Oracle.zlabelJSON(pair.urls[0])
        #expect(after.labelsValid == 4, "\(after.result)")
        // Only the 32 checksum bytes of the two repaired config areas changed; the flipped bytes stay.
        let size = UInt64(damaged.bytes.count)
        let checksums = [0, 2].map { label -> Range<Int> in
            let end = Int(LabelLayout.labelOffset(label, vdevSize: size)) + LabelLayout.configOffset + LabelLayout.configSize
            return (end - 32)..<end
        }
        try EditProof.onlyChanged(checksums, since: damaged, what: "the checksums of labels 0 and 2")
    }

    @Test("big-endian labels: repaired in their own byte order, valid by libzpool, only 64 bytes change",
          .oracle(.labelTool, .zlabelJSON, .zdb))
    func bigEndian() throws {
        let scratch = try Fixture.scratchCopy("zfs-pool-v15.dat")
        for label in [0, 2] { try Oracle.flipByte(in: scratch.url, label: label, at: 0x5000) }
        let damaged = try ImageSnapshot(scratch.url)
        #expect(try Oracle.zlabelJSON(scratch.url).labels.map(\.checksumValid) == [false, true, false, true])
        let outcomes = try Self.repair(scratch.url)
        #expect(outcomes.filter(\.repaired).map(\.label) == [0, 2], "\(outcomes)")
        let after = try Oracle.zlabelJSON(scratch.url)
        #expect(after.labelsValid == 4, "\(after.result)")
        #expect(after.labels.allSatisfy { $0.byteSwapped }, "a repaired label is no longer big-endian")
        let size = UInt64(damaged.bytes.count)
        let checksums = [0, 2].map { label -> Range<Int> in
            let end = Int(LabelLayout.labelOffset(label, vdevSize: size)) + LabelLayout.configOffset + LabelLayout.configSize
            return (end - 32)..<end
        }
        try EditProof.onlyChanged(checksums, since: damaged, what: "the checksums of labels 0 and 2")
        try Oracle.require(.zdb)
        let imported = try Run.run("zdb", ["-e", "-p", scratch.directory.url.path, "-C", "v15-pool"], timeout: 120)
        #expect(imported.succeeded, "\(imported)")
    }

    @Test("a label whose nvlist does not unpack is left alone, as zhack leaves it", .oracle(.zfs23, .labelTool))
    func unreadableLabelLeftAlone() throws {
        let pair = try Self.damagedPair("rpool-kvm.img", flips: [(1, 0x4000), (3, 0x5000)])
        let outcomes = try Self.repair(pair.urls[0])
        #expect(outcomes.map(\.repaired) == [false, false, false, true], "\(outcomes)")
        #expect(outcomes[1].reason.contains("does not unpack"))
        _ = try Oracle.zhackRepairChecksums(pair.urls[1])
        #expect(try Data(contentsOf: pair.urls[0]) == Data(contentsOf: pair.urls[1]), "differs from zhack's result")
        let labels = try LibraryEdit.labels(pair.urls[0])
        #expect(labels.labels.map(\.status) == [Label.Status.valid, .unreadable, .valid, .valid])
    }

    @Test("a dry run, or an image with nothing to repair, writes nothing", .oracle(.labelTool))
    func writesNothingWhenItShouldNot() throws {
        let pair = try Self.damagedPair("rpool-kvm.img", flips: [(2, 0x5000)])
        let damaged = try ImageSnapshot(pair.urls[0])
        let dry = try Self.repair(pair.urls[0], dryRun: true)
        #expect(dry.map(\.repaired) == [false, false, false, false])
        #expect(dry[2].reason.contains("would be recomputed"))
        #expect(try damaged.isUnchanged())

        let healthy = try Fixture.scratchCopy("rpool-kvm.img")
        let snapshot = try ImageSnapshot(healthy.url)
        let outcomes = try Self.repair(healthy.url)
        #expect(outcomes.allSatisfy { !$0.repaired && $0.reason.contains("already valid") })
        #expect(try snapshot.isUnchanged())
    }
}

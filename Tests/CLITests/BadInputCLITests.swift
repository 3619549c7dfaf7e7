import Foundation
import Testing
import TestSupport

/// Input that is not a good vdev, through the command line: a clear message naming the file, the documented exit
/// status (2: the image cannot be read as a vdev, 1: verification failed, 64: usage), and never a crash.
@Suite("bad input through the CLI")
struct BadInputCLITests {
    /// Checks that `run` ended by itself with `status`, with no trap, and (unless nil) `mention` in its messages.
    static func expectClean(_ run: ProcessResult, status: Int32, mentioning mention: String?,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!run.timedOut, "\(run)", sourceLocation: sourceLocation)
        #expect(run.status == status, "\(run)", sourceLocation: sourceLocation)
        #expect(!run.stderrText.contains("Fatal error"), "\(run)", sourceLocation: sourceLocation)
        if let mention {
            #expect((run.stderrText + run.stdoutText).contains(mention), "message does not name \(mention):\n\(run)",
                    sourceLocation: sourceLocation)
        }
    }

    static func makeFile(_ dir: TemporaryDirectory, _ name: String, size: Int, fill: (inout [UInt8]) -> Void = { _ in }) throws -> URL {
        let url = dir.file(name)
        var bytes = [UInt8](repeating: 0, count: size)
        fill(&bytes)
        try Data(bytes).write(to: url)
        return url
    }

    // MARK: exit 2: the image cannot hold a vdev

    @Test("too small for four labels: exit 2 naming the file", arguments: [0, 1, 4096, 512 * 1024, 1024 * 1024 - 1])
    func tooSmall(_ size: Int) throws {
        let dir = try TemporaryDirectory()
        let url = try Self.makeFile(dir, "small-\(size).img", size: size)
        for command in ["inspect", "verify"] {
            Self.expectClean(try ZLabelCLI.run([command, url.path]), status: 2, mentioning: url.path)
        }
        Self.expectClean(try ZLabelCLI.run(["inspect", "--json", url.path]), status: 2, mentioning: url.path)
    }

    @Test("a path that does not exist: exit 2 naming it")
    func nonexistent() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("no-such-image.img").path
        for command in ["inspect", "verify"] {
            let run = try ZLabelCLI.run([command, path])
            Self.expectClean(run, status: 2, mentioning: path)
            #expect(run.stderrText.contains("No such file"), "\(run)")
        }
    }

    @Test("a directory: exit 2 naming it")
    func directory() throws {
        let dir = try TemporaryDirectory()
        for command in ["inspect", "verify"] {
            Self.expectClean(try ZLabelCLI.run([command, dir.url.path]), status: 2, mentioning: dir.url.path)
        }
    }

    @Test("a range past the end of the image, or too small for labels: exit 2 naming the file")
    func badRange() throws {
        let url = try Fixture.image("rpool-kvm.img")
        let size = try Fixture.named("rpool-kvm.img").size
        // too small for four labels: an image error, which names the file
        let small = try ZLabelCLI.run(["inspect", "--offset", "0", "--size", String(512 * 1024), url.path])
        Self.expectClean(small, status: 2, mentioning: url.path)
        // past the end: refused by the partition code; the message names the file
        for (offset, length) in [(size, 1 << 20), (0, size + 1), (UInt64.max - 10, 1 << 20)] as [(UInt64, UInt64)] {
            let run = try ZLabelCLI.run(["inspect", "--offset", String(offset), "--size", String(length), url.path])
            Self.expectClean(run, status: 2, mentioning: "past the end")
            #expect(run.stderrText.contains(url.path), "\(run)")
        }
        let disk = try Fixture.image("disk-gpt.img")
        let unknown = try ZLabelCLI.run(["inspect", "--partition", "p7", disk.path])
        Self.expectClean(unknown, status: 2, mentioning: "p7")
        #expect(unknown.stderrText.contains(disk.path), "\(unknown)")
    }

    // MARK: exit 64: usage

    @Test("usage errors exit 64")
    func usage() throws {
        let url = try Fixture.image("rpool-kvm.img")
        Self.expectClean(try ZLabelCLI.run(["inspect"]), status: 64, mentioning: nil)
        Self.expectClean(try ZLabelCLI.run(["verify"]), status: 64, mentioning: nil)
        Self.expectClean(try ZLabelCLI.run(["inspect", "--offset", "0", url.path]), status: 64, mentioning: "--size")
        Self.expectClean(try ZLabelCLI.run(["inspect", "--offset", "-5", "--size", "1", url.path]), status: 64, mentioning: nil)
        Self.expectClean(try ZLabelCLI.run(["no-such-command"]), status: 64, mentioning: nil)
    }

    // MARK: readable images without a good vdev: inspect shows it, verify exits 1

    @Test("all-zero labels: every label absent, no uberblock; verify names all four and the ring")
    func allZero() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("zero.img")
        #expect(FileManager.default.createFile(atPath: url.path, contents: nil))
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: 64 << 20)
        try handle.close()

        let (_, doc) = try LabelAgreement.inspectJSON([url.path])
        let vdev = try LabelAgreement.onlyVdev(doc)
        #expect(vdev["labels"]?.array?.map { $0["status"]?.string ?? "" } == ["absent", "absent", "absent", "absent"])
        #expect(vdev["active_uberblock"] == .null)
        // No label unpacks: inspect says so and exits 2, as zdb -l does.
        Self.expectClean(try ZLabelCLI.run(["inspect", url.path]), status: 2, mentioning: "no ZFS label found")

        let verify = try ZLabelCLI.run(["verify", url.path])
        Self.expectClean(verify, status: 1, mentioning: url.path)
        let probe = LabelAgreement.Vdev(url, size: 64 << 20)
        for i in 0..<4 {
            let line = verify.stdoutText.split(separator: "\n").first { $0.contains("label \(i) ") }.map(String.init)
            #expect(line?.contains(url.path) == true, "\(verify)")
            #expect(line.map { LabelAgreement.mentions($0, offset: probe.labelOffset(i)) } == true, "\(verify)")
        }
        #expect(verify.stdoutText.contains("uberblock"), "\(verify)")
    }

    @Test("random bytes: every label unreadable, verify exits 1, nothing traps", arguments: [1, 2, 3] as [UInt64])
    func randomBytes(_ seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        var rng = SplitMix64(seed: seed)
        let url = try Self.makeFile(dir, "random-\(seed).img", size: 2 << 20) { bytes in
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            bytes[510] = 0  // no MBR boot signature: this is a bare vdev
        }
        let (_, doc) = try LabelAgreement.inspectJSON([url.path], uberblocks: true)
        let vdev = try LabelAgreement.onlyVdev(doc)
        #expect(vdev["labels"]?.array?.map { $0["status"]?.string ?? "" }
                == ["unreadable", "unreadable", "unreadable", "unreadable"])
        for label in vdev["labels"]?.array ?? [] {
            #expect(label["problem"]?.string?.isEmpty == false)
            #expect(label["problem_offset"]?.uint64 != nil)
        }
        let verify = try ZLabelCLI.run(["verify", url.path])
        Self.expectClean(verify, status: 1, mentioning: url.path)
        Self.expectClean(try ZLabelCLI.run(["inspect", "--uberblocks", url.path]), status: 2, mentioning: "not a ZFS vdev")
    }

    @Test("random nvlist bodies behind a valid header and checksum: unreadable exactly when libnvpair says so",
          .oracle(.zlabelJSON, .labelTool), arguments: [11, 12, 13, 14] as [UInt64])
    func randomNVListBodies(_ seed: UInt64) throws {
        let copy = try Fixture.scratchCopy("rpool-kvm.img")
        let vdev = LabelAgreement.Vdev(copy.url, size: try Fixture.named("rpool-kvm.img").size)
        var rng = SplitMix64(seed: seed)
        for label in 0..<4 {
            // XDR encoding, little-endian host, nvl_version 0, NV_UNIQUE_NAME; then random pairs
            var body: [UInt8] = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
            let length = 16 + Int(rng.next() % 2048)
            for _ in 0..<length { body.append(UInt8(truncatingIfNeeded: rng.next())) }
            if label == 1 { body.replaceSubrange(12..<16, with: [0, 0, 0, 40]) }  // plausible pair size
            if label == 2 { body.replaceSubrange(12..<20, with: [0, 0, 0, 0, 0, 0, 0, 0]) }  // terminator
            try LabelAgreement.writeBytes(body, to: vdev.url, at: vdev.configArea(label))
            let fixed = try Oracle.labelTool(["fixlabel", copy.url.path, String(label)])
            try #require(fixed.succeeded, "\(fixed)")
        }
        let (_, dump) = try LabelAgreement.checkAgainstOracle(vdev, context: "random nvlists, seed \(seed)")
        #expect(dump.labels.allSatisfy { $0.checksumValid }, "\(dump.result)")
        let verify = try ZLabelCLI.run(["verify", copy.url.path])
        Self.expectClean(verify, status: dump.labelsValid == 4 ? 0 : 1, mentioning: copy.url.path)
    }

    // MARK: sizes that are not a multiple of 256 KiB: L2 and L3 from the aligned size

    @Test("a pool with 100 KiB appended: same label places, all valid, as the oracle says", .oracle(.zlabelJSON))
    func grownImage() throws {
        let copy = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try Fixture.named("rpool-kvm.img").size
        let handle = try FileHandle(forWritingTo: copy.url)
        try handle.truncate(atOffset: original + 100 * 1024)
        try handle.close()
        let vdev = LabelAgreement.Vdev(copy.url, size: original + 100 * 1024)
        let (ours, dump) = try LabelAgreement.checkAgainstOracle(vdev, context: "grown")
        #expect(dump.labelsValid == 4)
        #expect(ours["labels"]?[3]?["offset"]?.uint64 == original - 256 * 1024)
        Self.expectClean(try ZLabelCLI.run(["verify", copy.url.path]), status: 0, mentioning: copy.url.path)
    }

    @Test("a pool cut 120 KiB short: L3's place holds the old L2, as the oracle says", .oracle(.zlabelJSON))
    func truncatedImage() throws {
        let copy = try Fixture.scratchCopy("rpool-kvm.img")
        let original = try Fixture.named("rpool-kvm.img").size
        let size = original - 120 * 1024
        let handle = try FileHandle(forWritingTo: copy.url)
        try handle.truncate(atOffset: size)
        try handle.close()
        let vdev = LabelAgreement.Vdev(copy.url, size: size)
        let (ours, dump) = try LabelAgreement.checkAgainstOracle(vdev, context: "truncated")
        #expect(dump.labels[3].isValid, "\(dump.result)")
        #expect(!dump.labels[2].isValid, "\(dump.result)")
        #expect(ours["labels"]?[3]?["offset"]?.uint64 == original - 512 * 1024)
        let verify = try ZLabelCLI.run(["verify", copy.url.path])
        Self.expectClean(verify, status: 1, mentioning: copy.url.path)
        #expect(verify.stdoutText.contains("label 2"), "\(verify)")
    }

    @Test("zfs-broken-mirror1.dat (not a multiple of 256 KiB): L2 absent, L3 valid at the aligned end")
    func brokenMirrorHalf() throws {
        let fixture = try Fixture.named("zfs-broken-mirror1.dat")
        #expect(fixture.size % (256 * 1024) != 0)
        let url = try fixture.url()
        let (_, doc) = try LabelAgreement.inspectJSON([url.path])
        let vdev = try LabelAgreement.onlyVdev(doc)
        let aligned = fixture.size & ~UInt64(256 * 1024 - 1)
        #expect(vdev["labels"]?[2]?["offset"]?.uint64 == aligned - 512 * 1024)
        #expect(vdev["labels"]?[3]?["offset"]?.uint64 == aligned - 256 * 1024)
        #expect(vdev["labels"]?.array?.map { $0["status"]?.string ?? "" } == ["valid", "valid", "absent", "valid"])
        #expect(vdev["active_uberblock"]?["txg"]?.uint64 != nil)
    }
}

/// A small deterministic generator (SplitMix64), so that random inputs are the same on every run.
fileprivate struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

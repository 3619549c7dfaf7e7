import Foundation
import Testing
import TestSupport
import ZLabel

/// `zlabel doctor` as a user runs it: on the golden pair, after a label-only `zlabel set`, and after real ZFS
/// imported that edited pool. Values are taken from real ZFS (libnvpair's label dump, `zdb -e -C`), not
/// written into the test.
@Suite("zlabel doctor")
struct DoctorTests {
    static let hvmPhysPath = "/xpvd/xdf@51712:a"

    struct Doctor {
        let run: ProcessResult
        let json: ExactJSON

        var status: Int32 { run.status }
        var clean: Bool { json["clean"]?.bool == true }
        func findings(_ severity: String? = nil, kind: String? = nil) -> [ExactJSON] {
            (json["findings"]?.array ?? []).filter {
                (severity == nil || $0["severity"]?.string == severity) && (kind == nil || $0["kind"]?.string == kind)
            }
        }
        /// The `fields` object of leaf `index`.
        func field(_ name: String, leaf index: Int = 0) -> ExactJSON? {
            json["leaves"]?[index]?["fields"]?[name]
        }
    }

    static func doctor(_ arguments: [String]) throws -> Doctor {
        let run = try ZLabelCLI.run(["doctor", "--json"] + arguments)
        return Doctor(run: run, json: try ExactJSON.parse(run.stdout))
    }

    /// Runs a `fix:` line as printed, through the shell, with `zlabel` being the built executable.
    static func runFix(_ fix: String) throws -> ProcessResult {
        #expect(fix.hasPrefix("zlabel "), "\(fix)")
        let exe = try ZLabelCLI.executable().path
        return try Run.run("/bin/sh", ["-c", Run.shellQuoted(exe) + fix.dropFirst("zlabel".count)], timeout: 120)
    }

    /// A label config as real libnvpair decodes it (label 0).
    static func oracleLeaf(_ url: URL) throws -> ExactJSON {
        let dump = try Oracle.zlabelJSON(url)
        return try #require(dump.labels[0].config?["vdev_tree"])
    }

    /// `KEY: 'VALUE'` lines of `zdb -e -p DIR -C POOL`: the MOS config as real ZFS reads it.
    static func zdbMOSValues(_ url: URL, pool: String, key: String) throws -> [String] {
        try Oracle.require(.zdb)
        let dir = try TemporaryDirectory(prefix: "zlabel-doctor-zdb")
        try FileManager.default.createSymbolicLink(at: dir.file(url.lastPathComponent), withDestinationURL: url)
        let result = try Run.run("zdb", ["-e", "-p", dir.url.path, "-C", pool], timeout: 120)
        guard result.succeeded else { throw OracleError.failed(result) }
        return result.stdoutText.split(separator: "\n").compactMap { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("\(key): '"), t.hasSuffix("'") else { return nil }
            return String(t.dropFirst(key.count + 3).dropLast())
        }
    }

    // MARK: golden pair

    @Test("before: the KVM image is a device mismatch for ec2-xen-hvm, named with the fix", .oracle(.zlabelJSON, .zdb))
    func goldenBefore() throws {
        let url = try Fixture.image("rpool-kvm.img")
        let leaf = try Self.oracleLeaf(url)
        let labelPhys = try #require(leaf["phys_path"]?.string)
        let d = try Self.doctor([url.path, "--target", "ec2-xen-hvm"])
        #expect(d.status == 1, "\(d.run)")
        #expect(!d.clean)
        let problems = d.findings("problem")
        #expect(problems.count == 1, "\(d.run)")
        let mismatch = try #require(d.findings("problem", kind: "target-phys-path").first)
        let message = try #require(mismatch["message"]?.string)
        #expect(message.contains("device mismatch") && message.contains("'\(labelPhys)'") && message.contains("'\(Self.hvmPhysPath)'"))
        #expect(message.contains("/dev/xvda") && message.contains("51712"))
        #expect(mismatch["fix"]?.string == "zlabel set \(url.path) --target ec2-xen-hvm")
        // The three copies, side by side: labels, MOS (as zdb -e -C reads it), target.
        let phys = try #require(d.field("phys_path"))
        #expect(phys["effective"]?.string == labelPhys)
        #expect(try Self.zdbMOSValues(url, pool: "rpool", key: "phys_path") == [labelPhys])
        #expect(phys["mos"]?.string == labelPhys)
        #expect(phys["target"]?["set"]?.string == Self.hvmPhysPath)
        #expect(d.field("devid")?["target"]?["remove"]?.bool == true)
        #expect(d.findings(kind: "target-devid").count == 1)
        // The loader view the verdict rests on.
        #expect(d.json["boot"]?["bootpath"]?.string == labelPhys)
        #expect(d.json["loader"]?.string == "illumos")

        let text = try ZLabelCLI.run(["doctor", url.path, "--target", "ec2-xen-hvm"])
        #expect(text.status == 1)
        #expect(text.stdoutText.contains("problem: device mismatch"), "\(text)")
        #expect(text.stdoutText.contains("  fix: zlabel set \(url.path) --target ec2-xen-hvm"))
        #expect(text.stdoutText.contains("result: 1 problem"))
    }

    @Test("after: the image real ZFS rewrote for Xen is clean, and its labels and MOS agree", .oracle(.zlabelJSON))
    func goldenAfter() throws {
        let url = try Fixture.image("rpool-kvm-to-xen.img")
        let d = try Self.doctor([url.path, "--target", "ec2-xen-hvm"])
        #expect(d.status == 0, "\(d.run)")
        #expect(d.clean)
        #expect(d.findings("problem").isEmpty && d.findings("warning").isEmpty, "\(d.run)")
        let leaf = try Self.oracleLeaf(url)
        for name in ["phys_path", "path", "devid"] {
            let field = try #require(d.field(name))
            #expect(field["effective"]?.string == leaf[name]?.string, "\(name)")
            #expect(field["mos"]?.string == field["effective"]?.string, "\(name): labels and MOS agree")
        }
        #expect(d.field("phys_path")?["effective"]?.string == Self.hvmPhysPath)
    }

    @Test("after a label-only set: the MOS still holds the old strings, and a real import writes them back",
          .oracle(.zlabelJSON, .zdb, .reimport))
    func labelOnlySetThenImport() throws {
        let original = try Fixture.image("rpool-kvm.img")
        let mosPhys = try #require(try Self.zdbMOSValues(original, pool: "rpool", key: "phys_path").first)
        let mosDevid = try #require(try Self.zdbMOSValues(original, pool: "rpool", key: "devid").first)
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let before = try Self.doctor([scratch.url.path, "--target", "ec2-xen-hvm"])
        let fix = try #require(before.findings(kind: "target-phys-path").first?["fix"]?.string)
        let applied = try Self.runFix(fix)
        #expect(applied.succeeded, "\(applied)")

        let after = try Self.doctor([scratch.url.path, "--target", "ec2-xen-hvm"])
        #expect(after.status == 0, "\(after.run)")
        #expect(after.findings("problem").isEmpty, "\(after.run)")
        let stale = after.findings("warning", kind: "mos-differs").compactMap { $0["message"]?.string }
        #expect(stale.count == 2, "\(after.run)")
        #expect(stale.contains { $0.contains("phys_path '\(mosPhys)'") && $0.contains("'\(Self.hvmPhysPath)'") && $0.contains("zpool import") })
        #expect(stale.contains { $0.contains("devid '\(mosDevid)'") && $0.contains("no longer have") })
        #expect(after.field("phys_path")?["mos"]?.string == mosPhys)
        #expect(after.field("devid")?["effective"] == .null)
        #expect(after.field("devid")?["mos"]?.string == mosDevid)
        #expect(try Self.oracleLeaf(scratch.url)["phys_path"]?.string == Self.hvmPhysPath)

        // What the warning says happens on import, happening: real ZFS imports read-write and exports.
        let imported = try Oracle.reimport([scratch.url], presentAs: [scratch.url: "/dev/dsk/c1t0d0s0"], readOnly: false)
        #expect(imported.succeeded, "\(imported)")
        let leaf = try Self.oracleLeaf(scratch.url)
        #expect(leaf["phys_path"]?.string == mosPhys, "the import wrote the MOS phys_path back into the labels")
        #expect(leaf["devid"]?.string == mosDevid)
        let reimported = try Self.doctor([scratch.url.path, "--target", "ec2-xen-hvm"])
        #expect(reimported.status == 1)
        #expect(reimported.findings(kind: "mos-differs").isEmpty, "\(reimported.run)")
        #expect(reimported.findings("problem", kind: "target-phys-path").count == 1)
    }

    // MARK: other targets and layouts

    @Test("ec2-xen-pv: the printed fix sets xdf@2048, and doctor still refuses a pool pv-grub cannot read",
          .oracle(.zdbCheck))
    func pvTarget() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let d = try Self.doctor([scratch.url.path, "--target", "ec2-xen-pv"])
        #expect(d.status == 1)
        #expect(d.json["loader"]?.string == "pv-grub")
        let mismatch = try #require(d.findings("problem", kind: "target-phys-path").first)
        #expect(mismatch["message"]?.string?.contains("does not boot") == true)
        #expect(mismatch["message"]?.string?.contains("'/xpvd/xdf@2048:a'") == true)
        let fixed = try Self.runFix(try #require(mismatch["fix"]?.string))
        #expect(fixed.succeeded, "\(fixed)")
        let check = try Oracle.zdbCheck([Oracle.Device(scratch.url)], expect: ["phys_path": "/xpvd/xdf@2048:a"], fast: true)
        #expect(check.succeeded, "\(check)")
        // The labels now name the PV disk, but pv-grub's ZFS reader cannot read an OpenZFS 2.1 pool (it prints
        // "missing feature for read 'com.delphix:hole_birth'", Tests/Oracle/loader-golden/pv-grub.json), and no
        // label edit changes that.
        let again = try Self.doctor([scratch.url.path, "--target", "ec2-xen-pv"])
        #expect(again.status == 1, "\(again.run)")
        #expect(again.findings(kind: "target-phys-path").isEmpty, "\(again.run)")
        let refusal = again.findings("problem", kind: "boot-fails")
        #expect(refusal.contains { $0["message"]?.string?.contains("com.delphix:hole_birth") == true }, "\(again.run)")
        #expect(again.json["boot"]?["can_boot"]?.bool == false)
    }

    @Test("whole disk: the fix names the partition, and the slice's minor name follows it", .oracle(.zdbCheck))
    func wholeDisk() throws {
        let fixture = try Fixture.named("disk-gpt-esp.img")
        let partition = try #require(fixture.partition)
        let scratch = try Fixture.scratchCopy("disk-gpt-esp.img")
        let d = try Self.doctor([scratch.url.path, "--target", "ec2-xen-hvm"])
        #expect(d.status == 1)
        #expect(d.json["leaves"]?[0]?["partition"]?.string == "p2")
        let fix = try #require(d.findings(kind: "target-phys-path").first?["fix"]?.string)
        #expect(fix == "zlabel set \(scratch.url.path) --partition p2 --target ec2-xen-hvm")
        #expect(try Self.runFix(fix).succeeded)
        #expect(try Self.doctor([scratch.url.path, "--target", "ec2-xen-hvm"]).status == 0)
        let check = try Oracle.zdbCheck([Oracle.Device(scratch.url, offset: partition.offset, size: partition.size)],
                                        expect: ["phys_path": "/xpvd/xdf@51712:b"], fast: true)
        #expect(check.succeeded, "\(check)")
    }

    @Test("mirror: both members are listed, the first is the boot disk, labels and MOS agree")
    func mirror() throws {
        let urls = try ["rpool-mirror-0.img", "rpool-mirror-1.img"].map { try Fixture.image($0) }
        let d = try Self.doctor(urls.map(\.path))
        #expect(d.status == 0, "\(d.run)")
        let leaves = try #require(d.json["leaves"]?.array)
        #expect(leaves.count == 2)
        #expect(leaves.map { $0["boot_disk"]?.bool } == [true, false])
        #expect(leaves.allSatisfy { $0["in_mos"]?.bool == true })
        #expect(leaves[0]["guid"] != leaves[1]["guid"])
        #expect(d.findings(kind: "mos-differs").isEmpty)
    }

    @Test("raidz: one member alone is a MOS that cannot be read (a warning); all three are compared")
    func raidz() throws {
        let urls = try ["tank-raidz-0.img", "tank-raidz-1.img", "tank-raidz-2.img"].map { try Fixture.image($0) }
        let one = try Self.doctor([urls[0].path])
        #expect(one.status == 0, "\(one.run)")
        #expect(one.findings("warning", kind: "mos-unreadable").count == 1)
        #expect(one.field("phys_path")?["mos_read"]?.bool == false)
        let all = try Self.doctor(urls.map(\.path))
        #expect(all.status == 0, "\(all.run)")
        #expect(all.findings(kind: "mos-unreadable").isEmpty)
        #expect(all.json["leaves"]?.array?.count == 3)
        #expect(all.json["leaves"]?.array?.allSatisfy { $0["fields"]?["phys_path"]?["mos_read"]?.bool == true } == true)
    }

    @Test("an unexported pool naming a host: warned, with a fix that removes the host", .oracle(.zlabelJSON))
    func foreignHost() throws {
        let scratch = try Fixture.scratchCopy("unclean_export.dat")
        let config = try #require(try Oracle.zlabelJSON(scratch.url).labels[0].config)
        #expect(config["state"]?.uint64 == 0)
        let hostid = try #require(config["hostid"]?.uint64)
        let d = try Self.doctor([scratch.url.path])
        #expect(d.status == 0)
        let warning = try #require(d.findings("warning", kind: "foreign-host").first)
        #expect(warning["message"]?.string?.contains("0x" + String(hostid, radix: 16)) == true)
        let fix = try #require(warning["fix"]?.string)
        let command = try #require(fix.split(separator: ": ", maxSplits: 1).last.map(String.init))
        #expect(try Self.runFix(command).succeeded)
        #expect(try Self.doctor([scratch.url.path]).findings(kind: "foreign-host").isEmpty)
        #expect(try Oracle.zlabelJSON(scratch.url).labels[0].config?["hostid"] == nil)
        // A leaf with neither phys_path nor devid (a Linux file vdev) is noted for the loaders.
        #expect(d.findings("note", kind: "no-bootpath").count == 1)
    }

    @Test("labels that disagree (an edit cut short) are named label by label", .oracle(.zlabelJSON))
    func labelsDisagree() throws {
        let original = try Fixture.image("rpool-kvm.img")
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let set = try ZLabelCLI.run(["set", scratch.url.path, "--phys-path", Self.hvmPhysPath,
                                     "--backup", scratch.directory.file("b").path])
        #expect(set.status == 0, "\(set)")
        // Put labels 2 and 3 back as they were: labels 0,1 new, 2,3 old, all four valid.
        let size = try #require(try FileManager.default.attributesOfItem(atPath: original.path)[.size] as? UInt64)
        let labelSize: UInt64 = 256 << 10
        let aligned = size / labelSize * labelSize
        let source = try FileHandle(forReadingFrom: original)
        let target = try FileHandle(forWritingTo: scratch.url)
        for offset in [aligned - 2 * labelSize, aligned - labelSize] {
            try source.seek(toOffset: offset)
            let bytes = try #require(try source.read(upToCount: Int(labelSize)))
            try target.seek(toOffset: offset)
            try target.write(contentsOf: bytes)
        }
        try target.close()
        #expect(try Oracle.zlabelJSON(scratch.url).labelsValid == 4)
        let oldPhys = try #require(try Self.oracleLeaf(original)["phys_path"]?.string)
        let d = try Self.doctor([scratch.url.path])
        let message = try #require(d.findings("warning", kind: "labels-disagree").first?["message"]?.string)
        #expect(message.contains("labels 0,1 say '\(Self.hvmPhysPath)'; labels 2,3 say '\(oldPhys)'"), "\(message)")
        let groups = try #require(d.field("phys_path")?["labels"]?.array)
        #expect(groups.count == 2)
    }

    @Test("bad input: a missing image, a device without a target, an unknown target")
    func badInput() throws {
        let missing = try ZLabelCLI.run(["doctor", "/nonexistent/zlabel-doctor.img"])
        #expect(missing.status == 2, "\(missing)")
        #expect(missing.stderrText.contains("/nonexistent/zlabel-doctor.img"))
        let url = try Fixture.image("rpool-kvm.img")
        #expect(try ZLabelCLI.run(["doctor", url.path, "--device", "/dev/sda"]).status == 64)
        let unknown = try ZLabelCLI.run(["doctor", url.path, "--target", "ec2-nowhere"])
        #expect(unknown.status == 64 && unknown.stderrText.contains("ec2-nowhere"), "\(unknown)")
    }
}

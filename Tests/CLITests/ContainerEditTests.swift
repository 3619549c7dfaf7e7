import Foundation
import Testing
import TestSupport

/// `zlabel set`, `restore` and `repair-checksums` on images inside qcow2, VMDK and VHD containers, written in
/// place; judged by qemu-img (check, and its conversion back to raw) and by real ZFS on that raw image.
@Suite("zlabel edits labels in place in VM disk containers")
struct ContainerEditTests {
    struct Format: Sendable, CustomTestStringConvertible {
        let name: String
        /// qemu-img convert arguments after `-O`.
        let args: [String]
        /// qemu-img's `-f`.
        let qemuFormat: String
        /// Whether `qemu-img check` checks this format.
        let checked: Bool
        var testDescription: String { name }
    }

    static let formats = [
        Format(name: "qcow2 v3", args: ["qcow2"], qemuFormat: "qcow2", checked: true),
        Format(name: "qcow2 v2", args: ["qcow2", "-o", "compat=0.10"], qemuFormat: "qcow2", checked: true),
        Format(name: "VMDK monolithicSparse", args: ["vmdk", "-o", "subformat=monolithicSparse"], qemuFormat: "vmdk", checked: true),
        // force_size: keep the fixture's size rather than round it up to a CHS geometry (the labels at the end
        // of a whole-image vdev are found from its size).
        Format(name: "VHD dynamic", args: ["vpc", "-o", "subformat=dynamic,force_size=on"], qemuFormat: "vpc", checked: false),
        Format(name: "VHD fixed", args: ["vpc", "-o", "subformat=fixed,force_size=on"], qemuFormat: "vpc", checked: false),
        // A descriptor (disk.img) and its extent file (disk-flat.img).
        Format(name: "VMDK monolithicFlat", args: ["vmdk", "-o", "subformat=monolithicFlat"], qemuFormat: "vmdk", checked: true),
    ]

    /// The container's files (a flat VMDK has two): name → bytes.
    static func containerFiles(_ d: TemporaryDirectory) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: d.url.path) where name.hasPrefix("disk") {
            out[name] = try Data(contentsOf: d.file(name))
        }
        return out
    }

    static let physPath = "/xpvd/xdf@51712:a"
    static let path = "/dev/dsk/c2t0d0s0"

    static func pack(_ raw: URL, _ args: [String], to target: URL) throws {
        let r = try Run.run("qemu-img", ["convert", "-f", "raw", "-O"] + args + [raw.path, target.path])
        guard r.succeeded else { throw OracleError.failed(r) }
    }

    static func rawBack(_ packed: URL, _ format: String, to target: URL) throws -> Data {
        let r = try Run.run("qemu-img", ["convert", "-f", format, "-O", "raw", packed.path, target.path])
        guard r.succeeded else { throw OracleError.failed(r) }
        return try Data(contentsOf: target)
    }

    static func qemuCheck(_ packed: URL, _ f: Format, sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard f.checked else { return }
        let r = try Run.run("qemu-img", ["check", "-f", f.qemuFormat, packed.path])
        #expect(r.succeeded && r.stdoutText.contains("No errors were found"), "\(r)", sourceLocation: sourceLocation)
    }

    /// The four 112 KiB config areas of a whole-image vdev of `size` bytes (labels at 0, 256 KiB, and the last
    /// 512 KiB; each config area 16 KiB into its label).
    static func configAreas(size: Int) -> [Range<Int>] {
        let aligned = size / (256 << 10) * (256 << 10)
        return [0, 256 << 10, aligned - (512 << 10), aligned - (256 << 10)].map { ($0 + (16 << 10))..<($0 + (128 << 10)) }
    }

    @Test("set writes in place: qemu-img check is clean, the raw conversion equals a raw set and differs only in the config areas, real ZFS imports it, restore puts the file back",
          .oracle(.qemuImg, .zdbCheck, .zlabelJSON), arguments: formats)
    func setInPlace(_ f: Format) throws {
        try Oracle.require(.qemuImg)
        let fixture = try Fixture.image("rpool-kvm.img")
        let d = try TemporaryDirectory(prefix: "zlabel-container-edit")
        let packed = d.file("disk.img")
        try Self.pack(fixture, f.args, to: packed)
        let hostBefore = try Self.containerFiles(d)
        let original = try Self.rawBack(packed, f.qemuFormat, to: d.file("original.raw"))
        let rawCopy = d.file("raw.img")
        try Fixture.sparseCopy(from: fixture, to: rawCopy)

        let edit = ["--phys-path", Self.physPath, "--path", Self.path]
        let set = try ZLabelCLI.run(["set", packed.path] + edit + ["--backup", d.file("container.backup").path])
        #expect(set.status == 0 && set.stdoutText.contains("wrote 4 labels"), "\(set)")
        let rawSet = try ZLabelCLI.run(["set", rawCopy.path] + edit + ["--backup", d.file("raw.backup").path])
        #expect(rawSet.status == 0, "\(rawSet)")
        try Self.qemuCheck(packed, f)

        let edited = d.file("edited.raw")
        let after = try Self.rawBack(packed, f.qemuFormat, to: edited)
        #expect(after == (try Data(contentsOf: rawCopy)), "the raw conversion differs from the same set on the raw image")
        // Only the config areas changed, and each of them did.
        let areas = Self.configAreas(size: original.count)
        #expect(after.count == original.count)
        // (Whole stretches compared at once: a byte-by-byte loop over 64 MiB is slow in a debug build.)
        let between = zip([0] + areas.map(\.upperBound), areas.map(\.lowerBound) + [original.count]).map { $0..<$1 }
        for stretch in between {
            let same = original[stretch] == after[stretch]
            let first = same ? nil : stretch.first { original[$0] != after[$0] }
            #expect(same, "byte \(first ?? -1) changed outside the config areas")
        }
        for area in areas { #expect(original[area] != after[area], "config area \(area) unchanged") }

        // Real ZFS on qemu-img's raw conversion: all four labels valid with the new values, the pool imports,
        // each label alone is enough.
        let dump = try Oracle.zlabelJSON(edited)
        #expect(dump.labelsValid == 4, "\(dump.result)")
        // (Each label alone, the slow part, once: the other formats' conversions equal the raw set byte for byte.)
        let check = try Oracle.zdbCheck([Oracle.Device(edited)], expect: ["phys_path": Self.physPath, "path": Self.path],
                                        fast: true, isolation: f.name == "qcow2 v3")
        #expect(check.succeeded, "real ZFS rejects the edited pool:\n\(check)")

        // restore: the container's files are byte-identical to before the edit (only data bytes were ever written,
        // and restore writes the saved bytes back into the same places).
        let restore = try ZLabelCLI.run("restore", packed.path, "--from", d.file("container.backup").path)
        #expect(restore.status == 0 && restore.stdoutText.contains("restored 4 labels"), "\(restore)")
        #expect(try Self.containerFiles(d) == hostBefore, "the container's files differ from before the edit")
        try Self.qemuCheck(packed, f)
    }

    @Test("repair-checksums inside a qcow2 repairs what it repairs in the raw image, and nothing else", .oracle(.qemuImg))
    func repairChecksums() throws {
        try Oracle.require(.qemuImg)
        let d = try TemporaryDirectory(prefix: "zlabel-container-edit")
        // Label 1's checksum damaged (its last byte): the nvlist still unpacks, so it is repairable.
        let damaged = d.file("damaged.img")
        try Fixture.sparseCopy(from: try Fixture.image("rpool-kvm.img"), to: damaged)
        let handle = try FileHandle(forUpdating: damaged)
        try handle.seek(toOffset: UInt64((256 + 128) << 10) - 1)
        let last = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: UInt64((256 + 128) << 10) - 1)
        try handle.write(contentsOf: [last[0] ^ 0xFF])
        try handle.close()
        let packed = d.file("damaged.qcow2")
        try Self.pack(damaged, ["qcow2"], to: packed)

        let dry = try ZLabelCLI.run("repair-checksums", packed.path, "--dry-run")
        #expect(dry.status == 0 && dry.stdoutText.contains("label 1 at byte 278528: checksum would be recomputed"), "\(dry)")
        let r = try ZLabelCLI.run("repair-checksums", packed.path)
        #expect(r.status == 0 && r.stdoutText.contains("label 1 at byte 278528: checksum recomputed"), "\(r)")
        let rawRepair = try ZLabelCLI.run("repair-checksums", damaged.path)
        #expect(rawRepair.status == 0, "\(rawRepair)")
        let check = try Run.run("qemu-img", ["check", "-f", "qcow2", packed.path])
        #expect(check.succeeded, "\(check)")
        #expect(try Self.rawBack(packed, "qcow2", to: d.file("repaired.raw")) == (try Data(contentsOf: damaged)))
    }

    @Test("set --dry-run on a qcow2 prints the plan and writes nothing", .oracle(.qemuImg))
    func dryRun() throws {
        try Oracle.require(.qemuImg)
        let d = try TemporaryDirectory(prefix: "zlabel-container-edit")
        let packed = d.file("disk.qcow2")
        try Self.pack(try Fixture.image("rpool-kvm.img"), ["qcow2"], to: packed)
        let before = try Data(contentsOf: packed)
        let r = try ZLabelCLI.run("set", packed.path, "--phys-path", Self.physPath, "--dry-run")
        #expect(r.status == 0 && r.stdoutText.contains(Self.physPath) && r.stdoutText.contains("dry run: nothing written"), "\(r)")
        #expect(try Data(contentsOf: packed) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.url.path) == ["disk.qcow2"])
    }

    /// Runs `arguments` (IMG: the container) and expects exit 3 naming the file and `reason`, with the file
    /// byte-identical after and no backup written.
    static func refused(_ packed: URL, _ arguments: [String], reason: String,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
        let folder = packed.deletingLastPathComponent().path
        let filesBefore = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        let before = try Data(contentsOf: packed)
        let r = try ZLabelCLI.run(arguments.map { $0 == "IMG" ? packed.path : $0 })
        #expect(r.status == 3, "\(r)", sourceLocation: sourceLocation)
        #expect(r.stderrText.contains(packed.path) && r.stderrText.contains(reason), "\(r)", sourceLocation: sourceLocation)
        #expect(r.stderrText.contains("qemu-img convert -O raw") && r.stderrText.contains("zlabel ec2 publish"), "\(r)",
                sourceLocation: sourceLocation)
        #expect(try Data(contentsOf: packed) == before, "\(packed.lastPathComponent) changed", sourceLocation: sourceLocation)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == filesBefore, sourceLocation: sourceLocation)
    }

    @Test("compressed clusters, streamOptimized, backing files, internal snapshots and unallocated clusters are refused with exit 3, nothing written",
          .oracle(.qemuImg))
    func refusals() throws {
        try Oracle.require(.qemuImg)
        let fixture = try Fixture.image("rpool-kvm.img")
        let d = try TemporaryDirectory(prefix: "zlabel-container-edit")
        let set = ["set", "IMG", "--phys-path", Self.physPath]

        let compressed = d.file("compressed.qcow2")
        try Self.pack(fixture, ["qcow2", "-c"], to: compressed)
        try Self.refused(compressed, set, reason: "is compressed")
        try Self.refused(compressed, set + ["--dry-run"], reason: "is compressed")

        let stream = d.file("stream.vmdk")
        try Self.pack(fixture, ["vmdk", "-o", "subformat=streamOptimized"], to: stream)
        try Self.refused(stream, set, reason: "streamOptimized")
        try Self.refused(stream, ["repair-checksums", "IMG"], reason: "streamOptimized")

        let base = d.file("base.qcow2")
        try Self.pack(fixture, ["qcow2"], to: base)
        let overlay = d.file("overlay.qcow2")
        let made = try Run.run("qemu-img", ["create", "-f", "qcow2", "-b", base.path, "-F", "qcow2", overlay.path])
        #expect(made.succeeded, "\(made)")
        try Self.refused(overlay, set, reason: "backing file")

        let snap = d.file("snap.qcow2")
        try Self.pack(fixture, ["qcow2"], to: snap)
        let snapped = try Run.run("qemu-img", ["snapshot", "-c", "before", snap.path])
        #expect(snapped.succeeded, "\(snapped)")
        try Self.refused(snap, set, reason: "internal snapshot")

        // 512-byte clusters and no zero run left allocated: the sectors after the packed nvlist are not stored,
        // and a phys_path 900 bytes longer needs them.
        let small = d.file("small.qcow2")
        try Self.pack(fixture, ["qcow2", "-o", "cluster_size=512", "-S", "512"], to: small)
        try Self.refused(small, ["set", "IMG", "--phys-path", "/" + String(repeating: "p", count: 900)], reason: "is not allocated")
    }
}

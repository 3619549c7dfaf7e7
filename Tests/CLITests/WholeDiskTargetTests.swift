import Foundation
import Testing
import TestSupport
import ZLabel

/// Issue 4's proof: `zlabel set --target` on every whole-disk layout, judged by real ZFS and GRUB 2.
@Suite("EC2 targets on whole disks")
struct WholeDiskTargetTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: String
        var target: String
        /// What the labels must hold afterwards; `nil` phys_path means "as it was".
        var physPath: String?
        var path: String
        var testDescription: String { "\(target) on \(fixture)" }
    }

    static let original = "/pci@0,0/pci1af4,2@4/blkdev@0,0:a"

    /// Expected strings, from the vbd formulas and the illumos minor names in ec2-boot-devices.md: /dev/sda is
    /// vbd 2048 and /dev/xvda 51712; the pool's slice gives the minor (s0 → a, s1 → b) and the /dev/dsk slice.
    static let cases: [Case] = [
        ("disk-vtoc.img", "s0", "a"), ("disk-gpt.img", "s0", "a"), ("disk-gpt-linux.img", "s0", "a"),
        ("disk-gpt-esp.img", "s1", "b"),
    ].flatMap { fixture, slice, minor in
        [
            Case(fixture: fixture, target: "ec2-xen-pv", physPath: "/xpvd/xdf@2048:\(minor)", path: "/dev/dsk/c1t2048d0\(slice)"),
            Case(fixture: fixture, target: "ec2-xen-hvm", physPath: "/xpvd/xdf@51712:\(minor)", path: "/dev/dsk/c1t0d0\(slice)"),
            Case(fixture: fixture, target: "ec2-nitro", physPath: nil, path: "/dev/dsk/c1t0d0s0"),
        ]
    }

    @Test("each target on each layout: the slice passes zdb's checks with the target's strings and no devid",
          .oracle(.zlabelJSON, .zdbCheck), arguments: cases)
    func targetOnWholeDisk(_ c: Case) throws {
        let fixture = try Fixture.named(c.fixture)
        let partition = try #require(fixture.partition)
        let scratch = try Fixture.scratchCopy(c.fixture)
        let before = try Data(contentsOf: scratch.url)

        let run = try ZLabelCLI.run(["set", scratch.url.path, "--target", c.target,
                                     "--backup", scratch.directory.file("backup").path])
        #expect(run.status == 0, "\(run)")

        let device = Oracle.Device(scratch.url, fixture: fixture)
        let dump = try Oracle.zlabelJSON(device)
        #expect(dump.labelsValid == 4, "\(dump.result)")
        for label in dump.labels {
            let tree = label.config?["vdev_tree"]
            #expect(tree?["phys_path"]?.string == (c.physPath ?? Self.original), "label \(label.index)")
            #expect(tree?["path"]?.string == c.path, "label \(label.index)")
            #expect(tree?["devid"] == nil, "label \(label.index) still has a devid")
        }
        let check = try Oracle.zdbCheck([device], expect: ["phys_path": c.physPath ?? Self.original, "path": c.path],
                                        fast: true)
        #expect(check.succeeded, "\(check)")

        // Nothing outside the slice's four config areas changed.
        let after = try Data(contentsOf: scratch.url)
        #expect(after.count == before.count)
        var allowed = (0..<LabelLayout.labelCount).map { i -> Range<Int> in
            let start = Int(partition.offset + LabelLayout.labelOffset(i, vdevSize: partition.size)) + LabelLayout.configOffset
            return start..<(start + LabelLayout.configSize)
        }
        allowed.append(after.count..<after.count)
        var cursor = 0
        for range in allowed {
            #expect(before[cursor..<range.lowerBound] == after[cursor..<range.lowerBound],
                    "bytes changed between \(cursor) and \(range.lowerBound)")
            cursor = range.upperBound
        }
    }

    @Test("GRUB 2 reads the new boot path from the GPT partition", .oracle(.grub),
          arguments: ["disk-gpt.img", "disk-gpt-esp.img"])
    func grubSeesTheNewBootPath(_ name: String) throws {
        let fixture = try Fixture.named(name)
        let partition = try #require(fixture.partition)
        let scratch = try Fixture.scratchCopy(name)
        // GRUB 2 passes bootpath only when the leaf has a devid too, so give it one here.
        let run = try ZLabelCLI.run(["set", scratch.url.path, "--target", "ec2-xen-hvm", "--devid", "id1,xdf@zlabel/a",
                                     "--backup", scratch.directory.file("backup").path])
        #expect(run.status == 0, "\(run)")
        let view = try Oracle.grubBootpath([Oracle.Device(scratch.url)], partition: partition.grubPartition)
        let minor = partition.slice == "s1" ? "b" : "a"
        #expect(view.bootpath == "/xpvd/xdf@51712:\(minor)", "\(view.result)")
        #expect(view.diskdevid == "id1,xdf@zlabel/a", "\(view.result)")
    }
}

import Foundation
import Testing
import TestSupport

/// Proves the test harness itself on this machine: every fixture unpacks, the catalogue in `Fixture.all` says what
/// real ZFS says about each image, and every oracle script runs. If these fail in CI, fix the environment
/// (scripts/setup-test-env.sh) or the catalogue before trusting any other oracle test.
@Suite("Oracle harness")
struct OracleHarnessTests {
    @Test("every fixture decompresses to its recorded size", arguments: Fixture.all)
    func decompresses(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber
        #expect(size?.uint64Value == fixture.size)
        #expect(url.path.hasPrefix(Repository.fixtureCache.path))
    }

    @Test("real ZFS agrees with the fixture catalogue", .oracle(.zlabelJSON), arguments: Fixture.all)
    func catalogueMatchesOracle(_ fixture: Fixture) throws {
        let dump = try Oracle.zlabelJSON(Oracle.Device(try fixture.url(), fixture: fixture))
        #expect(dump.labelsValid == fixture.validLabels, "\(dump.result)")
        #expect((dump.result.status == 0) == (fixture.validLabels == 4))
        if let partition = fixture.partition {
            #expect(dump.alignedSize == partition.size)
        }
        for label in dump.labels where label.isValid {
            let config = try #require(label.config)
            #expect(label.byteSwapped == (fixture.byteOrder == .big), "label \(label.index)")
            #expect(config["name"]?.string == fixture.poolName)
            #expect(config["version"]?.uint64 == fixture.poolVersion)
            #expect(config["state"]?.uint64 == fixture.state)
            let tree = try #require(config["vdev_tree"])
            let children = tree["children"]?.array ?? []
            switch fixture.layout {
            case .single:
                #expect(["disk", "file"].contains(tree["type"]?.string ?? ""))
                #expect(children.isEmpty)
                #expect(tree["guid"]?.uint64 == config["guid"]?.uint64)
            case .mirror(let width):
                #expect(tree["type"]?.string == "mirror")
                #expect(children.count == width)
            case .raidz(let parity, let width):
                #expect(tree["type"]?.string == "raidz")
                #expect(children.count == width)
                // pools before version 3 have no nparity and mean raidz1
                #expect(tree["nparity"]?.int ?? 1 == parity)
            }
            if let index = fixture.childIndex {
                // this image is the child whose guid the label names as its own
                #expect(children[safe: index]?["guid"]?.uint64 == config["guid"]?.uint64)
                #expect(fixture.members.count == children.count)
            }
            #expect(label.bestUberblock?.checksumValid == true, "label \(label.index) has no valid uberblock")
        }
        // an invalid label is one real ZFS could not unpack or whose checksum it rejects
        for label in dump.labels where !label.isValid {
            #expect(fixture.validLabels < 4, "label \(label.index) of \(fixture) is not valid")
        }
    }

    @Test("guids above 2^53 come through exactly", .oracle(.zlabelJSON))
    func exactGuids() throws {
        // rpool-kvm.img's vdev guid is 16434441236424571549 > 2^53 (see Fixtures/MANIFEST.txt)
        let dump = try Oracle.zlabelJSON(try Fixture.image("rpool-kvm.img"))
        let config = try #require(dump.labels[0].config)
        let guid = try #require(config["guid"]?.uint64)
        #expect(guid > 1 << 53)
        #expect(config[path: "vdev_tree.guid"]?.uint64 == guid)
        // Foundation's own parser on Linux keeps it too (checked here so that a regression shows up)
        let any = try JSONSerialization.jsonObject(with: dump.result.stdout) as? [String: Any]
        let labels = any?["labels"] as? [[String: Any]]
        let foundationGuid = (labels?.first?["config"] as? [String: Any])?["guid"] as? NSNumber
        #expect(foundationGuid?.uint64Value == guid)
    }

    @Test("ExactJSON keeps member order, escapes and exact integers")
    func jsonValue() throws {
        let doc = try ExactJSON.parse(#"{"b":18446744073709551615,"a":[-1,1.5e3,true,null],"s":"x\"\u00e9\ud83d\ude00\n"}"#)
        #expect(doc.keys == ["b", "a", "s"])
        #expect(doc["b"]?.uint64 == UInt64.max)
        #expect(doc["a"]?[0]?.int64 == -1)
        #expect(doc["a"]?[1]?.double == 1500)
        #expect(doc["a"]?[2]?.bool == true)
        #expect(doc["a"]?[3]?.isNull == true)
        #expect(doc[path: "a[2]"]?.bool == true)
        #expect(doc["s"]?.string == "x\"é😀\n")
        #expect(try ExactJSON.parse(doc.description) == doc)
        #expect(throws: ExactJSON.ParseError.self) { try ExactJSON.parse("{\"a\":01}") }
        #expect(throws: ExactJSON.ParseError.self) { try ExactJSON.parse("[1,]") }
        #expect(throws: ExactJSON.ParseError.self) { try ExactJSON.parse(String(repeating: "[", count: 600)) }
    }

    @Test("whole disks hold rpool-kvm.img's labels at the recorded partition", .oracle(.zlabelJSON),
          arguments: Fixture.all.filter { !$0.isBareVdev })
    func wholeDiskPartition(_ disk: Fixture) throws {
        let pool = try Oracle.zlabelJSON(try Fixture.image("rpool-kvm.img"))
        let inDisk = try Oracle.zlabelJSON(Oracle.Device(try disk.url(), fixture: disk))
        for i in 0..<4 {
            #expect(inDisk.labels[i].config == pool.labels[i].config, "label \(i)")
        }
        // and the whole image at offset 0 is not a vdev
        let whole = try Oracle.zlabelJSON(try disk.url())
        #expect(whole.labels[0].isValid == false)
    }

    @Test("a scratch copy is private: damage it, the oracle sees it, the cache does not", .oracle(.zlabelJSON, .labelTool))
    func scratchCopyIsolation() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        try Oracle.flipByte(in: scratch.url, label: 1, at: 0x5000)  // unused nvlist tail: checksum only
        let damaged = try Oracle.zlabelJSON(scratch.url)
        #expect(damaged.result.status == 1)
        #expect(damaged.labels.map(\.checksumValid) == [true, false, true, true])
        #expect(damaged.labels[1].unpacked)
        let pristine = try Oracle.zlabelJSON(try Fixture.image("rpool-kvm.img"))
        #expect(pristine.labelsValid == 4)
    }

    @Test("zdb-check accepts a fixture pool and names a broken one", .oracle(.zdbCheck, .labelTool))
    func zdbCheck() throws {
        let good = try Oracle.zdbCheck(
            [Oracle.Device(try Fixture.image("rpool-kvm-to-xen.img"))],
            expect: ["phys_path": "/xpvd/xdf@51712:a", "path": "/dev/dsk/c2t0d0s0"], fast: true)
        #expect(good.succeeded, "\(good)")
        let disk = try Fixture.named("disk-vtoc.img")
        let slice = try Oracle.zdbCheck([Oracle.Device(try disk.url(), fixture: disk)], fast: true, isolation: false)
        #expect(slice.succeeded, "\(slice)")
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        for label in 0..<2 { try Oracle.flipByte(in: scratch.url, label: label, at: 0x5000) }
        let bad = try Oracle.zdbCheck([Oracle.Device(scratch.url)], fast: true)
        #expect(!bad.succeeded)
        #expect(bad.stdoutText.contains("label 0 alone does not import"), "\(bad)")
    }

    @Test("GRUB reads the boot path of a fixture", .oracle(.grub))
    func grub() throws {
        let view = try Oracle.grubBootpath(
            [Oracle.Device(try Fixture.image("rpool-kvm.img"))], dataset: "ROOT/omnios", cat: "/ROOT/omnios@/etc/motd")
        #expect(view.pool == "rpool")
        #expect(view.bootpath == "/pci@0,0/pci1af4,2@4/blkdev@0,0:a")
        #expect(view.diskdevid == "id1,kdev@AQM00001___________/a")
        #expect(view.catOutput?.contains("OmniOS test image") == true, "\(view.result)")
        let esp = try Fixture.named("disk-gpt-esp.img")
        let inDisk = try Oracle.grubBootpath([Oracle.Device(try esp.url())], partition: esp.partition?.grubPartition)
        #expect(inDisk.bootpath == view.bootpath)
    }

    @Test("OpenZFS 2.3: zdb flags bad label checksums, zhack repairs little-endian labels", .oracle(.zfs23, .labelTool))
    func zfs23() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let before = try Data(contentsOf: scratch.url)
        #expect(try Oracle.zdb23BadChecksumLabels(scratch.url) == [])
        // all checksums good: repairing changes nothing (and zhack exits 1, "nothing repaired")
        let repair = try Oracle.zhackRepairChecksums(scratch.url)
        #expect(repair.status == 1, "\(repair)")
        #expect(try Data(contentsOf: scratch.url) == before)
        try Oracle.flipByte(in: scratch.url, label: 2, at: 0x5000)
        #expect(try Oracle.zdb23BadChecksumLabels(scratch.url) == [2])
        _ = try Oracle.zhackRepairChecksums(scratch.url)
        #expect(try Oracle.zdb23BadChecksumLabels(scratch.url) == [])
        #expect(try Oracle.zlabelJSON(scratch.url).labelsValid == 4)
    }

    @Test("OpenZFS 2.3: zhack label repair breaks big-endian labels (so it is no oracle for them)",
          .oracle(.zfs23, .zlabelJSON))
    func zhackBigEndian() throws {
        let scratch = try Fixture.scratchCopy("zfs-pool-v15.dat")
        #expect(try Oracle.zlabelJSON(scratch.url).labelsValid == 4)
        let repair = try Oracle.zhackRepairChecksums(scratch.url)
        #expect(repair.status == 0, "\(repair)")
        // zhack writes the checksum trailer in host order: libzpool no longer accepts any label.
        // If this starts failing, zhack was fixed and may serve as a big-endian oracle too.
        let after = try Oracle.zlabelJSON(scratch.url)
        #expect(after.labelsValid == 0, "\(after.result)")
    }

    @Test("real ZFS imports a fixture read-only", .oracle(.reimport))
    func reimport() throws {
        let scratch = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
        let result = try Oracle.reimport(scratch.urls)
        #expect(result.succeeded, "\(result)")
    }

    @Test("zdb -l of zfs-broken-mirror1 shows the missing label 2", .oracle(.zdb))
    func zdbLabel() throws {
        let result = try Oracle.zdbLabel(try Fixture.image("zfs-broken-mirror1.dat"))
        #expect(result.status != 0)
        #expect(result.stdoutText.contains("labels = 0 1 3"), "\(result)")
    }

    @Test("in CI every oracle is installed")
    func everyOracleInCI() throws {
        guard Oracle.isCI else { return }
        for tool in Oracle.Tool.allCases {
            #expect(Oracle.missingPrerequisite(tool) == nil, "\(tool)")
        }
    }

    @Test("the zlabel executable is found and runs")
    func cli() throws {
        let help = try ZLabelCLI.run("--help")
        #expect(help.status == 0, "\(help)")
        #expect(help.stdoutText.lowercased().contains("usage"), "\(help)")
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

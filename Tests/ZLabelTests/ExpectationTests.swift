import Foundation
import Testing
import TestSupport
import ZLabel

/// The library side of `zlabel expect`: parsing, the report a Swift test hands to `#expect`, damaged labels,
/// and `bootfs` judged by zdb.
@Suite("Expectation and ExpectationReport")
struct ExpectationTests {
    // MARK: parsing

    @Test("parsing: subjects, scopes, and the text round trip", arguments: [
        "phys_path=/xpvd/xdf@51712:a", "state=exported", "hostid=absent", "labels=4", "checksums=valid",
        "bootfs=rpool/ROOT/omnios", "vdev_tree.children[0].devid=id1,sd@x", "label[0,1].hostname=omnios",
        "leaf[/dev/dsk/c1t1d0s0].phys_path=/pci@0,0/pci1af4,2@5/blkdev@0,0:a", "leaf[123].devid=absent",
        "label[3].leaf[42].whole_disk=0", "features_for_read[\"com.delphix:hole_birth\"]=true",
    ])
    func roundTrip(_ text: String) throws {
        let e = try Expectation(parsing: text)
        #expect(e.description == text)
        #expect(try Expectation(parsing: e.description) == e)
    }

    @Test func subjects() throws {
        #expect(try Expectation(parsing: "phys_path=/x").subject == .leaf(.own, "phys_path"))
        #expect(try Expectation(parsing: "hostid=absent") == Expectation(.config("hostid"), .absent))
        #expect(try Expectation(parsing: "leaf[0x10].path=/p").subject == .leaf(.guid(16), "path"))
        #expect(try Expectation(parsing: "leaf[/dev/dsk/c1t0d0s0].path=/p").subject == .leaf(.path("/dev/dsk/c1t0d0s0"), "path"))
        #expect(try Expectation(parsing: "label[3,1,1].state=1").labels == [1, 3])
        #expect(try Expectation(parsing: "labels=4").subject == .validLabels)
        #expect(try Expectation(parsing: "vdev_tree.children[1].path=x").subject == .config("vdev_tree.children[1].path"))
    }

    @Test("malformed expectations throw, naming the text and the reason", arguments: [
        ("phys_path", "no '=': write KEY=VALUE"),
        ("phys_path=", "empty value: give a value, or 'absent'"),
        ("=x", "no key before '='"),
        ("labels=five", "labels=N takes a count from 0 to 4"),
        ("labels=5", "labels=N takes a count from 0 to 4"),
        ("label[0].labels=4", "'labels' counts the vdev's labels; it takes no label[…] scope"),
        ("label[4].path=/x", "label[4]: label indices are 0, 1, 2 and 3"),
        ("label[0.path=/x", "unclosed 'label['"),
        ("label[0]path=/x", "a scope is followed by '.' and the key"),
        ("leaf[].path=/x", "leaf[]: give a guid or a path"),
        ("leaf[1].bootfs=x", "'bootfs' is not a leaf's value; drop the leaf[…] scope"),
        ("label[1].bootfs=x", "'bootfs' is read from the pool's MOS; it takes no label[…] scope"),
        ("state=bogus", "state is one of active, exported, destroyed, spare, l2cache, uninitialized, unavail, potentially_active, or a number"),
        ("checksums=bad", "the only value of 'checksums' is 'valid'"),
    ])
    func malformed(_ text: String, _ reason: String) {
        #expect(throws: ExpectationError(text: text, reason: reason)) { try Expectation(parsing: text) }
    }

    @Test func malformedPathReportsThePathError() throws {
        let error = try #require(throws: ExpectationError.self) { try Expectation(parsing: "vdev_tree..x=1") }
        #expect(error.text == "vdev_tree..x=1")
        #expect(error.reason.contains("empty name"), "\(error)")
    }

    // MARK: the report

    @Test("the report a golden-image test hands to #expect: holds, or one line per failure")
    func reportForSwiftTesting() throws {
        let path = try Fixture.image("rpool-kvm.img").path
        let labels = try ImageFile(path: path).readLabels(in: VdevRegion(offset: 0, size: 64 << 20))
        let config = try #require(labels.config)
        let phys = try #require(config.vdevLeaves.first?.physPath)
        let hostid = try #require(config.uint64("hostid"))

        let good = try ExpectationReport.check(["phys_path=\(phys)", "labels=4", "checksums=valid",
                                                "hostid=0x\(String(hostid, radix: 16))"], images: [path])
        #expect(good.holds, "\(good)")
        #expect(good.outcomes.count == 4 + 1 + 4 + 4)
        #expect(good.description == "all 13 checks hold")

        let bad = try ExpectationReport.check(["phys_path=/xpvd/xdf@51712:a", "hostid=absent"], images: [path])
        #expect(!bad.holds)
        #expect(bad.failures.count == 8)
        #expect(bad.description.split(separator: "\n") == (0..<4).map {
            "\(path): label \($0): expected phys_path=/xpvd/xdf@51712:a, found phys_path=\(phys)"
        } + (0..<4).map { "\(path): label \($0): expected hostid=absent, found hostid=\(hostid)" })
        #expect(bad.failures.allSatisfy { $0.region == nil && $0.label != nil })
    }

    @Test("a damaged label fails checksums=valid and labels=4 there, and still reports its values")
    func damagedLabel() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        // A byte in the zero padding after the packed nvlist of label 1: the list still unpacks, the
        // checksum no longer matches.
        let handle = try FileHandle(forUpdating: scratch.url)
        try handle.seek(toOffset: UInt64(LabelLayout.labelSize + LabelLayout.configOffset + LabelLayout.configCapacity - 8))
        try handle.write(contentsOf: Data([0x5A]))
        try handle.close()
        let path = scratch.url.path
        let report = try ExpectationReport.check(["labels=4", "checksums=valid", "label[1].state=exported"],
                                                 images: [path])
        #expect(report.description.split(separator: "\n") == [
            "\(path): expected labels=4, found labels=3 (label 1 checksum-mismatch)",
            "\(path): label 1: expected checksums=valid, found checksums=checksum-mismatch",
        ])
    }

    @Test("an image without a vdev fails every expectation once")
    func noVdev() throws {
        let directory = try TemporaryDirectory()
        let url = directory.file("zeros.img")
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data(count: 8 << 20)))
        let report = try ExpectationReport.check(["labels=4", "state=exported"], images: [url.path])
        #expect(report.description.split(separator: "\n") == [
            "\(url.path): expected labels=4, found labels=0 (label 0 absent, label 1 absent, label 2 absent, label 3 absent)",
            "\(url.path): label 0: expected state=exported, found (no config: the label is absent)",
            "\(url.path): label 1: expected state=exported, found (no config: the label is absent)",
            "\(url.path): label 2: expected state=exported, found (no config: the label is absent)",
            "\(url.path): label 3: expected state=exported, found (no config: the label is absent)",
        ])
    }

    // MARK: bootfs, judged by zdb

    /// The pool's bootfs dataset as zdb reads it: `pool_props` in the object directory, `bootfs` in that ZAP,
    /// and the dataset with that object number; `nil` when the property is not set.
    static func zdbBootfs(_ images: [URL], pool: String) throws -> String? {
        try Oracle.require(.zdb)
        let dir = try TemporaryDirectory(prefix: "zlabel-expect-zdb")
        for image in images {
            try FileManager.default.createSymbolicLink(at: dir.file(image.lastPathComponent), withDestinationURL: image)
        }
        func zdb(_ arguments: [String]) throws -> String {
            let result = try Run.run("zdb", ["-e", "-p", dir.url.path] + arguments, timeout: 120)
            guard result.succeeded else { throw OracleError.failed(result) }
            return result.stdoutText
        }
        func entry(_ name: String, _ text: String) -> String? {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == name { return parts[1] }
            }
            return nil
        }
        guard let props = entry("pool_props", try zdb(["-dddd", pool, "1"])) else { return nil }
        guard let object = entry("bootfs", try zdb(["-dddd", pool, props])) else { return nil }
        for line in try zdb(["-d", pool]).split(separator: "\n") where line.hasPrefix("Dataset ") {
            if line.contains(", ID \(object),") { return String(line.dropFirst(8).prefix { $0 != " " }) }
        }
        return nil
    }

    @Test("bootfs equals zdb's, once per pool, from every member", .oracle(.zdb),
          arguments: ["rpool-kvm.img", "rpool-mirror-0.img", "rpool-v28.img", "tank-raidz-0.img", "zfs-pool-v15.dat"])
    func bootfs(_ name: String) throws {
        let urls = try Fixture.pool(of: name).map { try $0.url() }
        let pool = try Fixture.named(name).poolName
        let expected = try Self.zdbBootfs(urls, pool: pool)
        let holds = try ExpectationReport.check(["bootfs=\(expected ?? "absent")"], images: urls.map(\.path))
        #expect(holds.holds, "\(holds)")
        #expect(holds.outcomes.count == 1)
        #expect(holds.outcomes.first?.image == urls.map(\.path).joined(separator: "+"))

        let wrong = try ExpectationReport.check(["bootfs=\(pool)/ROOT/other"], images: urls.map(\.path))
        #expect(wrong.description
            == "\(urls.map(\.path).joined(separator: "+")): expected bootfs=\(pool)/ROOT/other, found bootfs=\(expected ?? "absent")")
    }

    @Test("whole disks: the pool's partition is found and named", .oracle(.zdb))
    func wholeDiskBootfs() throws {
        let expected = try #require(try Self.zdbBootfs([try Fixture.image("rpool-kvm.img")], pool: "rpool"))
        for fixture in Fixture.all where fixture.partition != nil {
            let url = try fixture.url()
            let report = try ExpectationReport.check(["bootfs=\(expected)", "labels=4", "checksums=valid"],
                                                     images: [url.path])
            #expect(report.holds, "\(fixture): \(report)")
            #expect(report.outcomes.filter { $0.region != nil }.count == 5, "\(fixture)")
            // The same pool through an explicit byte range.
            let partition = try #require(fixture.partition)
            let ranged = try ExpectationReport.check(["labels=4"], images: ["\(url.path)@\(partition.offset):\(partition.size)"])
            #expect(ranged.holds, "\(ranged)")
        }
    }
}

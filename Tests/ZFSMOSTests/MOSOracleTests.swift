import Foundation
import Testing
import TestSupport
import ZLabel

/// `zdb -e -p DIR -C POOL` on a directory holding exactly `images`: the MOS config as real ZFS reads it.
private func zdbMOSConfig(_ images: [URL], pool: String) throws -> String {
    try Oracle.require(.zdb)
    let dir = try TemporaryDirectory(prefix: "zlabel-mos-zdb")
    for image in images {
        try FileManager.default.createSymbolicLink(at: dir.file(image.lastPathComponent), withDestinationURL: image)
    }
    let result = try Run.run("zdb", ["-e", "-p", dir.url.path, "-C", pool], timeout: 120)
    guard result.succeeded else { throw OracleError.failed(result) }
    // zdb starts with a blank line; the rest is "MOS Configuration:" and the nvlist.
    var text = result.stdoutText
    if text.hasPrefix("\n") { text.removeFirst() }
    return text
}

private func inspect(_ urls: [URL]) throws -> PoolInspection {
    try PoolInspection(paths: urls.map { ($0.path, nil) })
}

/// One case: the images given (a subset of a pool's members) and the pool name.
struct MOSCase: Sendable, CustomTestStringConvertible {
    let images: [String]
    let pool: String
    var testDescription: String { images.joined(separator: "+") }
}

@Suite struct MOSOracleTests {
    static let cases: [MOSCase] = [
        MOSCase(images: ["rpool-kvm.img"], pool: "rpool"),
        MOSCase(images: ["rpool-kvm-to-xen.img"], pool: "rpool"),
        MOSCase(images: ["rpool-mirror-0.img", "rpool-mirror-1.img"], pool: "rpool"),
        MOSCase(images: ["rpool-mirror-0.img"], pool: "rpool"),
        MOSCase(images: ["rpool-mirror-1.img"], pool: "rpool"),
        MOSCase(images: ["rpool-v28.img"], pool: "rpool"),
        MOSCase(images: ["tank-raidz-0.img", "tank-raidz-1.img", "tank-raidz-2.img"], pool: "tank"),
        MOSCase(images: ["zfs-pool-v15.dat"], pool: "v15-pool"),
        MOSCase(images: ["zfs-pool-v2mirror1.dat", "zfs-pool-v2mirror2.dat", "zfs-pool-v2mirror3.dat"], pool: "pool-v2mirror"),
        MOSCase(images: ["zfs-pool-v2mirror2.dat"], pool: "pool-v2mirror"),
        MOSCase(images: ["zfs-pool-v2raidz1.dat", "zfs-pool-v2raidz2.dat", "zfs-pool-v2raidz3.dat"], pool: "pool-v2raidz"),
        MOSCase(images: ["zfs-broken-mirror1.dat", "zfs-broken-mirror2.dat"], pool: "zfs-broken-mirror"),
        MOSCase(images: ["cryptv0.dat"], pool: "cryptv0"),
        MOSCase(images: ["unclean_export.dat"], pool: "unclean_export"),
    ]

    @Test(.oracle(.zdb), arguments: cases)
    func mosConfigEqualsZdb(_ c: MOSCase) throws {
        let urls = try c.images.map { try Fixture.image($0) }
        let expected = try zdbMOSConfig(urls, pool: c.pool)
        let pool = try inspect(urls)
        #expect(pool.mos.zdbText == expected)
        #expect(pool.poolName == c.pool)
    }

    @Test(.oracle(.zdb)) func wholeDiskImagesReadThePoolPartition() throws {
        let expected = try zdbMOSConfig([try Fixture.image("rpool-kvm.img")], pool: "rpool")
        for name in ["disk-gpt.img", "disk-gpt-esp.img", "disk-vtoc.img"] {
            #expect(try inspect([try Fixture.image(name)]).mos.zdbText == expected, "\(name)")
        }
    }

    @Test func bootfsIsNamedWithItsObjectNumber() throws {
        let pool = try inspect([try Fixture.image("rpool-kvm.img")])
        let bootfs = try #require(pool.mos.bootfs)
        #expect(bootfs.name == "rpool/ROOT/omnios")
        #expect(bootfs.object > 0)
        #expect(pool.mos.bootfsProblem == nil)
        let v28 = try #require(try inspect([try Fixture.image("rpool-v28.img")]).mos.bootfs)
        #expect(v28.name == "rpool/ROOT/omnios")
        // a data pool without bootfs
        #expect(try inspect([try Fixture.image("zfs-pool-v15.dat")]).mos.bootfs == nil)
    }

    @Test(.oracle(.grub)) func bootfsObjectEqualsGrubs() throws {
        let url = try Fixture.image("rpool-kvm.img")
        let grub = try Oracle.grubBootpath([Oracle.Device(url)], dataset: "ROOT/omnios")
        let pool = try inspect([url])
        #expect(grub.mdnobj == String(try #require(pool.mos.bootfs).object))
    }

    @Test func compressionsSeenInTheFixtures() throws {
        // lz4 metadata on a feature pool, lzjb on old ones: reading the MOS verified and decoded both.
        let kvm = try inspect([try Fixture.image("rpool-kvm.img")]).objectSet()
        #expect(kvm.metaDnode.blockPointers[0].compression == 15)
        let v15 = try inspect([try Fixture.image("zfs-pool-v15.dat")]).objectSet()
        #expect(v15.metaDnode.blockPointers[0].compression == 3)
        #expect(v15.metaDnode.blockPointers[0].byteOrder == .big)
        #expect(try v15.dnode(1).type == 1)
    }

    @Test func microAndFatZAPObjectDirectories() throws {
        // v15 keeps a microzap object directory, cryptv0 a fat one (zfs-on-disk.md §8).
        for name in ["zfs-pool-v15.dat", "cryptv0.dat", "rpool-kvm.img"] {
            let pool = try inspect([try Fixture.image(name)])
            let names = Set(pool.mos.objectDirectory.map(\.name))
            #expect(names.isSuperset(of: ["config", "root_dataset"]), "\(name): \(names)")
        }
    }

    @Test func raidzWithAMissingMemberIsRefusedClearly() throws {
        let error = #expect(throws: MOSError.self) {
            _ = try inspect([try Fixture.image("tank-raidz-0.img"), try Fixture.image("tank-raidz-1.img")])
        }
        #expect(error?.description.contains("parity reconstruction") == true, "\(String(describing: error))")
    }

    @Test func imagesOfTwoPoolsAreRefused() throws {
        let error = #expect(throws: MOSError.self) {
            _ = try inspect([try Fixture.image("rpool-kvm.img"), try Fixture.image("zfs-pool-v15.dat")])
        }
        #expect(error?.code == .unsupported)
    }

    @Test func corruptMOSBlockNamesObjectLevelBlkidAndDVA() throws {
        let original = try inspect([try Fixture.image("rpool-kvm.img")])
        let os = try original.objectSet()
        let directory = try os.dnode(1)
        let bp = directory.blockPointers[0]
        #expect(bp.level == 0 && !bp.isEmbedded)
        let dvas = bp.dvas.filter { !$0.isEmpty }
        #expect(dvas.count >= 2, "MOS blocks carry ditto copies")

        // Damage the first copy only: the next DVA is read instead.
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let handle = try FileHandle(forUpdating: scratch.url)
        defer { try? handle.close() }
        func damage(_ dva: DVA) throws {
            try handle.seek(toOffset: dva.offset + 4 * 1024 * 1024 + 17)
            let byte = try #require(try handle.read(upToCount: 1))
            try handle.seek(toOffset: dva.offset + 4 * 1024 * 1024 + 17)
            try handle.write(contentsOf: Data([byte[0] ^ 0xFF]))
            try handle.synchronize()
        }
        try damage(dvas[0])
        #expect(try inspect([scratch.url]).mos.config == original.mos.config)

        for dva in dvas.dropFirst() { try damage(dva) }
        let error = #expect(throws: MOSError.self) { _ = try inspect([scratch.url]) }
        #expect(error?.code == .checksum)
        let text = error.map(String.init(describing:)) ?? ""
        #expect(text.contains("MOS object 1 level 0 blkid 0"), "\(text)")
        for (i, dva) in dvas.enumerated() {
            #expect(text.contains("DVA[\(i)]=\(dva)"), "\(text)")
        }
        #expect(text.contains("fletcher4 checksum mismatch"), "\(text)")
    }
}

@Suite struct InspectMOSCLITests {
    @Test(.oracle(.zdb)) func inspectMosPrintsZdbsConfig() throws {
        let urls = try ["rpool-mirror-0.img", "rpool-mirror-1.img"].map { try Fixture.image($0) }
        let run = try ZLabelCLI.run(["inspect", "--mos"] + urls.map(\.path))
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText == (try zdbMOSConfig(urls, pool: "rpool")))
    }

    @Test func inspectMosJSONAddsMosConfig() throws {
        let url = try Fixture.image("zfs-pool-v15.dat")
        let run = try ZLabelCLI.run(["inspect", "--mos", "--json", url.path])
        #expect(run.status == 0, "\(run)")
        let doc = try ExactJSON.parse(run.stdout)
        #expect(doc.keys == ["schema_version", "vdevs", "mos_config"])
        #expect(doc["vdevs"]?.array?.count == 1)
        #expect(doc[path: "mos_config.name"]?.string == "v15-pool")
        #expect(doc[path: "mos_config.vdev_tree.type"]?.string == "root")
        let plain = try ExactJSON.parse(try ZLabelCLI.run(["inspect", "--json", url.path]).stdout)
        #expect(doc["vdevs"] == plain["vdevs"])
    }

    @Test func moreThanOneImageNeedsMos() throws {
        let url = try Fixture.image("rpool-mirror-0.img")
        let run = try ZLabelCLI.run(["inspect", url.path, url.path])
        #expect(run.status != 0)
    }
}

import DiskPartitions
import Foundation
import Testing

/// Images made by real tools: the shared fixtures, `make-disk-image.py`, sfdisk, fdisk and sgdisk. Each test is
/// skipped locally when its tool or the oracle directory is missing, and fails when `CI=true`.
@Suite struct OracleImageTests {
    /// Decompresses a fixture sparsely into `dir`.
    static func unpack(_ name: String, into dir: URL) throws -> String {
        let compressed = try #require(Tools.fixture("\(name).img.xz"), "fixture \(name).img.xz is missing")
        let out = dir.appendingPathComponent("\(name).img").path
        try Tools.shell("xz -dc \(Tools.quote(compressed.path)) | cp --sparse=always /dev/stdin \(Tools.quote(out))")
        return out
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func fixtureJSON(_ name: String) throws -> [String: Any] {
        let url = try #require(Tools.fixture("\(name).json"), "fixture \(name).json is missing")
        return try json(try String(contentsOf: url, encoding: .utf8))
    }

    static func int(_ value: Any?) throws -> UInt64 {
        UInt64(try #require(value as? Int))
    }

    // MARK: real fixtures

    static let gptFixtures: [(String, ZFSWholeDiskLayout)] = [
        ("disk-gpt", .illumos), ("disk-gpt-linux", .linux), ("disk-gpt-esp", .illumosBootable),
    ]

    @Test(
        .enabled(if: Tools.enabled("xz"), "needs xz"),
        arguments: gptFixtures.filter { Tools.fixtureAvailable("\($0.0).img.xz") })
    func gptFixtureMatchesItsJSON(name: String, flavor: ZFSWholeDiskLayout) throws {
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try FileSource(path: try Self.unpack(name, into: dir))
        let expected = try Self.fixtureJSON(name)
        let layout = try DiskLayout.detect(in: source)

        #expect(layout.diskSize == (try Self.int(expected["image_size"])))
        #expect(layout.schemes == [.gpt])
        #expect(layout.zfsWholeDisk == flavor)
        #expect(layout.gpt?.diskGUID.description.lowercased() == expected["disk_guid"] as? String)
        #expect(layout.warnings.isEmpty)
        let partitions = try #require(expected["partitions"] as? [[String: Any]])
        #expect(layout.regions.count == partitions.count)
        for partition in partitions {
            let number = try Self.int(partition["number"])
            let region = try #require(layout.region(named: "p\(number)"))
            let first = try Self.int(partition["first_lba"])
            let last = try Self.int(partition["last_lba"])
            #expect(region.start == first * 512)
            #expect(region.size == (last - first + 1) * 512)
            let typeText = try #require(partition["type"] as? String)
            #expect(region.type == .gpt(try #require(GUID(typeText))))
            #expect(region.label == partition["name"] as? String)
            #expect(region.illumosSlice == Int(number) - 1)
        }
        let pool = try #require(layout.region(named: "p\(try Self.int(expected["pool_partition"]))"))
        #expect(pool.start == (try Self.int(expected["pool_offset"])))
        #expect(pool.size == (try Self.int(expected["pool_size"])))
        #expect("s\(pool.illumosSlice ?? -1)" == expected["illumos_slice"] as? String)
        #expect(source.log.totalBytes < 64 * 1024, "only the table sectors are read")
    }

    @Test(.enabled(if: Tools.fixtureAvailable("disk-vtoc.img.xz") && Tools.enabled("xz"), "needs xz and disk-vtoc"))
    func vtocFixtureMatchesItsJSON() throws {
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try FileSource(path: try Self.unpack("disk-vtoc", into: dir))
        let expected = try Self.fixtureJSON("disk-vtoc")
        let layout = try DiskLayout.detect(in: source)

        #expect(layout.schemes == [.mbr, .vtoc])
        #expect(layout.warnings.isEmpty)
        let fdisk = try #require(expected["fdisk_partition"] as? [String: Any])
        let p1 = try #require(layout.region(named: "p\(try Self.int(fdisk["number"]))"))
        let partitionStart = try Self.int(fdisk["start_sector"])
        #expect(p1.start == partitionStart * 512)
        #expect(p1.size == (try Self.int(fdisk["sectors"])) * 512)
        #expect(p1.type == .mbr(0xBF) && p1.isBootable && p1.isContainer)

        let vtoc = try #require(expected["vtoc"] as? [String: Any])
        let slices = try #require(vtoc["slices"] as? [String: [String: Any]])
        #expect(layout.regions.filter { $0.scheme == .vtoc }.count == slices.count)
        for (number, slice) in slices {
            let region = try #require(layout.region(named: "s\(number)"))
            #expect(region.start == (partitionStart + (try Self.int(slice["start_sector_in_partition"]))) * 512)
            #expect(region.size == (try Self.int(slice["sectors"])) * 512)
            #expect(
                region.type
                    == .vtoc(tag: UInt16(try Self.int(slice["tag"])), flag: UInt16(try Self.int(slice["flag"]))))
        }
        let poolSlice = try #require(expected["pool_slice"] as? String)
        let pool = try #require(layout.region(named: poolSlice))
        #expect(pool.start == (try Self.int(expected["pool_offset"])))
        #expect(pool.size == (try Self.int(expected["pool_size"])))
        #expect(pool.illumosMinor == "a")
        #expect(source.log.totalBytes < 64 * 1024, "only the table sectors are read")
    }

    // MARK: make-disk-image.py

    /// Runs make-disk-image.py on a 1 MiB stand-in pool (the script does not look inside it).
    static func makeDiskImage(_ arguments: String) throws -> (layout: DiskLayout, json: [String: Any]) {
        let oracle = try #require(Tools.oracleDirectory, "the shared oracle directory is missing")
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pool = dir.appendingPathComponent("pool.img")
        try Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(to: pool)
        let disk = dir.appendingPathComponent("disk.img").path
        let script = oracle.appendingPathComponent("make-disk-image.py").path
        let output = try Tools.shell(
            "python3 \(Tools.quote(script)) \(arguments) \(Tools.quote(pool.path)) \(Tools.quote(disk))")
        return (try DiskLayout.detect(in: try FileSource(path: disk)), try json(output))
    }

    @Test(
        .enabled(if: Tools.oracleEnabled && Tools.enabled("python3"), "needs python3 and make-disk-image.py"),
        arguments: [
            ("--layout gpt --start 256", ZFSWholeDiskLayout.illumos),
            ("--layout gpt --start 2048", .linux),
            ("--layout gpt --start 256 --esp 1", .illumosBootable),
            ("--layout gpt --start 2048 --esp 1", .illumosBootable),
        ])
    func generatedGPTImages(arguments: String, flavor: ZFSWholeDiskLayout) throws {
        let (layout, expected) = try Self.makeDiskImage(arguments + " --seed test")
        #expect(layout.zfsWholeDisk == flavor)
        #expect(layout.warnings.isEmpty)
        let partitions = try #require(expected["partitions"] as? [[String: Any]])
        #expect(layout.regions.map(\.name) == (try partitions.map { "p\(try Self.int($0["number"]))" }))
        let pool = try #require(layout.region(named: "p\(try Self.int(expected["pool_partition"]))"))
        #expect(pool.name == flavor.dataPartition)
        #expect(pool.start == (try Self.int(expected["pool_offset"])))
        #expect(pool.size == (try Self.int(expected["pool_size"])))
        #expect("s\(pool.illumosSlice ?? -1)" == expected["illumos_slice"] as? String)
        #expect(pool.illumosMinor == (flavor == .illumosBootable ? "b" : "a"))
    }

    @Test(.enabled(if: Tools.oracleEnabled && Tools.enabled("python3"), "needs python3 and make-disk-image.py"))
    func generatedVTOCImage() throws {
        let (layout, expected) = try Self.makeDiskImage("--layout mbr-vtoc --part-start 4096")
        #expect(layout.schemes == [.mbr, .vtoc])
        let pool = try #require(layout.region(named: "s0"))
        #expect(pool.start == (try Self.int(expected["pool_offset"])))
        #expect(pool.size == (try Self.int(expected["pool_size"])))
        #expect(layout.region(named: "p1")?.start == 4096 * 512)
    }

    // MARK: sfdisk, fdisk, sgdisk

    @Test(.enabled(if: Tools.enabled("sfdisk", "truncate"), "needs sfdisk"))
    func sfdiskExtendedAndLogicalPartitions() throws {
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("mbr.img").path
        try Tools.shell("truncate -s 32M \(Tools.quote(image))")
        try Tools.shell(
            "sfdisk --quiet \(Tools.quote(image))",
            stdin: """
                label: dos
                start=2048, size=8192, type=83, bootable
                start=10240, size=40960, type=5
                start=12288, size=8192, type=a5
                start=22528, size=8192, type=83
                start=32768, size=16384, type=bf

                """)
        let layout = try DiskLayout.detect(in: try FileSource(path: image))
        #expect(layout.schemes == [.mbr])
        #expect(layout.regions.map(\.name) == ["p1", "p2", "p5", "p6", "p7"])
        #expect(layout.region(named: "p1")?.isBootable == true)
        #expect(layout.region(named: "p5")?.start == 12288 * 512)
        #expect(layout.region(named: "p6")?.start == 22528 * 512)
        #expect(layout.region(named: "p7")?.size == 16384 * 512)
        #expect(layout.region(named: "p7")?.type == .mbr(0xBF))
        #expect(layout.candidates.map(\.name) == ["p1", "p5", "p6", "p7"])
    }

    @Test(.enabled(if: Tools.enabled("fdisk", "truncate"), "needs fdisk"))
    func fdiskFourKibSectorGPT() throws {
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("gpt4k.img").path
        try Tools.shell("truncate -s 64M \(Tools.quote(image))")
        // g: new GPT; n: partition 1 from LBA 256, 1024 sectors; t: type EFI_USR; w: write.
        try Tools.shell(
            "fdisk -b 4096 \(Tools.quote(image)) >/dev/null",
            stdin: "g\nn\n1\n256\n+1023\nt\n6A898CC3-1DD2-11B2-99A6-080020736631\nw\n")
        let layout = try DiskLayout.detect(in: try FileSource(path: image))
        #expect(layout.sectorSize == 4096)
        #expect(layout.warnings.isEmpty)
        let p1 = try #require(layout.region(named: "p1"))
        #expect(p1.start == 256 * 4096)
        #expect(p1.size == 1024 * 4096)
        #expect(p1.type == .gpt(.illumosUsr))
    }

    /// An sgdisk image like `zpool create` on Linux: p1 BF01 at 2048, p9 BF07 of 8 MiB.
    static func sgdiskImage(in dir: URL) throws -> String {
        let image = dir.appendingPathComponent("sg.img").path
        try Tools.shell("truncate -s 48M \(Tools.quote(image))")
        try Tools.shell(
            "sgdisk -n 1:2048:+16M -t 1:BF01 -c 1:zfs-0123456789abcdef -n 9:0:+8M -t 9:BF07 \(Tools.quote(image))"
                + " >/dev/null")
        return image
    }

    static func patch(_ path: String, at offset: UInt64, xor mask: UInt8) throws {
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [byte ^ mask])
    }

    @Test(.enabled(if: Tools.enabled("sgdisk", "truncate"), "needs sgdisk"))
    func sgdiskLinuxStyleDisk() throws {
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = try DiskLayout.detect(in: try FileSource(path: try Self.sgdiskImage(in: dir)))
        #expect(layout.zfsWholeDisk == .linux)
        #expect(layout.region(named: "p1")?.label == "zfs-0123456789abcdef")
        #expect(layout.region(named: "p9")?.type == .gpt(.illumosReserved))
        #expect(layout.warnings.isEmpty)
    }

    @Test(.enabled(if: Tools.enabled("sgdisk", "truncate"), "needs sgdisk"))
    func sgdiskDamagedPrimaryUsesBackup() throws {
        let dir = try Tools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = try Self.sgdiskImage(in: dir)
        try Self.patch(image, at: 512 + 40, xor: 0x01)  // first usable LBA: header CRC now wrong
        let layout = try DiskLayout.detect(in: try FileSource(path: image))
        let lastLBA = UInt64(48 << 20) / 512 - 1
        #expect(layout.gpt?.usedBackup == true)
        #expect(layout.gpt?.headerLBA == lastLBA)
        #expect(layout.zfsWholeDisk == .linux)
        #expect(layout.warnings.count == 1)
        #expect(layout.warnings.first?.description.contains("primary GPT header CRC32 bad at LBA 1") == true)
        #expect(layout.warnings.first?.message.contains("used the backup header at LBA \(lastLBA)") == true)

        try Self.patch(image, at: lastLBA * 512 + 40, xor: 0x01)
        let error = try #require(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: try FileSource(path: image))
        }
        #expect(error.code == .badChecksum)
        #expect(error.offset == 512 + 16)
    }
}

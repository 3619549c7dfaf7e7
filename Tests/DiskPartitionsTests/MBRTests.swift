import DiskPartitions
import Testing

@Suite struct MBRTests {
    /// p1 Linux, p2 extended holding two logicals (p5, p6), p3 Solaris without a label would be rejected, so none.
    static func extendedDisk() -> TestDisk {
        var disk = TestDisk(size: 32 << 20)
        disk.write(
            mbrSector([
                MBRPart(status: 0x80, type: 0x83, first: 2048, count: 8192),
                MBRPart(type: 0x05, first: 10240, count: 40960),
            ]), at: 0)
        // EBR 1 at 10240: logical at +2048 (12288), 8192 sectors; next EBR at extended+20480 (30720).
        disk.write(
            mbrSector(
                [MBRPart(type: 0x83, first: 2048, count: 8192), MBRPart(type: 0x05, first: 20480, count: 10240)],
                diskSignature: 0), at: 10240 * 512)
        // EBR 2 at 30720: logical at +2048 (32768), 4096 sectors; end of chain.
        disk.write(mbrSector([MBRPart(type: 0x82, first: 2048, count: 4096)], diskSignature: 0), at: 30720 * 512)
        return disk
    }

    @Test func primaryExtendedAndLogicalPartitions() throws {
        let layout = try DiskLayout.detect(in: Self.extendedDisk().source())
        #expect(layout.schemes == [.mbr])
        #expect(layout.mbrDiskSignature == 0x1234_5678)
        #expect(layout.regions.map(\.name) == ["p1", "p2", "p5", "p6"])
        let p1 = try #require(layout.region(named: "p1"))
        #expect(p1.start == 2048 * 512 && p1.size == 8192 * 512 && p1.isBootable && p1.type == .mbr(0x83))
        let p2 = try #require(layout.region(named: "p2"))
        #expect(p2.isContainer && !p2.isVdevCandidate)
        let p5 = try #require(layout.region(named: "p5"))
        #expect(p5.start == 12288 * 512 && p5.size == 8192 * 512 && p5.parent == "p2")
        let p6 = try #require(layout.region(named: "p6"))
        #expect(p6.start == 32768 * 512 && p6.size == 4096 * 512 && p6.type == .mbr(0x82))
        #expect(layout.candidates.map(\.name) == ["p1", "p5", "p6"])
        #expect(layout.warnings.isEmpty)
    }

    @Test func ebrLoopIsCaught() throws {
        var disk = Self.extendedDisk()
        // EBR 2 links back to EBR 1 (relative 0 from the extended start).
        disk.write(
            mbrSector(
                [MBRPart(type: 0x82, first: 2048, count: 4096), MBRPart(type: 0x05, first: 0, count: 10)],
                diskSignature: 0), at: 30720 * 512)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .loop)
        #expect(error.offset == 10240 * 512)
    }

    @Test func overlongEBRChainIsCaught() throws {
        let disk = Self.extendedDisk()
        let error = try #require(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: disk.source(), options: DetectionOptions(maxLogicalPartitions: 1))
        }
        #expect(error.code == .loop)
        #expect(error.message.contains("more than 1"))
    }

    @Test func logicalPastItsExtendedPartitionThrows() throws {
        var disk = Self.extendedDisk()
        disk.write(mbrSector([MBRPart(type: 0x82, first: 2048, count: 20000)], diskSignature: 0), at: 30720 * 512)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .outOfBounds)
        #expect(error.offset == 30720 * 512 + 446)
        #expect(error.message.contains("p6") && error.message.contains("extended partition p2"))
    }

    @Test func ebrWithoutSignatureThrows() throws {
        var disk = Self.extendedDisk()
        disk.write([0, 0], at: 30720 * 512 + 510)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badSignature)
        #expect(error.offset == 30720 * 512 + 510)
    }

    @Test func overlappingPrimariesThrow() throws {
        var disk = TestDisk(size: 8 << 20)
        disk.write(
            mbrSector([MBRPart(type: 0x83, first: 2048, count: 4096), MBRPart(type: 0x83, first: 4000, count: 100)]),
            at: 0)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .overlap)
        #expect(error.offset == 4000 * 512)
    }

    @Test func primaryPastTheEndThrows() throws {
        var disk = TestDisk(size: 8 << 20)
        disk.write(mbrSector([nil, nil, MBRPart(type: 0x83, first: 2048, count: 0xFFFF_FFFF)]), at: 0)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .outOfBounds)
        #expect(error.offset == 446 + 32)
        #expect(error.message.contains("p3"))
    }

    @Test func partitionAtLBA0Throws() throws {
        var disk = TestDisk(size: 8 << 20)
        disk.write(mbrSector([MBRPart(type: 0x83, first: 0, count: 100)]), at: 0)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badEntry)
    }

    @Test func bareVdevHasOneWholeDiskRegion() throws {
        let disk = TestDisk(size: 64 << 20)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.schemes == [.none])
        #expect(layout.regions == [DiskRegion(name: "disk", scheme: .none, start: 0, size: 64 << 20, type: .wholeDisk)])
        #expect(layout.warnings.isEmpty)
    }

    @Test func signatureWithImplausibleEntriesIsNotATable() throws {
        var disk = TestDisk(size: 8 << 20)
        disk.write(mbrSector([MBRPart(status: 0x17, type: 0x83, first: 2048, count: 100)]), at: 0)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.schemes == [.none])
        #expect(layout.regions.map(\.name) == ["disk"])
        #expect(layout.warnings.first?.offset == 446)
    }

    @Test func emptyMBRIsNotATable() throws {
        var disk = TestDisk(size: 8 << 20)
        disk.write(mbrSector([]), at: 0)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.schemes == [.none])
        #expect(layout.warnings.count == 1)
    }

    @Test func forcedFourKibSectors() throws {
        var disk = TestDisk(size: 64 << 20)
        disk.write(mbrSector([MBRPart(type: 0x83, first: 256, count: 1024)]), at: 0)
        let layout = try DiskLayout.detect(in: disk.source(), options: DetectionOptions(sectorSize: 4096))
        #expect(layout.sectorSize == 4096)
        #expect(layout.region(named: "p1")?.start == 256 * 4096)
        #expect(layout.region(named: "p1")?.size == 4 << 20)
        #expect(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: disk.source(), options: DetectionOptions(sectorSize: 1000))
        }
    }

    @Test func tinyImagesAreBare() throws {
        #expect(try DiskLayout.parse(bytes: []).regions.isEmpty)
        #expect(try DiskLayout.parse(bytes: [1, 2, 3]).regions.map(\.size) == [3])
    }
}

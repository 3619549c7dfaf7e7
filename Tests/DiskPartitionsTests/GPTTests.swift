import DiskPartitions
import Testing

@Suite struct GPTTests {
    static let mib: UInt64 = 1 << 20

    /// An illumos-style whole disk: p1 EFI_USR at LBA 256 (4 MiB), p9 reserved 8 MiB.
    static func illumosDisk(start: UInt64 = 256, sectorSize: Int = 512) -> TestDisk {
        let ss = UInt64(sectorSize)
        let poolSectors = 4 * mib / ss
        let reservedSectors = 8 * mib / ss
        let reservedFirst = start + poolSectors
        var disk = TestDisk(size: (reservedFirst + reservedSectors + 40) * ss)
        writeGPT(
            into: &disk, sectorSize: sectorSize,
            parts: [
                GPTPart(slot: 0, type: .illumosUsr, first: start, last: start + poolSectors - 1, name: "zfs"),
                GPTPart(
                    slot: 8, type: .illumosReserved, first: reservedFirst, last: reservedFirst + reservedSectors - 1),
            ])
        return disk
    }

    @Test func illumosWholeDiskLayout() throws {
        let layout = try DiskLayout.detect(in: Self.illumosDisk().source())
        #expect(layout.schemes == [.gpt])
        #expect(layout.sectorSize == 512)
        #expect(layout.zfsWholeDisk == .illumos)
        #expect(layout.warnings.isEmpty)
        #expect(layout.regions.map(\.name) == ["p1", "p9"])
        let p1 = try #require(layout.region(named: "p1"))
        #expect(p1.start == 256 * 512)
        #expect(p1.size == 4 * Self.mib)
        #expect(p1.type == .gpt(.illumosUsr))
        #expect(p1.label == "zfs")
        #expect(p1.illumosSlice == 0)
        #expect(p1.illumosMinor == "a")
        let p9 = try #require(layout.region(named: "P9"))
        #expect(p9.illumosSlice == 8)
        #expect(p9.illumosMinor == "i")
        #expect(layout.candidates.count == 2)
        let gpt = try #require(layout.gpt)
        #expect(gpt.headerLBA == 1 && !gpt.usedBackup && gpt.backupIntact)
        #expect(gpt.diskGUID.description == "11111111-2222-3333-4444-555555555555")
    }

    @Test func linuxWholeDiskLayoutStartsAt2048() throws {
        let layout = try DiskLayout.detect(in: Self.illumosDisk(start: 2048).source())
        #expect(layout.zfsWholeDisk == .linux)
        #expect(layout.region(named: "p1")?.start == 2048 * 512)
    }

    @Test func bootableLayoutPutsPoolInSlice1() throws {
        var disk = TestDisk(size: 40 * Self.mib)
        writeGPT(
            into: &disk,
            parts: [
                GPTPart(slot: 0, type: .efiSystem, first: 256, last: 256 + 2048 - 1, name: "loader"),
                GPTPart(slot: 1, type: .illumosUsr, first: 2304, last: 2304 + 8192 - 1, name: "zfs"),
                GPTPart(slot: 8, type: .illumosReserved, first: 10496, last: 10496 + 16384 - 1),
            ])
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.zfsWholeDisk == .illumosBootable)
        #expect(layout.zfsWholeDisk?.dataPartition == "p2")
        let p2 = try #require(layout.region(named: "p2"))
        #expect(p2.illumosSlice == 1 && p2.illumosMinor == "b")
        #expect(layout.region(named: "p1")?.type.name == "EFI System")
    }

    @Test func efiSlice7HasNoMinorName() throws {
        var disk = TestDisk(size: 8 * Self.mib)
        writeGPT(into: &disk, parts: [GPTPart(slot: 7, type: .illumosUsr, first: 2048, last: 4095)])
        let p8 = try #require(try DiskLayout.detect(in: disk.source()).region(named: "p8"))
        #expect(p8.illumosSlice == 7)
        #expect(p8.illumosMinor == nil)
    }

    @Test func fourKibSectorsAreDetected() throws {
        let layout = try DiskLayout.detect(in: Self.illumosDisk(sectorSize: 4096).source())
        #expect(layout.sectorSize == 4096)
        #expect(layout.gpt?.sectorSize == 4096)
        #expect(layout.region(named: "p1")?.start == 256 * 4096)
        #expect(layout.region(named: "p1")?.size == 4 * Self.mib)
        #expect(layout.region(named: "p9")?.size == 8 * Self.mib)
        #expect(layout.zfsWholeDisk == .illumos)
        #expect(layout.warnings.isEmpty)
    }

    @Test func damagedPrimaryHeaderFallsBackToBackup() throws {
        var disk = Self.illumosDisk()
        disk.corrupt(at: 512 + 16)  // the stored header CRC
        let layout = try DiskLayout.detect(in: disk.source())
        let lastLBA = disk.size / 512 - 1
        #expect(layout.gpt?.usedBackup == true)
        #expect(layout.gpt?.headerLBA == lastLBA)
        #expect(layout.regions.map(\.name) == ["p1", "p9"])
        let warning = try #require(layout.warnings.first)
        #expect(warning.message.contains("primary GPT header at LBA 1 is damaged"))
        #expect(warning.message.contains("CRC32"))
        #expect(warning.message.contains("LBA \(lastLBA)"))
        #expect(warning.offset == 512 + 16)
    }

    @Test func damagedPrimaryEntryArrayFallsBackToBackup() throws {
        var disk = Self.illumosDisk()
        disk.corrupt(at: 1024 + 40)  // last LBA of entry 0
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.gpt?.usedBackup == true)
        #expect(layout.region(named: "p1")?.size == 4 * Self.mib)
        #expect(
            layout.warnings.contains { $0.message.contains("primary GPT entry array is damaged") && $0.offset == 1024 })
    }

    @Test func damagedBackupOnlyWarns() throws {
        var disk = Self.illumosDisk()
        disk.corrupt(at: disk.size - 512 + 30)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.gpt?.usedBackup == false)
        #expect(layout.gpt?.backupIntact == false)
        #expect(layout.warnings.contains { $0.message.contains("backup GPT is damaged") })
    }

    @Test func bothHeadersDamagedThrowsNamingThePrimary() throws {
        var disk = Self.illumosDisk()
        disk.corrupt(at: 512 + 17)
        disk.corrupt(at: disk.size - 512 + 17)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badChecksum)
        #expect(error.offset == 512 + 16)
        #expect(error.message.contains("primary GPT header CRC32 bad at LBA 1"))
        #expect(error.message.contains("backup"))
    }

    @Test func wipedFrontIsRecoveredFromTheBackup() throws {
        var disk = Self.illumosDisk()
        disk.write([UInt8](repeating: 0, count: 4096), at: 0)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.gpt?.usedBackup == true)
        #expect(layout.region(named: "p1")?.start == 256 * 512)
        #expect(layout.warnings.contains { $0.message.contains("not a protective MBR") })
    }

    @Test func protectiveMBRWithoutAnyGPTThrows() throws {
        var disk = TestDisk(size: 4 * Self.mib)
        disk.write(mbrSector([MBRPart(type: 0xEE, first: 1, count: 8191)]), at: 0)
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badSignature)
        #expect(error.offset == 512)
    }

    @Test func overlappingPartitionsThrow() throws {
        var disk = TestDisk(size: 16 * Self.mib)
        writeGPT(
            into: &disk,
            parts: [
                GPTPart(slot: 0, type: .illumosUsr, first: 2048, last: 10000),
                GPTPart(slot: 1, type: .linuxFilesystem, first: 9000, last: 12000),
            ])
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .overlap)
        #expect(error.offset == 9000 * 512)
        #expect(error.message.contains("p2") && error.message.contains("p1"))
    }

    @Test func partitionPastTheEndOfTheImageThrows() throws {
        var disk = TestDisk(size: 4 * Self.mib)
        writeGPT(into: &disk, parts: [GPTPart(slot: 2, type: .illumosUsr, first: 2048, last: 9000)])
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .outOfBounds)
        #expect(error.offset == 1024 + 2 * 128 + 40)
        #expect(error.message.contains("p3"))
    }

    @Test func firstAfterLastThrows() throws {
        var disk = TestDisk(size: 4 * Self.mib)
        writeGPT(into: &disk, parts: [GPTPart(slot: 0, type: .illumosUsr, first: 4000, last: 3000)])
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badEntry)
        #expect(error.offset == 1024 + 32)
    }

    @Test(arguments: [
        (UInt32(0xFFFF_FFFF), UInt32(128)), (UInt32(128), UInt32(64)), (UInt32(128), UInt32(1 << 20)),
        (UInt32(100_000), UInt32(128)),
    ])
    func absurdEntryCountOrSizeThrows(count: UInt32, size: UInt32) throws {
        var disk = TestDisk(size: 4 * Self.mib)
        writeGPT(into: &disk, parts: []) { header in
            header.replaceSubrange(80..<84, with: le32(count))
            header.replaceSubrange(84..<88, with: le32(size))
        }
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badHeader)
        #expect(error.offset == 512 + 80 || error.offset == 512 + 84)
    }

    @Test func headerRecordingTheWrongLBAIsRejected() throws {
        var disk = TestDisk(size: 4 * Self.mib)
        writeGPT(into: &disk, parts: []) { header in header.replaceSubrange(24..<32, with: le64(7)) }
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badHeader)
        #expect(error.message.contains("records its own LBA"))
    }

    @Test func entryArrayPastTheEndThrows() throws {
        var disk = TestDisk(size: 4 * Self.mib)
        writeGPT(into: &disk, parts: []) { header in header.replaceSubrange(72..<80, with: le64(1 << 40)) }
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .outOfBounds || error.code == .overflow)
    }

    @Test func hybridMBRIsReported() throws {
        var disk = Self.illumosDisk()
        disk.write(
            mbrSector([MBRPart(type: 0xEE, first: 1, count: 255), MBRPart(type: 0x83, first: 256, count: 8192)]), at: 0)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.schemes == [.gpt])
        #expect(layout.warnings.contains { $0.message.contains("hybrid MBR") })
    }

    @Test func oneTebibyteSparseImageReadsOnlyTableSectors() throws {
        let tib: UInt64 = 1 << 40
        var disk = TestDisk(size: tib)
        let sectors = tib / 512
        let reserved: UInt64 = 16384
        let last = sectors - 34 - reserved - 1
        writeGPT(
            into: &disk,
            parts: [
                GPTPart(slot: 0, type: .illumosUsr, first: 256, last: last, name: "zfs"),
                GPTPart(slot: 8, type: .illumosReserved, first: last + 1, last: last + reserved),
            ])
        let log = ReadLog()
        let layout = try DiskLayout.detect(in: disk.source(log: log))
        #expect(layout.zfsWholeDisk == .illumos)
        #expect(layout.region(named: "p1")?.size == (last - 256 + 1) * 512)
        #expect(log.totalBytes <= 2 * 16384 + 4 * 4096)
        #expect(log.count <= 8)
    }
}

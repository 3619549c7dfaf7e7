import DiskPartitions
import Testing

@Suite struct VTOCTests {
    static let cylinder: UInt32 = 255 * 63

    /// The mbr-vtoc layout of make-disk-image.py: 0xBF partition at 2048, s8 boot, s2 backup, s0 = pool from cyl 1.
    static func vtocDisk(label: [UInt8]? = nil, fdiskType: UInt8 = 0xBF, poolSectors: UInt32 = 8192) -> TestDisk {
        let partitionSectors = 4 * cylinder
        var disk = TestDisk(size: UInt64(2048 + partitionSectors) * 512)
        disk.write(mbrSector([MBRPart(status: 0x80, type: fdiskType, first: 2048, count: partitionSectors)]), at: 0)
        let smi =
            label
            ?? smiLabel([
                0: SMISlice(tag: 2, start: cylinder, size: poolSectors),
                2: SMISlice(tag: 5, flag: 1, start: 0, size: 2 * cylinder + cylinder),
                8: SMISlice(tag: 1, flag: 1, start: 0, size: cylinder),
            ])
        disk.write(smi, at: 2049 * 512)
        return disk
    }

    @Test func slicesAreRelativeToTheFdiskPartition() throws {
        let layout = try DiskLayout.detect(in: Self.vtocDisk().source())
        #expect(layout.schemes == [.mbr, .vtoc])
        #expect(layout.regions.map(\.name) == ["p1", "s0", "s2", "s8"])
        #expect(layout.region(named: "p1")?.isContainer == true)
        let s0 = try #require(layout.region(named: "s0"))
        #expect(s0.start == UInt64(2048 + Self.cylinder) * 512)
        #expect(s0.size == 8192 * 512)
        #expect(s0.type == .vtoc(tag: 2, flag: 0))
        #expect(s0.type.name == "root")
        #expect(s0.illumosSlice == 0 && s0.illumosMinor == "a" && s0.parent == "p1")
        #expect(layout.region(named: "s8")?.illumosMinor == "i")
        #expect(layout.region(named: "p1s0") == s0)
        #expect(layout.candidates.map(\.name) == ["s0", "s2", "s8"])
        #expect(layout.warnings.isEmpty)
    }

    @Test func badSanityThrows() throws {
        let disk = Self.vtocDisk(label: smiLabel([0: SMISlice(tag: 2, start: 16065, size: 100)], sanity: 0x600D_DEEF))
        let error = try #require(throws: PartitionTableError.self) { try DiskLayout.detect(in: disk.source()) }
        #expect(error.code == .badSignature)
        #expect(error.offset == 2049 * 512 + 12)
        #expect(error.message.contains("v_sanity"))
    }

    @Test func badChecksumThrows() throws {
        var label = smiLabel([0: SMISlice(tag: 2, start: 16065, size: 100)])
        label[100] ^= 0x40
        let error = try #require(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: Self.vtocDisk(label: label).source())
        }
        #expect(error.code == .badChecksum)
        #expect(error.offset == 2049 * 512 + 510)
    }

    @Test func missingLabelInSolaris2PartitionThrows() throws {
        let error = try #require(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: Self.vtocDisk(label: [UInt8](repeating: 0, count: 512)).source())
        }
        #expect(error.code == .badSignature)
        #expect(error.offset == 2049 * 512 + 508)
    }

    @Test func legacyTypeWithoutLabelIsAPlainPartition() throws {
        let disk = Self.vtocDisk(label: [UInt8](repeating: 0, count: 512), fdiskType: 0x82)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.schemes == [.mbr])
        #expect(layout.candidates.map(\.name) == ["p1"])
    }

    @Test func legacyTypeWithLabelIsRead() throws {
        let layout = try DiskLayout.detect(in: Self.vtocDisk(fdiskType: 0x82).source())
        #expect(layout.schemes == [.mbr, .vtoc])
        #expect(layout.region(named: "s0") != nil)
    }

    @Test func slicePastItsPartitionThrows() throws {
        let label = smiLabel([3: SMISlice(tag: 4, start: 3 * Self.cylinder, size: Self.cylinder + 1)])
        let error = try #require(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: Self.vtocDisk(label: label).source())
        }
        #expect(error.code == .outOfBounds)
        #expect(error.offset == 2049 * 512 + 72 + 3 * 12)
        #expect(error.message.contains("s3"))
    }

    @Test func tooManySlicesThrows() throws {
        let label = smiLabel([:], nparts: 17)
        let error = try #require(throws: PartitionTableError.self) {
            try DiskLayout.detect(in: Self.vtocDisk(label: label).source())
        }
        #expect(error.code == .badHeader)
        #expect(error.offset == 2049 * 512 + 30)
    }

    @Test func overlappingSlicesOnlyWarn() throws {
        let label = smiLabel([
            0: SMISlice(tag: 2, start: 100, size: 1000), 1: SMISlice(tag: 3, start: 500, size: 1000),
            2: SMISlice(tag: 5, start: 0, size: 4 * Self.cylinder),
        ])
        let layout = try DiskLayout.detect(in: Self.vtocDisk(label: label).source())
        #expect(layout.regions.map(\.name) == ["p1", "s0", "s1", "s2"])
        #expect(layout.warnings.count == 1)
        #expect(layout.warnings.first?.message.contains("s1") == true)
    }

    @Test func secondSolarisPartitionGetsQualifiedNames() throws {
        var disk = Self.vtocDisk()
        disk.size += UInt64(4 * Self.cylinder) * 512
        let second = UInt32(2048) + 4 * Self.cylinder
        disk.write(
            mbrSector([
                MBRPart(status: 0x80, type: 0xBF, first: 2048, count: 4 * Self.cylinder),
                MBRPart(type: 0xBF, first: second, count: 4 * Self.cylinder),
            ]), at: 0)
        disk.write(smiLabel([0: SMISlice(tag: 2, start: 16065, size: 100)]), at: UInt64(second + 1) * 512)
        let layout = try DiskLayout.detect(in: disk.source())
        #expect(layout.regions.map(\.name) == ["p1", "s0", "s2", "s8", "p2", "p2s0"])
        #expect(layout.region(named: "p2s0")?.illumosMinor == "a")
        #expect(layout.warnings.contains { $0.message.contains("more than one Solaris fdisk partition") })
    }

    @Test func minorNamesFollowCmlb() throws {
        let label = smiLabel(
            Dictionary(uniqueKeysWithValues: (0..<16).map { ($0, SMISlice(tag: 0, start: UInt32($0) * 10, size: 10)) }))
        let layout = try DiskLayout.detect(in: Self.vtocDisk(label: label).source())
        let minors = layout.regions.filter { $0.scheme == .vtoc }.compactMap(\.illumosMinor).joined()
        #expect(minors == "abcdefghijklmnop")
    }
}

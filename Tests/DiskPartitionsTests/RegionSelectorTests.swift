import DiskPartitions
import Testing

@Suite struct RegionSelectorTests {
    @Test func namesAndRanges() throws {
        #expect(try RegionSelector(parsing: "p2") == .named("p2"))
        #expect(try RegionSelector(parsing: "9273856:67108864") == .range(offset: 9_273_856, size: 67_108_864))
        #expect(try RegionSelector(parsing: "0x20000:0x4000000") == .range(offset: 0x20000, size: 0x400_0000))
        for bad in ["", "12:", ":12", "12:0", "x:1", "0x:1", "-1:5", "1:99999999999999999999", "1:2x"] {
            #expect(throws: PartitionTableError.self, "\(bad)") { try RegionSelector(parsing: bad) }
        }
    }

    @Test func imageArgumentSplitsAtTheLastAt() throws {
        let (path, range) = try RegionSelector.splitImageArgument("disk.img@9273856:67108864")
        #expect(path == "disk.img")
        #expect(range == .range(offset: 9_273_856, size: 67_108_864))
        #expect(try RegionSelector.splitImageArgument("backup@2024/disk.img") == ("backup@2024/disk.img", nil))
        #expect(try RegionSelector.splitImageArgument("a@b@0:512") == ("a@b", .range(offset: 0, size: 512)))
        #expect(try RegionSelector.splitImageArgument("@0:512") == ("@0:512", nil))
        #expect(throws: PartitionTableError.self) { try RegionSelector.splitImageArgument("disk.img@12:zz") }
    }

    @Test func selectResolvesAgainstTheLayout() throws {
        let layout = try DiskLayout.detect(in: VTOCTests.vtocDisk().source())
        #expect(try layout.select(.named("s0")).name == "s0")
        let s0 = try #require(layout.region(named: "s0"))
        #expect(try layout.select(.range(offset: s0.start, size: s0.size)) == s0)
        let custom = try layout.select(.range(offset: 512, size: 1024))
        #expect(custom.name == "512:1024" && custom.start == 512 && custom.size == 1024)
        let unknown = try #require(throws: PartitionTableError.self) { try layout.select(.named("p7")) }
        #expect(unknown.message.contains("p1, s0, s2, s8"))
        #expect(throws: PartitionTableError.self) { try layout.select(.range(offset: layout.diskSize, size: 1)) }
        #expect(throws: PartitionTableError.self) { try layout.select(.range(offset: UInt64.max, size: 2)) }
    }
}

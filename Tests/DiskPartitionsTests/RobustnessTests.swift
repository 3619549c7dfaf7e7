import DiskPartitions
import Testing

/// SplitMix64, so a failing run can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random damage to the table sectors must end in a value or a thrown error, never a trap, and every region
/// returned must lie inside the image.
@Suite struct RobustnessTests {
    static func check(_ base: TestDisk, tableRanges: [Range<UInt64>], seed: UInt64, iterations: Int) {
        var rng = SplitMix64(state: seed)
        var parsed = 0
        for iteration in 0..<iterations {
            var disk = base
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let range = tableRanges.randomElement(using: &rng)!
                let offset = UInt64.random(in: range, using: &rng)
                // Mostly bit flips; sometimes a run of 0xFF or 0x00 to hit size and count fields.
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: disk.write([UInt8](repeating: 0xFF, count: 8), at: offset)
                case 1: disk.write([UInt8](repeating: 0, count: 4), at: offset)
                default: disk.corrupt(at: offset, xor: UInt8.random(in: 1...255, using: &rng))
                }
            }
            guard let layout = try? DiskLayout.detect(in: disk.source()) else { continue }
            parsed += 1
            for region in layout.regions {
                let (end, overflow) = region.start.addingReportingOverflow(region.size)
                #expect(
                    !overflow && end <= disk.size,
                    "seed \(seed) iteration \(iteration): \(region) ends past the image (\(disk.size) bytes)")
            }
        }
        #expect(parsed > 0, "seed \(seed): every mutation failed to parse; the damage is too coarse to test much")
    }

    @Test(arguments: [UInt64(1), 0x5EED, 0xDEAD_BEEF])
    func mutatedGPTNeverTraps(seed: UInt64) {
        let disk = GPTTests.illumosDisk()
        let last = disk.size - 512
        Self.check(
            disk, tableRanges: [0..<512, 512..<1024, 1024..<(1024 + 4 * 128), (last - 16384)..<disk.size], seed: seed,
            iterations: 300)
    }

    @Test(arguments: [UInt64(2), 0x5EED, 0xFACE])
    func mutatedMBRAndEBRChainNeverTraps(seed: UInt64) {
        Self.check(
            MBRTests.extendedDisk(),
            tableRanges: [
                446..<512, (10240 * 512 + 446)..<(10240 * 512 + 512), (30720 * 512 + 446)..<(30720 * 512 + 512),
            ],
            seed: seed, iterations: 300)
    }

    @Test(arguments: [UInt64(3), 0x5EED, 0xC0FFEE])
    func mutatedSMILabelNeverTraps(seed: UInt64) {
        Self.check(
            VTOCTests.vtocDisk(), tableRanges: [446..<512, (2049 * 512)..<(2050 * 512)], seed: seed, iterations: 300)
    }

    @Test func randomSmallBuffersNeverTrap() {
        var rng = SplitMix64(state: 42)
        for _ in 0..<300 {
            let count = Int.random(in: 0..<5000, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if count >= 1100, Bool.random(using: &rng) {
                bytes.replaceSubrange(512..<520, with: Array("EFI PART".utf8))
            }
            if count >= 512, Bool.random(using: &rng) {
                bytes[510] = 0x55
                bytes[511] = 0xAA
            }
            if let layout = try? DiskLayout.parse(bytes: bytes) {
                #expect(layout.regions.allSatisfy { $0.start <= UInt64(count) && $0.size <= UInt64(count) - $0.start })
            }
        }
    }
}

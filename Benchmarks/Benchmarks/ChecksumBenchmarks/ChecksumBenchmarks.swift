// Checksum throughput: fletcher4 (metadata blocks) and the SHA-256 label checksum, as a plain digest over
// 1 MiB and as `EmbeddedChecksum.verify` over a real 112 KiB config area (what every label read costs).
// Throughput is operations per second; bytes per second is that times the size in the benchmark's name.

import Benchmark
import BenchmarkFixtures
import ZLabel

let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(metrics: metrics, maxDuration: .seconds(3), maxIterations: 100_000)
    var generator = SplitMix64(seed: 0x5eed)
    let mebibyte = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    let area: [UInt8]
    do { area = try LabelFixture("rpool-kvm").configArea } catch { fatalError("\(error)") }
    precondition(EmbeddedChecksum.verify(area, offset: 0x4000).isValid, "the fixture's label 0 does not verify")

    Benchmark("fletcher4 1 MiB little-endian", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(fletcher4(mebibyte, order: .little)) }
    }
    Benchmark("fletcher4 1 MiB big-endian", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(fletcher4(mebibyte, order: .big)) }
    }
    Benchmark("fletcher2 1 MiB little-endian", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(fletcher2(mebibyte, order: .little)) }
    }
    Benchmark("SHA-256 1 MiB", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(zfsSHA256(mebibyte)) }
    }
    Benchmark("label checksum verify 112 KiB config area", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(EmbeddedChecksum.verify(area, offset: 0x4000)) }
    }
}

/// A fixed-seed generator, so the input is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

// Checksum throughput: fletcher4 (metadata blocks) and the SHA-256 label checksum, as a plain digest over
// 1 MiB and as `EmbeddedChecksum.verify` over a real 112 KiB config area (what every label read costs).
// Throughput is operations per second; bytes per second is that times the size in the benchmark's name.
// The upload's block hashes: two and four 512 KiB blocks side by side (BlockHashing's SHA256Lanes) against the
// named baseline, the same blocks one after another with swift-crypto ("... swift-crypto"); ratios.py prints
// the time ratios.

import Benchmark
import BenchmarkFixtures
import BlockHashing
import Crypto
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

    // Four different 512 KiB blocks (EBS's block size), as an upload hashes them.
    let blocks = (0..<4).map { k in mebibyte[(k % 2 * 524_288)..<(k % 2 * 524_288 + 524_288)].map { $0 ^ UInt8(k) } }
    precondition(SHA256Lanes.sideBySide, "this CPU lacks the SHA extensions: the side-by-side benchmarks would measure swift-crypto")
    for n in [2, 4] {
        Benchmark("SHA-256 \(n) x 512 KiB swift-crypto", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                for b in blocks.prefix(n) { blackHole(SHA256.hash(data: b)) }
            }
        }
        Benchmark("SHA-256 \(n) x 512 KiB side by side", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                withAll(Array(blocks.prefix(n))) { blackHole(SHA256Lanes.hash(all: $0)) }
            }
        }
    }
}

/// Calls `body` with pointers to the bytes of every array, all valid during the call.
func withAll<R>(_ arrays: [[UInt8]], _ done: [UnsafeRawBufferPointer] = [], _ body: ([UnsafeRawBufferPointer]) -> R) -> R {
    guard let first = arrays.first else { return body(done) }
    return first.withUnsafeBytes { withAll(Array(arrays.dropFirst()), done + [$0], body) }
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

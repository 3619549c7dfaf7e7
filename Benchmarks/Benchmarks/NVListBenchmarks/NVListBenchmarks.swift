// The XDR nvlist codec against libnvpair itself, on the config nvlists of real labels.
//
// Both sides run in this process on the same bytes. "decode" is `NVList.decode(xdr:)` against
// `nvlist_unpack` followed by `nvlist_free` (each builds its in-memory list and throws it away); "encode" is
// `encodeXDR` against `nvlist_pack(..., NV_ENCODE_XDR)` into a buffer libnvpair allocates, then freed (each
// returns fresh bytes). `libnvpair pack (caller buffer)` shows libnvpair's pack without its allocation.
// Throughput is in operations per second; multiply by the stream size printed at start-up for bytes.

import Benchmark
import BenchmarkFixtures
import CNVPair
import NVList

#if canImport(Glibc)
    import Glibc
#endif

/// The fixtures measured: a small single-disk config, a 2-way mirror, the largest (a 3-member raidz),
/// and one written big-endian.
let fixtureNames = ["rpool-kvm", "rpool-mirror-0", "tank-raidz-0", "zfs-pool-v15"]

let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 1_000_000)
    for name in fixtureNames {
        let fixture: LabelFixture
        do { fixture = try LabelFixture(name) } catch { fatalError("\(error)") }
        let stream = fixture.stream
        let list = fixture.decoded.list
        let order = fixture.decoded.header.hostByteOrder

        // Both codecs must agree before their speed means anything.
        var nvl: UnsafeMutableRawPointer?
        precondition(cnvpair_unpack(stream, stream.count, &nvl) == 0, "libnvpair cannot unpack \(name)")
        var packed: UnsafeMutablePointer<UInt8>?
        var packedCount = 0
        precondition(cnvpair_pack_xdr(nvl, &packed, &packedCount) == 0)
        let theirs = Array(UnsafeBufferPointer(start: packed, count: packedCount))
        cnvpair_free_buffer(packed, packedCount)
        let ours = list.encodeXDR(hostByteOrder: order)
        // libnvpair writes its own host's byte order into the header; compare the rest.
        precondition(ours.dropFirst(4) == theirs.dropFirst(4), "\(name): our encoding differs from libnvpair's")
        precondition(ours == stream, "\(name): re-encoding does not give the label's bytes back")
        print("\(name): \(stream.count)-byte stream, \(list.pairs.count) top-level pairs")
        // `nvl` is kept for the encode benchmarks, for the life of the process.
        nonisolated(unsafe) let libnvpairList = nvl  // read-only after this point; benchmarks run one at a time

        Benchmark("decode \(name) NVList", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try NVList.decode(xdr: stream))
            }
        }
        Benchmark("decode \(name) libnvpair", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                var out: UnsafeMutableRawPointer?
                let err = stream.withUnsafeBufferPointer { cnvpair_unpack($0.baseAddress, $0.count, &out) }
                precondition(err == 0)
                cnvpair_free(out)
            }
        }
        Benchmark("encode \(name) NVList", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(list.encodeXDR(hostByteOrder: order))
            }
        }
        Benchmark("encode \(name) libnvpair", configuration: configuration) { benchmark in
            for _ in benchmark.scaledIterations {
                var out: UnsafeMutablePointer<UInt8>?
                var count = 0
                precondition(cnvpair_pack_xdr(libnvpairList, &out, &count) == 0)
                cnvpair_free_buffer(out, count)
            }
        }
        Benchmark("encode \(name) libnvpair (caller buffer)", configuration: configuration) { benchmark in
            var buffer = [UInt8](repeating: 0, count: 1 << 17)
            for _ in benchmark.scaledIterations {
                var count = 0
                let err = buffer.withUnsafeMutableBufferPointer {
                    cnvpair_pack_xdr_into(libnvpairList, $0.baseAddress, $0.count, &count)
                }
                precondition(err == 0)
                blackHole(count)
            }
        }
    }
}

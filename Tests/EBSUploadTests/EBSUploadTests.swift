import AWSCore
import CXXHash
import EBSUpload
import EC2TestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Records reads and prefetch hints, to prove holes are never read and reads are hinted first.
final class CountingSource: ImageSource, @unchecked Sendable {
    let inner: InMemoryImage
    private let lock = NSLock()
    private var _reads: [Range<UInt64>] = []
    private var _prefetches: [Range<UInt64>] = []
    /// Each read, and the prefetch hints given before it.
    private var _hintedBeforeRead: [Bool] = []
    init(_ inner: InMemoryImage) { self.inner = inner }
    var reads: [Range<UInt64>] { lock.withLock { _reads } }
    var prefetches: [Range<UInt64>] { lock.withLock { _prefetches } }
    /// Whether each read lay inside a range hinted before it.
    var hintedBeforeRead: [Bool] { lock.withLock { _hintedBeforeRead } }
    var size: UInt64 { inner.size }
    func dataExtents() throws -> [Range<UInt64>] { try inner.dataExtents() }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let r = offset..<(offset + UInt64(buffer.count))
        lock.withLock {
            _reads.append(r)
            _hintedBeforeRead.append(_prefetches.contains { $0.contains(r.lowerBound) && r.upperBound <= $0.upperBound })
        }
        try inner.read(into: buffer, at: offset)
    }
    func prefetch(_ range: Range<UInt64>) { lock.withLock { _prefetches.append(range) } }
}

@Suite("Block reading, overlays, journal, manifest")
struct EBSUploadUnitTests {
    static let bs = ebsBlockSize

    @Test("only data extents are read; holes and the tail are zeros")
    func readerSkipsHoles() throws {
        var bytes = [UInt8](repeating: 0, count: 3 * Self.bs + 100)
        for i in 1000..<2000 { bytes[i] = 1 }
        for i in (Self.bs + 10)..<(Self.bs + 20) { bytes[i] = 2 }
        let src = CountingSource(InMemoryImage(bytes: bytes, extents: [0..<4096, UInt64(Self.bs)..<UInt64(Self.bs + 4096)]))
        let r = try ImageBlockReader(source: src)
        var buf = [UInt8](repeating: 0xFF, count: Self.bs)
        let n0 = try buf.withUnsafeMutableBytes { try r.read(block: 0, into: $0) }
        #expect(n0 == 4096)
        #expect(Array(buf[0..<Self.bs]) == Array(bytes[0..<Self.bs]))
        let n2 = try buf.withUnsafeMutableBytes { try r.read(block: 2, into: $0) }
        #expect(n2 == 0)
        #expect(buf.allSatisfy { $0 == 0 })
        // Prefetch hints name the same data ranges a read would, and nothing for a hole.
        r.prefetch(block: 2)
        #expect(src.prefetches.isEmpty)
        r.prefetch(block: 0)
        r.prefetch(block: 1)
        #expect(src.prefetches == [0..<4096, UInt64(Self.bs)..<UInt64(Self.bs + 4096)])
        let n6 = try buf.withUnsafeMutableBytes { try r.read(block: 6, into: $0) }
        #expect(n6 == 0 && buf.allSatisfy { $0 == 0 })
        #expect(src.reads == [0..<4096])
        #expect(r.candidateRanges(blockLimit: 2048) == [0..<2])
    }

    @Test("overlay patches apply across block boundaries and make hole blocks candidates")
    func overlayApplies() throws {
        let bytes = [UInt8](repeating: 7, count: 4 * Self.bs)
        let ov = try ByteRangeOverlay([
            (offset: UInt64(Self.bs - 2), bytes: [1, 2, 3, 4]),
            (offset: UInt64(3 * Self.bs + 5), bytes: [9]),
        ])
        let r = try ImageBlockReader(source: InMemoryImage(bytes: bytes, extents: [0..<16]), overlay: ov)
        var buf = [UInt8](repeating: 0, count: Self.bs)
        _ = try buf.withUnsafeMutableBytes { try r.read(block: 0, into: $0) }
        #expect(Array(buf[(Self.bs - 2)...]) == [1, 2])
        #expect(Array(buf[0..<16]) == [UInt8](repeating: 7, count: 16))
        _ = try buf.withUnsafeMutableBytes { try r.read(block: 1, into: $0) }
        #expect(Array(buf[0..<3]) == [3, 4, 0])
        #expect(r.candidateRanges(blockLimit: 2048) == [0..<2, 3..<4])
        #expect(throws: OverlayError.self) { _ = try ByteRangeOverlay([(offset: 10, bytes: [1, 2]), (offset: 11, bytes: [3])]) }
        #expect(throws: OverlayError.self) { _ = try ByteRangeOverlay([(offset: 10, bytes: [])]) }
        #expect(throws: OverlayError.self) {
            _ = try ImageBlockReader(source: InMemoryImage(bytes: [0, 0]), overlay: try ByteRangeOverlay([(offset: 1, bytes: [1, 1])]))
        }
        #expect(ov.digest != ByteRangeOverlay().digest)
    }

    @Test("SEEK_DATA/SEEK_HOLE find the data of a sparse file")
    func sparseFileExtents() throws {
        let dir = try TestEnv.tempDir("sparse")
        let path = dir + "/s.raw"
        try TestImage.make(path, size: 64 << 20, writes: [(0, [1, 2, 3]), (UInt64(40 << 20), [UInt8](repeating: 5, count: 8192))])
        let f = try ImageFile(path: path)
        let ex = try f.dataExtents()
        #expect(f.size == 64 << 20)
        #expect(ex.count == 2)
        #expect(ex.first?.lowerBound == 0)
        #expect(ex.last.map { $0.lowerBound <= 40 << 20 && $0.upperBound >= (40 << 20) + 8192 } == true)
        #expect(ex.reduce(0) { $0 + $1.count } < 1 << 20)
        #expect(throws: ImageError.self) { _ = try ImageFile(path: dir + "/missing") }
        #expect(throws: ImageError.self) { _ = try ImageFile(path: dir) }
    }

    @Test("journal: slots survive reopening; aggregate equals the LINEAR rule; a finished journal keeps its header")
    func journal() throws {
        let dir = try TestEnv.tempDir("journal")
        let header = UploadJournalHeader(
            imagePath: "/x", image: FileIdentity(device: 1, inode: 2, size: 3, modifiedNanoseconds: 4), overlayDigest: "o",
            optionsDigest: "p", volumeSizeGiB: 1, region: "us-east-1", endpoint: "http://x", clientToken: "t",
            timeoutMinutes: 60, state: .uploading(snapshotID: "snap-1", startedAt: nil))
        let blocks: [(UInt64, [UInt8])] = [(2047, [UInt8](repeating: 1, count: 32)), (3, [UInt8](repeating: 2, count: 32)), (700, [UInt8](repeating: 3, count: 32))]
        do {
            let j = try UploadJournal(directory: dir, key: "k", header: header, resume: false, blockCount: 2048)
            for (i, d) in blocks { try j.record(index: i, sha256: d, xxh3: i * 10, isZero: i == 700) }
        }
        let j = try UploadJournal(directory: dir, key: "k", header: header, resume: true, blockCount: 2048)
        #expect(j.isDone(3) && j.isDone(700) && j.isDone(2047) && !j.isDone(4))
        #expect(j.recordedCount == 3)
        var order: [UInt64] = []
        try j.forEachSlot { order.append($0.index) }
        #expect(order == [3, 700, 2047])
        let (count, agg) = try j.completion()
        #expect(count == 3)
        #expect(agg == EBSAPI.linearAggregate([blocks[1].1, blocks[2].1, blocks[0].1]))
        // Finished: the header stays, in state done with the count; the slots go.
        try j.finish(changedBlocksCount: count)
        let done = try #require(UploadJournal.existingHeader(directory: dir, key: "k"))
        #expect(done.state == .done(snapshotID: "snap-1", startedAt: nil, changedBlocksCount: 3))
        #expect(!FileManager.default.fileExists(atPath: j.slotsPath))
        let fresh = try UploadJournal(directory: dir, key: "k", header: header, resume: false, blockCount: 2048)
        #expect(fresh.recordedCount == 0)
        #expect(UploadJournal.existingHeader(directory: dir, key: "k")?.state.name == "uploading")
        fresh.remove()
        #expect(UploadJournal.existingHeader(directory: dir, key: "k") == nil)
    }

    @Test("XXH3 through libxxhash's dispatcher gives the plain function's values")
    func xxh3Dispatch() {
        var rng = SplitMix64(seed: 9)
        for size in [0, 1, 17, 240, 241, 4096, Self.bs] {
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let digest = bytes.withUnsafeBytes { BlockDigest.of($0, needSHA: false) }
            let plain = bytes.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
            #expect(digest.xxh3 == plain, "\(size) bytes")
        }
        // The reference value of the empty input, from xxHash's own test vectors.
        #expect([UInt8]().withUnsafeBytes { BlockDigest.of($0, needSHA: false).xxh3 } == 0x2D06_8005_38D3_94C2)
    }

    @Test("checksum base64 equals Foundation's for every length and byte value")
    func base64MatchesFoundation() {
        var rng = SystemRandomNumberGenerator()
        for length in 0...70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(EBSAPI.base64(bytes) == Data(bytes).base64EncodedString(), "length \(length)")
        }
        let all = (0...255).map { UInt8($0) }
        #expect(EBSAPI.base64(all) == Data(all).base64EncodedString())
        #expect(EBSAPI.checksum([1, 2, 3]) == "A5BYxvLAy0ksUzsKTRTvd8wPeKvMztUofYShogEc+4E=")
    }

    @Test("manifest round trip, merge rules, and malformed files name the offset")
    func manifest() throws {
        let dir = try TestEnv.tempDir("manifest")
        let h = BlockManifestHeader(snapshotID: "snap-p", volumeSizeGiB: 1, blockSize: ebsBlockSize, encrypted: false)
        let parent = BlockManifest(header: h, entries: [(5, 50), (1, 10), (9, 90)])
        let path = BlockManifest.path(directory: dir, snapshotID: "snap-p")
        try parent.write(to: path)
        let loaded = try BlockManifest(path: path)
        #expect(loaded == parent)
        #expect(loaded.hash(of: 5) == 50 && loaded.hash(of: 6) == nil)
        let jh = UploadJournalHeader(
            imagePath: "/x", image: FileIdentity(device: 1, inode: 2, size: 3, modifiedNanoseconds: 4), overlayDigest: "",
            optionsDigest: "", volumeSizeGiB: 1, region: "r", endpoint: "e", clientToken: "t", timeoutMinutes: 60,
            state: .starting)
        let j = try UploadJournal(directory: dir + "/j", key: "k", header: jh, resume: false, blockCount: 2048)
        try j.record(index: 5, sha256: [UInt8](repeating: 0, count: 32), xxh3: 0, isZero: true)
        try j.record(index: 7, sha256: [UInt8](repeating: 1, count: 32), xxh3: 77, isZero: false)
        try j.record(index: 9, sha256: [UInt8](repeating: 1, count: 32), xxh3: 99, isZero: false)
        let child = try BlockManifest.merged(
            parent: parent, header: BlockManifestHeader(snapshotID: "snap-c", volumeSizeGiB: 1, blockSize: ebsBlockSize, encrypted: false),
            journal: j)
        #expect(child.indexes == [1, 7, 9] && child.hashes == [10, 77, 99])

        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.append(0)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect { _ = try BlockManifest(path: path) } throws: { ($0 as? ManifestError)?.message.contains("multiple of 16") == true }
        bytes[0] = 0
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect { _ = try BlockManifest(path: path) } throws: { ($0 as? ManifestError)?.offset == 0 }
    }

    @Test("resume refusals say exactly why")
    func resumeRefusal() {
        let id = FileIdentity(device: 1, inode: 2, size: 100, modifiedNanoseconds: 5)
        let base = UploadJournalHeader(
            imagePath: "/x", image: id, overlayDigest: "o", optionsDigest: "p", volumeSizeGiB: 1, region: "r",
            endpoint: "e", clientToken: "t", timeoutMinutes: 60, state: .uploading(snapshotID: "snap-1", startedAt: 0))
        let now = Date(timeIntervalSince1970: 10_000)
        #expect(UploadResumption.refusal(old: base, new: base, lastActivity: now, now: now) == nil)
        var b = base
        b.image.modifiedNanoseconds = 6
        #expect(UploadResumption.refusal(old: base, new: b, lastActivity: now, now: now)?.contains("modified") == true)
        b = base
        b.image.size = 200
        #expect(UploadResumption.refusal(old: base, new: b, lastActivity: now, now: now)?.contains("size") == true)
        b = base
        b.overlayDigest = "x"
        #expect(UploadResumption.refusal(old: base, new: b, lastActivity: now, now: now)?.contains("overlaid") == true)
        b = base
        b.optionsDigest = "x"
        #expect(UploadResumption.refusal(old: base, new: b, lastActivity: now, now: now)?.contains("options") == true)
        let stale = Date(timeIntervalSince1970: 10_000 - 3601)
        #expect(UploadResumption.refusal(old: base, new: base, lastActivity: stale, now: now)?.contains("expired") == true)
    }

    @Test("EBS request shapes: PutSnapshotBlock is unsigned-payload with no Content-Type; errors parse")
    func requestShapes() throws {
        let client = AWSServiceClient(
            service: .ebs, region: "us-east-1", endpoint: Endpoint(scheme: "https", host: "ebs.us-east-1.amazonaws.com"),
            transport: NoTransport(), credentials: { AWSCredentials(accessKeyID: "AK", secretAccessKey: "SK") })
        let data = [UInt8](repeating: 1, count: ebsBlockSize)
        var put = EBSAPI.putSnapshotBlock(snapshotID: "snap-1", index: 9, data: data, checksum: EBSAPI.checksum(data), client: client)
        #expect(put.header("Content-Type") == nil)
        let sig = SigV4.sign(&put, credentials: AWSCredentials(accessKeyID: "AK", secretAccessKey: "SK"), region: "us-east-1", service: "ebs", date: Date())
        #expect(sig.signedHeaders == "host;x-amz-checksum;x-amz-checksum-algorithm;x-amz-content-sha256;x-amz-data-length;x-amz-date")
        #expect(sig.canonicalRequest.hasSuffix("\nUNSIGNED-PAYLOAD"))
        let start = try EBSAPI.parseStartSnapshot(HTTPResponse(status: 201, body: Array(#"{"SnapshotId":"snap-2","BlockSize":524288}"#.utf8)))
        #expect(start.snapshotID == "snap-2" && start.blockSize == ebsBlockSize)
        #expect(throws: AWSResponseError.self) { _ = try EBSAPI.parseStartSnapshot(HTTPResponse(status: 200, body: Array("<html>".utf8))) }
    }
}

struct NoTransport: HTTPTransport {
    func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse {
        throw TransportError(.connect, "no network in this test")
    }
}

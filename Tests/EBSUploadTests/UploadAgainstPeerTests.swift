import AWSCore
import BlockHashing
import EBSUpload
import EC2TestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Uploads against moto behind the strict peer; every upload is read back with boto3 and compared.
@Suite("Upload against moto + strict peer", .serialized, .enabled(if: TestEnv.motoTestsEnabled))
struct UploadAgainstPeerTests {
    static let gib: UInt64 = 1 << 30
    static let block = UInt64(TestImage.block)

    /// A 1 GiB + 12345-byte sparse image (volume 2 GiB): scattered data blocks, a run of written zeros (data
    /// extents that are all zero), a block half data half hole, and data in the last partial block.
    static func makeImage(_ dir: String, seed: UInt64 = 7) throws -> (path: String, dataBlocks: Set<Int>) {
        let path = dir + "/image.raw"
        let size = gib + 12345
        var writes: [(UInt64, [UInt8])] = []
        var data = Set<Int>()
        for i in [0, 1, 2, 17, 300, 301, 1000, 1500, 2047] {
            writes.append((UInt64(i) * block, TestImage.pattern(i, seed: seed)))
            data.insert(i)
        }
        writes.append((400 * block, [UInt8](repeating: 0, count: 3 * Int(block))))  // written zeros
        writes.append((600 * block + 262_144, Array(TestImage.pattern(600, seed: seed)[0..<131_072])))  // partial
        data.insert(600)
        writes.append((gib + 4096, Array(TestImage.pattern(2048, seed: seed)[0..<8000])))  // last partial block
        data.insert(2048)
        try TestImage.make(path, size: size, writes: writes)
        return (path, data)
    }

    static func options(_ dir: String, workers: Int = 4, timeout: Duration = .seconds(2)) -> UploadOptions {
        var o = UploadOptions(stateDirectory: dir + "/state")
        o.workers = workers
        o.policy = UploadHarness.fastPolicy(attemptTimeout: timeout)
        o.seed = 42
        o.description = "zlabel test"
        o.tags = [SnapshotTag(key: "Name", value: "omnios")]
        return o
    }

    @Test("a sparse image uploads, holes are never read, and reads back identical")
    func cleanUpload() async throws {
        let dir = try TestEnv.tempDir("clean")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, dataBlocks) = try Self.makeImage(dir)
        let image = try ImageFile(path: path)
        let reader = try ImageBlockReader(source: image)
        let result = try await UploadHarness.with(endpoint: peer.endpoint, token: "session-token-example") { up, _ in
            try await up.upload(image: image, options: Self.options(dir))
        }
        #expect(result.volumeSizeGiB == 2)
        #expect(result.blocksUploaded == dataBlocks.count)
        #expect(result.changedBlocksCount == dataBlocks.count)
        #expect(result.zeroBlocksSkipped == 3)
        #expect(result.bytesRead == reader.dataBytes, "only data extents are read")
        #expect(result.bytesRead < UInt64(dataBlocks.count + 3) * Self.block, "no hole bytes read")
        #expect(result.imageDataBytes == reader.dataBytes)
        try peer.expectNoRejections()
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")
        #expect(rb.written == dataBlocks.count)
        #expect(FileManager.default.fileExists(atPath: try #require(result.manifestPath)))
    }

    @Test("StartSnapshot's answer lost and the ClientToken not honoured: the retry finds the snapshot by its tag")
    func lostStartAnswer() async throws {
        let dir = try TestEnv.tempDir("lost-start")
        let peer = try StrictPeer(["--ignore-client-token", "--lose-start-answers", "1"])
        defer { peer.stop() }
        let (path, dataBlocks) = try Self.makeImage(dir)
        let image = try ImageFile(path: path)
        let (result, log) = try await UploadHarness.with(endpoint: peer.endpoint) { up, lines in
            (try await up.upload(image: image, options: Self.options(dir)), lines())
        }
        let stats = try peer.stats()
        #expect((stats["faults"] as? [String: Int])?["lost-start"] == 1, "the peer lost the first answer")
        #expect((stats["requests"] as? [String: Int])?["StartSnapshot"] == 1, "no second StartSnapshot: \(log)")
        let snapshots = ((stats["snapshots"] as? [String: Any]) ?? [:]).keys.sorted()
        #expect(snapshots == [result.snapshotID], "one snapshot: \(log)")
        #expect(result.blocksUploaded == dataBlocks.count)
        try peer.expectNoRejections()
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")
    }

    static let schedules: [(String, [String])] = [
        ("throttling", ["--faults", "throttle=0.35", "--seed", "11"]),
        ("5xx", ["--faults", "5xx=0.35", "--seed", "12"]),
        ("resets", ["--faults", "reset=0.35", "--seed", "13"]),
        ("stalls", ["--faults", "stall=0.12", "--seed", "14", "--stall-seconds", "3"]),
        ("everything", ["--faults", "throttle=0.1,5xx=0.1,reset=0.1,stall=0.05", "--seed", "15", "--stall-seconds", "3"]),
        ("not found after StartSnapshot", ["--notfound-window", "1.0", "--seed", "16"]),
    ]

    @Test("completes under every fault schedule with an identical read-back", arguments: 0..<6)
    func faultSchedule(_ n: Int) async throws {
        let (name, args) = Self.schedules[n]
        let dir = try TestEnv.tempDir("faults\(n)")
        let peer = try StrictPeer(args)
        defer { peer.stop() }
        let (path, dataBlocks) = try Self.makeImage(dir, seed: UInt64(n))
        let image = try ImageFile(path: path)
        let (result, lines) = try await UploadHarness.with(endpoint: peer.endpoint, attemptTimeout: .seconds(1)) { up, lines in
            (try await up.upload(image: image, options: Self.options(dir, timeout: .seconds(1))), lines())
        }
        let stats = try peer.stats()
        let faults = (stats["faults"] as? [String: Int]) ?? [:]
        let injected = faults.values.reduce(0, +)
        #expect(injected > 0, "\(name): the schedule injected no fault")
        #expect(result.retries >= injected, "\(name): every injected fault costs a retry (\(faults))")
        #expect(lines.filter { $0.contains("retry ") }.count == result.retries, "\(name): each retry is logged")
        #expect(result.changedBlocksCount == dataBlocks.count)
        try peer.expectNoRejections()
        let snaps = (stats["snapshots"] as? [String: Any]) ?? [:]
        #expect(snaps.count == 1, "\(name): StartSnapshot retries reuse the client token")
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(name): \(rb)")
    }

    @Test("StartSnapshot faults: one snapshot, same client token across retries")
    func startSnapshotRetries() async throws {
        let dir = try TestEnv.tempDir("start")
        // Every key is faulted up to 3 times: StartSnapshot fails three times, some after moto created it.
        let peer = try StrictPeer(["--faults", "5xx=0.5,reset=0.5", "--seed", "3", "--max-faults-per-key", "3"])
        defer { peer.stop() }
        let (path, _) = try Self.makeImage(dir)
        let image = try ImageFile(path: path)
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: image, options: Self.options(dir))
        }
        let stats = try peer.stats()
        let requests = (stats["requests"] as? [String: Int]) ?? [:]
        // The first StartSnapshot is always faulted. Each later attempt first looks for the snapshot by its
        // client-token tag (DescribeSnapshots) and sends StartSnapshot again, with the same token, only when
        // none is listed; whether the fault came before or after moto created the snapshot depends on the token.
        #expect((requests["StartSnapshot"] ?? 0) + (requests["DescribeSnapshots"] ?? 0) >= 2, "\(requests)")
        #expect((stats["snapshots"] as? [String: Any])?.count == 1)
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")
    }

    @Test("access denied stops at once: no retries, nothing new dispatched")
    func accessDenied() async throws {
        let dir = try TestEnv.tempDir("denied")
        let peer = try StrictPeer(["--deny", "put"])
        defer { peer.stop() }
        let (path, _) = try Self.makeImage(dir)
        let image = try ImageFile(path: path)
        let clock = ContinuousClock()
        let t0 = clock.now
        await #expect {
            _ = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
                try await up.upload(image: image, options: Self.options(dir, workers: 4))
            }
        } throws: { error in
            guard let e = error as? SnapshotUploadError else { return false }
            return e.failure.retryClass == .accessDenied && !e.resumable && e.snapshotID != nil
        }
        #expect(clock.now - t0 < .seconds(10))
        let stats = try peer.stats()
        #expect(stats["max_put_attempts_per_block"] as? Int == 1, "a denied block is never retried")
        #expect((stats["denied"] as? Int ?? 99) <= 4, "at most the blocks already in flight")
    }

    @Test("--wait polls DescribeSnapshots until the peer reports completed")
    func waitForCompleted() async throws {
        let dir = try TestEnv.tempDir("wait")
        let peer = try StrictPeer(["--complete-delay", "2.5"])
        defer { peer.stop() }
        let (path, _) = try Self.makeImage(dir)
        let image = try ImageFile(path: path)
        var o = Self.options(dir)
        o.wait = true
        o.waitInterval = .milliseconds(500)
        o.waitTimeout = .seconds(30)
        let opts = o
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: image, options: opts)
        }
        #expect(result.state == "completed")
        let stats = try peer.stats()
        #expect(((stats["requests"] as? [String: Int])?["DescribeSnapshots"] ?? 0) >= 3)
    }

    @Test("overlay: patched bytes are uploaded, the image file is untouched")
    func overlay() async throws {
        let dir = try TestEnv.tempDir("overlay")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, _) = try Self.makeImage(dir)
        let before = try TestImage.fingerprint(ofFile: path)
        // A patch inside a data block, one spanning a block boundary into a hole, one in the middle of a hole,
        // and one at the very end of the image.
        let size = Self.gib + 12345
        let overlay = try ByteRangeOverlay([
            (offset: 17 * Self.block + 1000, bytes: [UInt8](repeating: 0xAB, count: 300)),
            (offset: 3 * Self.block - 100, bytes: [UInt8](repeating: 0xCD, count: 200)),
            (offset: 900 * Self.block + 5, bytes: Array("ZFS label edit".utf8)),
            (offset: size - 16, bytes: [UInt8](repeating: 0xEE, count: 16)),
        ])
        var o = Self.options(dir)
        o.overlay = overlay
        let opts = o
        let image = try ImageFile(path: path)
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: image, options: opts)
        }
        #expect(try TestImage.fingerprint(ofFile: path) == before)
        let expected = dir + "/expected.raw"
        try TestImage.expectedCopy(of: path, overlay: overlay, to: expected)
        try peer.expectNoRejections()
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: expected)
        #expect(rb.identical, "\(rb)")
        // Blocks 3 and 900 were holes; the overlay made them data.
        #expect(result.blocksUploaded == 13)
    }

    @Test("incremental: only changed blocks are sent; cleared blocks are sent as zeros")
    func incremental() async throws {
        let dir = try TestEnv.tempDir("incr")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, dataBlocks) = try Self.makeImage(dir)
        let base = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: try ImageFile(path: path), options: Self.options(dir))
        }
        // Change two blocks, zero one, punch a hole over another, add one.
        let fd = open(path, O_RDWR)
        let changed = TestImage.pattern(1, seed: 999)
        _ = changed.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(1 * Self.block)) }
        _ = changed.withUnsafeBytes { pwrite(fd, $0.baseAddress, 10, off_t(1000 * Self.block + 77)) }
        let zeros = [UInt8](repeating: 0, count: TestImage.block)
        _ = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(300 * Self.block)) }
        _ = changed.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(1200 * Self.block)) }
        close(fd)
        let punched = TestEnv.run(["/usr/bin/env", "fallocate", "--punch-hole", "--offset", "\(1500 * Self.block)",
                                   "--length", "\(Self.block)", path])
        #expect(punched.status == 0, "fallocate --punch-hole: \(punched.err)")
        var o = Self.options(dir)
        o.parentSnapshotID = base.snapshotID
        let opts = o
        let child = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: try ImageFile(path: path), options: opts)
        }
        #expect(child.blocksUploaded == 3)  // blocks 1, 1000, 1200
        #expect(child.zeroBlocksUploaded == 2)  // blocks 300 and 1500 are cleared
        #expect(child.unchangedBlocksSkipped == dataBlocks.count - 4)
        try peer.expectNoRejections()
        let rb = try Readback.check(
            motoURL: peer.motoURL, snapshot: child.snapshotID, parents: [base.snapshotID], expectedImage: path)
        #expect(rb.identical, "\(rb)")
    }

    @Test("encrypted: zero blocks and holes are uploaded too, holes still not read")
    func encrypted() async throws {
        let dir = try TestEnv.tempDir("enc")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let path = dir + "/small.raw"
        try TestImage.make(path, size: 4 * Self.block, writes: [(Self.block, TestImage.pattern(1))])
        var o = Self.options(dir, workers: 8)
        o.encrypted = true
        let opts = o
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: try ImageFile(path: path), options: opts)
        }
        #expect(result.volumeSizeGiB == 1)
        #expect(result.blocksUploaded == 1)
        #expect(result.zeroBlocksUploaded == 2047)
        #expect(result.bytesRead == Self.block)
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical && rb.written == 2048, "\(rb)")
    }

    /// Runs an upload and cancels it once `blocks` blocks are done; returns the journal's snapshot id.
    static func interruptedUpload(endpoint: String, path: String, dir: String, after blocks: Int) async throws -> String {
        let opts = Self.options(dir, workers: 2)
        let task = Task {
            try await UploadHarness.with(endpoint: endpoint) { up, _ in
                try await up.upload(image: try ImageFile(path: path), options: opts) { p in
                    if p.blocksDone >= blocks { withUnsafeCurrentTask { $0?.cancel() } }
                }
            }
        }
        _ = try? await task.value
        let uploads = dir + "/state/uploads"
        let json = try #require(try FileManager.default.contentsOfDirectory(atPath: uploads).first { $0.hasSuffix(".json") })
        let header = try JSONDecoder().decode(
            UploadJournalHeader.self, from: try Data(contentsOf: URL(fileURLWithPath: uploads + "/" + json)))
        #expect(header.state.name == "uploading")
        return try #require(header.snapshotID)
    }

    @Test("an interrupted upload resumes into the same snapshot")
    func resumeSameSnapshot() async throws {
        let dir = try TestEnv.tempDir("resume")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, dataBlocks) = try Self.makeImage(dir)
        let first = try await Self.interruptedUpload(endpoint: peer.endpoint, path: path, dir: dir, after: 4)
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: try ImageFile(path: path), options: Self.options(dir))
        }
        #expect(result.resumed)
        #expect(result.snapshotID == first)
        #expect(result.blocksFromEarlierRun > 0)
        #expect(result.blocksUploaded + result.blocksFromEarlierRun >= dataBlocks.count)
        #expect(result.changedBlocksCount == dataBlocks.count)
        try peer.expectNoRejections()
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")
    }

    @Test("resume is refused, with the reason, when the pending snapshot is gone")
    func resumeRefusedWhenGone() async throws {
        let dir = try TestEnv.tempDir("gone")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, _) = try Self.makeImage(dir)
        let first = try await Self.interruptedUpload(endpoint: peer.endpoint, path: path, dir: dir, after: 3)
        peer.delete(snapshot: first)
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(image: try ImageFile(path: path), options: Self.options(dir))
        }
        #expect(!result.resumed)
        #expect(result.snapshotID != first)
        #expect(result.resumeRefusedReason?.contains("no longer exists") == true, "\(result.resumeRefusedReason ?? "nil")")
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")
    }

    @Test("run again after it finished, an upload names the same snapshot and sends nothing; --no-resume or a deleted snapshot starts anew")
    func rerunAfterFinish() async throws {
        let dir = try TestEnv.tempDir("rerun")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, dataBlocks) = try Self.makeImage(dir)
        func upload(_ o: UploadOptions) async throws -> UploadResult {
            try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
                try await up.upload(image: try ImageFile(path: path), options: o)
            }
        }
        let first = try await upload(Self.options(dir))
        #expect(!first.resumed)
        let blocksSent = try peer.requests("PutSnapshotBlock")
        #expect(blocksSent >= dataBlocks.count)

        // The same command again: as if the first run had been killed after CompleteSnapshot, before its output.
        let again = try await upload(Self.options(dir))
        #expect(again.snapshotID == first.snapshotID)
        #expect(again.resumed)
        #expect(again.blocksUploaded == 0 && again.bytesRead == 0 && again.bytesUploaded == 0)
        #expect(again.changedBlocksCount == first.changedBlocksCount)
        #expect(again.manifestPath != nil && again.manifestPath == first.manifestPath)
        #expect(try peer.requests("StartSnapshot") == 1)
        #expect(try peer.requests("PutSnapshotBlock") == blocksSent)
        #expect(try peer.requests("CompleteSnapshot") == 1)

        // --no-resume: a new snapshot.
        var o = Self.options(dir)
        o.resume = false
        let fresh = try await upload(o)
        #expect(fresh.snapshotID != first.snapshotID)
        #expect(!fresh.resumed && fresh.blocksUploaded == dataBlocks.count)

        // The snapshot the journal names is deleted: the next run uploads again and says why.
        peer.delete(snapshot: fresh.snapshotID)
        let third = try await upload(Self.options(dir))
        #expect(third.snapshotID != fresh.snapshotID && third.snapshotID != first.snapshotID)
        #expect(!third.resumed && third.blocksUploaded == dataBlocks.count)
        #expect(third.resumeRefusedReason?.contains("no longer exists") == true, "\(third.resumeRefusedReason ?? "nil")")

        // Another image at the same path (changed contents): uploaded anew, with no refusal to report.
        let fd = open(path, O_RDWR)
        let changed = TestImage.pattern(5, seed: 77)
        _ = changed.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(5 * Self.block)) }
        close(fd)
        let fourth = try await upload(Self.options(dir))
        #expect(fourth.snapshotID != third.snapshotID && !fourth.resumed && fourth.resumeRefusedReason == nil)
        #expect(fourth.blocksUploaded == dataBlocks.count + 1)
        try peer.expectNoRejections()
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: fourth.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")
    }

    @Test("every block is hinted to the image (prefetch) before it is read; holes are neither hinted nor read")
    func prefetchAhead() async throws {
        let dir = try TestEnv.tempDir("prefetch")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let bs = Int(Self.block)
        var bytes = [UInt8](repeating: 0, count: 40 * bs)
        var extents: [Range<UInt64>] = []
        for i in stride(from: 0, to: 40, by: 3) {
            let p = TestImage.pattern(i)
            bytes.replaceSubrange((i * bs)..<((i + 1) * bs), with: p)
            extents.append(UInt64(i * bs)..<UInt64((i + 1) * bs))
        }
        let source = CountingSource(InMemoryImage(bytes: bytes, extents: extents))
        var o = Self.options(dir, workers: 2)
        o.seed = 3
        let opts = o
        let result = try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
            try await up.upload(
                source: source, name: dir + "/memory", identity: FileIdentity(device: 1, inode: 2, size: source.size,
                                                                                modifiedNanoseconds: 3),
                options: opts)
        }
        #expect(result.blocksUploaded == extents.count)
        #expect(source.reads.count == extents.count)
        #expect(source.hintedBeforeRead.allSatisfy { $0 }, "\(source.hintedBeforeRead)")
        #expect(Set(source.prefetches) == Set(extents), "only data is hinted, each block once")
        #expect(source.prefetches.count == extents.count)
    }

    @Test("blocks are hashed side by side; a companion whose read fails is read again by its own task; a block that never reads stops the upload, named")
    func pairedHashingAndFailedReads() async throws {
        let dir = try TestEnv.tempDir("pairs")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let path = dir + "/image.raw"
        try TestImage.make(path, size: 12 * Self.block, writes: (0..<12).map { (UInt64($0) * Self.block, TestImage.pattern($0, seed: 11)) })
        // Twelve data blocks, dispatched in order: block 4's task reads blocks 5, 6 and 7 as its companions, and the
        // read of 5 fails.
        let flaky = FlakySource(try ImageFile(path: path), failing: [5: 1], blockSize: Self.block)
        var o = Self.options(dir, workers: 2)
        o.seed = 5
        let opts = o
        let (result, lines) = try await UploadHarness.with(endpoint: peer.endpoint) { up, lines in
            (try await up.upload(
                source: flaky, name: path, identity: FileIdentity(device: 1, inode: 3, size: flaky.size, modifiedNanoseconds: 4),
                options: opts), lines())
        }
        #expect(result.blocksUploaded == 12)
        #expect(flaky.reads(of: 5) == 2, "read once as a companion (failed), once by its own task")
        #expect((0..<12).filter { $0 != 5 }.allSatisfy { flaky.reads(of: $0) == 1 }, "every other block read once")
        // Batches of four: 0–3 and 8–11 hashed side by side; of 4, 6 and 7 (5's read failed) two side by side and
        // one alone; 5 alone, when its own task read it.
        let together = SHA256Lanes.sideBySide ? 10 : 0
        #expect(
            lines.contains("debug: SHA-256: \(together) blocks hashed side by side"),
            "\(lines.filter { $0.contains("SHA-256") })")
        try peer.expectNoRejections()
        let rb = try Readback.check(motoURL: peer.motoURL, snapshot: result.snapshotID, expectedImage: path)
        #expect(rb.identical, "\(rb)")

        // A block that can never be read: the upload stops, naming it, whether it was a companion (9) or not.
        for bad: UInt64 in [9, 8] {
            let broken = FlakySource(try ImageFile(path: path), failing: [bad: Int.max], blockSize: Self.block)
            var p = Self.options(dir + "/\(bad)", workers: 2)
            p.resume = false
            let popts = p
            await #expect {
                try await UploadHarness.with(endpoint: peer.endpoint) { up, _ in
                    try await up.upload(
                        source: broken, name: path + ".\(bad)",
                        identity: FileIdentity(device: 1, inode: 4 + bad, size: broken.size, modifiedNanoseconds: 4), options: popts)
                }
            } throws: { error in
                guard let e = error as? SnapshotUploadError else { return false }
                return e.failure.block == bad && e.failure.error.contains("read failed") && e.failure.error.contains("injected")
            }
        }
    }
}

/// An image whose reads of some blocks fail a given number of times, counting the reads of each block.
final class FlakySource: ImageSource, @unchecked Sendable {
    struct Injected: Error, CustomStringConvertible {
        var block: UInt64
        var description: String { "injected read failure in block \(block)" }
    }
    let inner: any ImageSource
    let blockSize: UInt64
    private let lock = NSLock()
    private var left: [UInt64: Int]
    private var count: [UInt64: Int] = [:]
    init(_ inner: any ImageSource, failing: [UInt64: Int], blockSize: UInt64) {
        self.inner = inner
        self.left = failing
        self.blockSize = blockSize
    }
    var size: UInt64 { inner.size }
    func reads(of block: UInt64) -> Int { lock.withLock { count[block, default: 0] } }
    func dataExtents() throws -> [Range<UInt64>] { try inner.dataExtents() }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let block = offset / blockSize
        let fail = lock.withLock { () -> Bool in
            count[block, default: 0] += 1
            guard let n = left[block], n > 0 else { return false }
            left[block] = n - 1
            return true
        }
        if fail { throw Injected(block: block) }
        try inner.read(into: buffer, at: offset)
    }
    func prefetch(_ range: Range<UInt64>) { inner.prefetch(range) }
}

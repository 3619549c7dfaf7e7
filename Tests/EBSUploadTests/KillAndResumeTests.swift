import AWSCore
import EBSUpload
import EC2TestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `zlabel ec2 upload` binary, killed with SIGKILL at random points and run again.
@Suite("zlabel ec2 upload: kill and resume", .serialized, .enabled(if: TestEnv.motoTestsEnabled))
struct KillAndResumeTests {
    /// The zlabel executable built next to the test bundle.
    static var zlabel: String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 {
            let p = dir.appendingPathComponent("zlabel").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// Requests the peer has seen for the EBS write calls.
    static func writeRequests(_ peer: StrictPeer, transport: AsyncHTTPTransport) async -> Int {
        let req = AWSRequest(
            method: "GET", endpoint: Endpoint(scheme: "http", host: "127.0.0.1", port: peer.port), path: "/_peer/stats")
        guard let r = try? await transport.send(req, timeout: .seconds(2)),
            let o = try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any],
            let reqs = o["requests"] as? [String: Int]
        else { return 0 }
        return (reqs["StartSnapshot"] ?? 0) + (reqs["PutSnapshotBlock"] ?? 0) + (reqs["CompleteSnapshot"] ?? 0)
    }

    @Test("killed at random points, the rerun finishes the same snapshot with an identical read-back")
    func killAndResume() async throws {
        let exe = try #require(Self.zlabel, "the zlabel executable is not built next to the tests")
        var rng = SplitMix64(seed: 20_260_115)
        try await AsyncHTTPTransport.withTransport { transport in
            for round in 0..<4 {
                let dir = try TestEnv.tempDir("kill\(round)")
                let peer = try StrictPeer(["--faults", "throttle=0.15", "--seed", "\(round)"])
                defer { peer.stop() }
                let (path, dataBlocks) = try UploadAgainstPeerTests.makeImage(dir, seed: UInt64(round))
                let total = dataBlocks.count + 2
                let killAt = Int(rng.next() % UInt64(total)) + 1
                let args = [
                    "ec2", "upload", path, "--endpoint-url", peer.endpoint, "--state-dir", dir + "/state",
                    "--workers", "2", "--no-progress", "--attempt-timeout", "2",
                ]
                let (p, _, _) = try EC2Process.launch(exe, args)
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(60)
                while p.isRunning, clock.now < deadline {
                    if await Self.writeRequests(peer, transport: transport) >= killAt { break }
                    try await Task.sleep(for: .milliseconds(5))
                }
                let killed = p.isRunning
                if killed { kill(p.processIdentifier, SIGKILL) }
                p.waitUntilExit()

                let (p2, out2, err2) = try EC2Process.launch(exe, args)
                let stdout = String(decoding: out2.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let stderr = String(decoding: err2.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p2.waitUntilExit()
                #expect(p2.terminationStatus == 0, "round \(round): \(stderr)")
                let id = stdout.trimmingCharacters(in: .newlines)
                #expect(stdout == id + "\n" && id.hasPrefix("snap-"), "stdout holds the snapshot id alone: \(stdout)")
                let stats = try peer.stats()
                let snaps = (stats["snapshots"] as? [String: Any]) ?? [:]
                // One snapshot, whenever the kill came: mid-upload the rerun resumes it; after CompleteSnapshot
                // (even after the journal was finished, before the id was printed) the rerun names it again.
                #expect(snaps.count == 1, "round \(round) (killed: \(killed), after \(killAt) requests): the rerun said:\n\(stderr)")
                #expect(snaps[id] != nil, "round \(round): the rerun's snapshot is the one the peer has")
                try peer.expectNoRejections()
                let rb = try Readback.check(motoURL: peer.motoURL, snapshot: id, expectedImage: path)
                #expect(rb.identical, "round \(round): \(rb)")
            }
        }
    }

    @Test("--json prints one JSON object on stdout; logs go to stderr")
    func jsonOutput() async throws {
        let exe = try #require(Self.zlabel, "the zlabel executable is not built next to the tests")
        let dir = try TestEnv.tempDir("json")
        let peer = try StrictPeer()
        defer { peer.stop() }
        let (path, dataBlocks) = try UploadAgainstPeerTests.makeImage(dir)
        let (p, out, err) = try EC2Process.launch(
            exe, ["ec2", "upload", path, "--endpoint-url", peer.endpoint, "--state-dir", dir + "/state", "--json",
                  "--tag", "Name=omnios", "--description", "test image"])
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any])
        #expect((obj["snapshot_id"] as? String)?.hasPrefix("snap-") == true)
        #expect(obj["blocks_uploaded"] as? Int == dataBlocks.count)
        #expect(stderr.contains("started snap-"))
        #expect(!stderr.contains("testing"), "no credential in the log")
    }
}

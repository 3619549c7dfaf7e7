import AWSCore
import EC2TestSupport
import Foundation
import Testing
import TestSupport

/// `zlabel ec2 publish` killed (SIGKILL, from inside, through `ZLABEL_TEST_CRASH_AT`) at each named step of the
/// upload journal, StartSnapshot, CompleteSnapshot, RegisterImage and CopyImage sequence, then run again: the
/// rerun must finish with exactly one snapshot, one AMI per region, and a snapshot that reads back as the image
/// with the target's labels.
@Suite("ec2 publish killed at every crash point", .serialized, .enabled(if: TestEnv.motoTestsEnabled))
struct CrashPointTests {
    /// The points where the journal has a client token but no snapshot id: the only ones where a rerun can send
    /// StartSnapshot again (before the journal exists nothing was sent, and the run is a fresh one).
    static let beforeSnapshotJournaled: [CrashPoint] = [.journalCreated, .startSnapshotSent, .startSnapshotAnswered]

    struct Mode: Sendable, CustomTestStringConvertible {
        /// The peer honours StartSnapshot's ClientToken as AWS documents; otherwise it ignores it, as moto does
        /// (and as a rerun meets it when the token is no longer remembered).
        var honoursClientToken: Bool
        var points: [CrashPoint]
        var testDescription: String {
            honoursClientToken ? "ClientToken honoured (AWS)" : "ClientToken ignored (moto)"
        }
    }

    static let modes = [
        Mode(honoursClientToken: true, points: CrashPoint.allCases),
        Mode(honoursClientToken: false, points: beforeSnapshotJournaled),
    ]

    /// The third block, so that blocks are both behind and ahead of the kill.
    static func spec(_ p: CrashPoint) -> String { p == .blockRecorded ? p.rawValue + "@3" : p.rawValue }

    @Test("killed at the point, the rerun leaves one snapshot and one AMI per region, read back identical",
          arguments: modes)
    func killAndRerun(_ mode: Mode) throws {
        let target = "ec2-xen-hvm"
        let scratch = try Fixture.scratchCopy("disk-gpt.img")
        let input = scratch.url
        let inputHash = try PublishEndToEndTests.sha256(input)
        var peerArgs = ["--image-delay", "0", "--complete-delay", "0"]
        if !mode.honoursClientToken { peerArgs.append("--ignore-client-token") }
        let peer = try StrictPeer(peerArgs)
        defer { peer.stop() }
        let env = PublishEndToEndTests.environment(peer)

        // What the snapshot must hold: the input with the target's labels, as `zlabel set` writes them.
        let expected = scratch.directory.file("expected.img")
        #expect(TestEnv.run(["/bin/cp", "--sparse=always", input.path, expected.path]).status == 0)
        let set = try ZLabelCLI.run(["set", expected.path, "--target", target,
                                     "--backup", scratch.directory.file("backup").path])
        try #require(set.status == 0, "\(set)")

        var snapshotsBefore = Set<String>()
        var readBack: [(point: CrashPoint, snapshot: String)] = []
        for (i, point) in mode.points.enumerated() {
            let name = "crash point \(i)"
            let args = ["ec2", "publish", input.path, "--name", name, "--target", target,
                        "--state-dir", scratch.directory.file("state-\(i)").path, "--copy-to", "us-west-2",
                        "--no-progress", "--workers", "2", "--attempt-timeout", "20"]

            let crashed = try ZLabelCLI.run(args, environment: env.merging(
                [CrashPoint.environmentVariable: Self.spec(point)]) { $1 })
            #expect(crashed.status == 128 + 9, "\(point.rawValue): killed there\n\(crashed)")

            let rerun = try ZLabelCLI.run(args, environment: env)
            #expect(rerun.status == 0, "\(point.rawValue): the rerun\n\(rerun)")
            let ids = rerun.stdoutText.split(separator: "\n").map(String.init)
            #expect(ids.count == 2 && ids.allSatisfy { $0.hasPrefix("ami-") }, "\(point.rawValue): \(rerun)")

            let stats = try peer.stats()
            let snapshots = Set(((stats["snapshots"] as? [String: Any]) ?? [:]).keys)
            let new = snapshots.subtracting(snapshotsBefore)
            snapshotsBefore = snapshots
            #expect(new.count == 1, "\(point.rawValue): one snapshot, not \(new.sorted())\n\(rerun.stderrText)")

            let images = ((stats["images"] as? [String: [String: Any]]) ?? [:]).values.filter {
                $0["name"] as? String == name
            }
            let regions = images.compactMap { $0["region"] as? String }.sorted()
            #expect(regions == ["us-east-1", "us-west-2"], "\(point.rawValue): one AMI per region, got \(regions)")
            let home = images.first { $0["region"] as? String == "us-east-1" }
            let snapshot = (home?["mappings"] as? [[String: Any]])?.first?["snapshot"] as? String
            #expect(snapshot != nil && new.contains(snapshot!), "\(point.rawValue): the AMI is on the new snapshot")
            if let snapshot { readBack.append((point, snapshot)) }
        }
        // Every point's snapshot read back with boto3 (one process for all of them).
        let results = try Readback.checkEach(
            motoURL: peer.motoURL, snapshots: readBack.map(\.snapshot), expectedImage: expected.path)
        for (point, snapshot) in readBack {
            let rb = results[snapshot]
            #expect(rb?.identical == true, "\(point.rawValue): \(snapshot) read back as \(String(describing: rb))")
        }
        try peer.expectNoRejections()
        #expect(try PublishEndToEndTests.sha256(input) == inputHash, "the input was only read")
    }
}

import AWSCore
import EBSUpload
import EC2AMI
import EC2TestSupport
import Foundation
import Testing

/// A registrar and an uploader talking to a peer with test credentials.
enum AMIHarness {
    /// Short polls, so waits are quick but still poll several times.
    static let schedule = WaitSchedule(
        initialInterval: .milliseconds(100), maxInterval: .milliseconds(400), multiplier: 2, timeout: .seconds(120))

    static func with<R: Sendable>(
        endpoint: String, region: String = "us-east-1",
        _ body: (AMIRegistrar, SnapshotUploader, @Sendable () -> [String]) async throws -> R
    ) async throws -> R {
        let vars = [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        ]
        let env = AWSEnvironment(variables: vars, homeDirectory: "/nonexistent")
        let config = try AWSConfiguration(environment: env, options: AWSClientOptions(endpointURL: endpoint))
        let log = LogCollector()
        return try await SocketTransport.withTransport(
            configuration: .init(
                maxThreads: 8, maxIdleConnectionsPerHost: 8, connectTimeout: .seconds(2), readTimeout: .seconds(5))
        ) { transport in
            let session = try await AWSSession(configuration: config, transport: transport, log: log.log)
            let policy = UploadHarness.fastPolicy(attemptTimeout: .seconds(5))
            let ec2 = EC2Client(client: try session.client(for: .ec2), policy: policy)
            let registrar = AMIRegistrar(home: AMIClient(ec2: ec2)) { region in
                AMIClient(ec2: try session.ec2Client(region: region, policy: policy))
            }
            let uploader = SnapshotUploader(ebs: EBSClient(client: try session.client(for: .ebs)), ec2: ec2, log: log.log)
            return try await body(registrar, uploader, { log.lines })
        }
    }

    /// Uploads a small image (two data blocks, 1 GiB volume) and returns its snapshot; with `wait` the snapshot
    /// is completed when this returns, otherwise it is still pending for the peer's --complete-delay.
    static func snapshot(_ uploader: SnapshotUploader, wait: Bool = true) async throws -> String {
        let dir = try TestEnv.tempDir("ami")
        let path = dir + "/tiny.raw"
        try TestImage.make(path, size: 8 << 20, writes: [(0, TestImage.pattern(0)), (5 * UInt64(TestImage.block), TestImage.pattern(5))])
        var o = UploadOptions(stateDirectory: dir + "/state")
        o.workers = 2
        o.policy = UploadHarness.fastPolicy(attemptTimeout: .seconds(5))
        o.wait = wait
        o.waitInterval = .milliseconds(100)
        return try await uploader.upload(image: try ImageFile(path: path), options: o).snapshotID
    }

    static func request(_ name: String, snapshot: String) -> AMIRequest {
        var r = AMIRequest(registration: ImageRegistration(name: name, snapshotID: snapshot))
        r.schedule = schedule
        r.snapshotWait = schedule
        r.wait = true
        return r
    }
}

/// Registration, kernel lookup, waits, copies and shares against moto behind the strict peer, which checks
/// RegisterImage as AWS does and keeps images pending for a while.
@Suite("AMI registration against moto + strict peer", .serialized, .enabled(if: TestEnv.motoTestsEnabled))
struct AMIAgainstPeerTests {
    @Test("HVM: every field reaches the peer, and the wait polls through pending to available")
    func hvmRegistration() async throws {
        let peer = try StrictPeer(["--image-delay", "0", "--image-pending-polls", "2"])
        defer { peer.stop() }
        let (result, lines, snap) = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, lines in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("omnios hvm (test)", snapshot: snap)
            req.registration.description = "zlabel test"
            req.registration.enaSupport = true
            req.registration.bootMode = .uefi
            req.registration.imdsV2Only = true
            req.registration.volumeType = .gp3
            req.registration.volumeSizeGiB = 4
            req.registration.tags = [ImageTag(key: "Name", value: "omnios"), ImageTag(key: "release", value: "r151054")]
            return (try await registrar.run(req), lines(), snap)
        }
        let image = try #require(result.images.first)
        #expect(result.images.count == 1)
        #expect(image.state == "available")
        #expect(!image.reused)
        let stored = try #require(try peer.images()[image.imageID])
        #expect(stored["virtualization"] as? String == "hvm")
        #expect(stored["architecture"] as? String == "x86_64")
        #expect(stored["root"] as? String == "/dev/xvda")
        #expect(stored["kernel"] is NSNull)
        #expect(stored["ena"] as? Bool == true)
        #expect(stored["boot_mode"] as? String == "uefi")
        #expect(stored["imds"] as? String == "v2.0")
        #expect(stored["description"] as? String == "zlabel test")
        #expect(stored["tags"] as? [String: String] == ["Name": "omnios", "release": "r151054"])
        let mapping = try #require((stored["mappings"] as? [[String: Any]])?.first)
        #expect(mapping["device"] as? String == "/dev/xvda")
        #expect(mapping["snapshot"] as? String == snap)
        #expect(mapping["size"] as? Int == 4)
        #expect(mapping["type"] as? String == "gp3")
        // The wait saw the image pending before it saw it available.
        let states = lines.filter { $0.contains("\(image.imageID) in us-east-1: ") }
        #expect(states.contains { $0.hasSuffix(": pending") }, "\(lines)")
        #expect(states.last?.hasSuffix(": available") == true, "\(lines)")
        // One look for an image of that name before registering, then three polls: pending, pending, available.
        #expect(try peer.requests("DescribeImages") >= 4)
        try peer.expectNoRejections()
    }

    /// The kernel the peer seeded for this variant that `findPVGrubKernel` must choose: Amazon's, x86_64,
    /// the highest version in its name.
    static func expectedKernel(_ peer: StrictPeer, _ variant: PVGrubVariant, region: String = "us-east-1") throws -> String {
        let kernels = try #require((try peer.stats()["kernels"] as? [String: [[String: Any]]])?[region])
        let prefix = "pv-grub-\(variant.rawValue)_"
        let mine = kernels.filter {
            ($0["owner"] as? String) == "amazon" && ($0["architecture"] as? String) == "x86_64"
                && (($0["name"] as? String) ?? "").hasPrefix(prefix)
        }
        func version(_ k: [String: Any]) -> [Int] {
            let name = (k["name"] as? String ?? "").dropFirst(prefix.count)
            return name.prefix { $0 != "-" }.split(separator: ".").map { Int($0) ?? -1 }
        }
        let best = try #require(mine.max { version($0).lexicographicallyPrecedes(version($1)) })
        return try #require(best["id"] as? String)
    }

    @Test("paravirtual with --kernel-id auto: Amazon's newest PV-GRUB of the variant, over paged DescribeImages",
          arguments: PVGrubVariant.allCases)
    func paravirtualAutoKernel(_ variant: PVGrubVariant) async throws {
        let peer = try StrictPeer(["--kernels", "--image-delay", "0", "--image-pending-polls", "1", "--images-page-size", "1"])
        defer { peer.stop() }
        let result = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("omnios pv \(variant.rawValue)", snapshot: snap)
            req.registration.virtualization = .paravirtual
            req.registration.kernel = .automatic(variant)
            return try await registrar.run(req)
        }
        let expected = try Self.expectedKernel(peer, variant)
        #expect(result.kernelID == expected)
        #expect(result.kernelSource == .describeImages)
        let imageID = try #require(result.images.first).imageID
        let stored = try #require(try peer.images()[imageID])
        #expect(stored["virtualization"] as? String == "paravirtual")
        #expect(stored["kernel"] as? String == expected)
        #expect(stored["root"] as? String == "/dev/sda")
        // The name check, the kernel lookup in two pages of one (hd0 and hd00 each have 1.04 and 1.05), and two polls.
        #expect(try peer.requests("DescribeImages") >= 5)
        try peer.expectNoRejections()
    }

    @Test("DescribeImages listing no PV-GRUB kernel: AWS's published table supplies it, marked as such",
          arguments: PVGrubVariant.allCases)
    func documentedKernelFallback(_ variant: PVGrubVariant) async throws {
        // The kernel exists for RegisterImage (the strict peer refuses unknown AKIs) but is never listed.
        let peer = try StrictPeer(["--unlisted-kernel", "us-east-1:x86_64:aki-5c21674b", "--image-delay", "0"])
        defer { peer.stop() }
        let (result, lines) = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, lines in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("omnios pv table \(variant.rawValue)", snapshot: snap)
            req.registration.virtualization = .paravirtual
            req.registration.kernel = .automatic(variant)
            return (try await registrar.run(req), lines())
        }
        #expect(PVGrubTable.kernel(region: "us-east-1", architecture: "x86_64")?.imageID == "aki-5c21674b")
        #expect(result.kernelID == "aki-5c21674b")
        #expect(result.kernelSource == .documentedTable)
        let json = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
        #expect(json.contains(#""kernelSource":"documented-table""#), "\(json)")
        #expect(lines.contains { $0.contains("aki-5c21674b") && $0.contains("published table") }, "\(lines)")
        let imageID = try #require(result.images.first).imageID
        #expect(try peer.images()[imageID]?["kernel"] as? String == "aki-5c21674b")
        try peer.expectNoRejections()
    }

    @Test("no PV-GRUB kernel listed in a region the published table lacks is an error naming the region")
    func kernelMissing() async throws {
        let peer = try StrictPeer([])  // no --kernels
        defer { peer.stop() }
        #expect(PVGrubTable.kernel(region: "ap-south-1", architecture: "x86_64") == nil)
        await #expect(throws: AMIError.kernelNotFound(region: "ap-south-1", architecture: "x86_64", variant: "hd00")) {
            try await AMIHarness.with(endpoint: peer.endpoint, region: "ap-south-1") { registrar, uploader, _ in
                let snap = try await AMIHarness.snapshot(uploader)
                var req = AMIHarness.request("omnios pv none", snapshot: snap)
                req.registration.virtualization = .paravirtual
                req.registration.kernel = .automatic(.hd00)
                _ = try await registrar.run(req)
            }
        }
        #expect(try peer.requests("RegisterImage") == 0)
    }

    @Test("copies to two regions and shares every image; running again reuses them all; CreateTags adds a tag")
    func copyAndShare() async throws {
        let peer = try StrictPeer(["--image-delay", "0.5"])
        defer { peer.stop() }
        let account = "111122223333"
        let (first, second) = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("omnios copied", snapshot: snap)
            req.registration.tags = [ImageTag(key: "Name", value: "omnios")]
            req.copyRegions = ["us-west-2", "eu-west-1"]
            req.shareWith = [account]
            let first = try await registrar.run(req)
            let second = try await registrar.run(req)
            try await registrar.home.createTags(
                resourceIDs: [first.images[0].imageID], tags: [ImageTag(key: "stage", value: "tested")])
            return (first, second)
        }
        #expect(first.images.map(\.region) == ["us-east-1", "us-west-2", "eu-west-1"])
        #expect(Set(first.images.map(\.imageID)).count == 3)
        #expect(first.images.allSatisfy { $0.state == "available" && !$0.reused })
        let images = try peer.images()
        for (i, image) in first.images.enumerated() {
            let stored = try #require(images[image.imageID])
            #expect(stored["region"] as? String == image.region)
            #expect(stored["name"] as? String == "omnios copied")
            #expect(stored["launch_users"] as? [String] == [account])
            let tags: [String: String] = i == 0 ? ["Name": "omnios", "stage": "tested"] : ["Name": "omnios"]
            #expect(stored["tags"] as? [String: String] == tags)
            if i > 0 { #expect(stored["source"] as? String == "us-east-1/\(first.images[0].imageID)") }
        }
        #expect(second.images.map(\.imageID) == first.images.map(\.imageID))
        #expect(second.images.allSatisfy { $0.reused })
        #expect(try peer.requests("RegisterImage") == 1)
        #expect(try peer.requests("CopyImage") == 2)
        try peer.expectNoRejections()
    }

    @Test("a failed image and a failed copy are reported with their state and reason")
    func failedStates() async throws {
        let peer = try StrictPeer(["--image-delay", "0.5", "--image-fail", "doomed", "--copy-fail", "us-west-2"])
        defer { peer.stop() }
        try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            do {
                _ = try await registrar.run(AMIHarness.request("doomed image", snapshot: snap))
                Issue.record("no error")
            } catch let AMIError.imageFailed(id, region, state, reason) {
                #expect(id.hasPrefix("ami-"))
                #expect(region == "us-east-1")
                #expect(state == "failed")
                #expect(reason?.contains("injected failure") == true, "\(reason ?? "")")
            }
            var req = AMIHarness.request("copy fails", snapshot: snap)
            req.copyRegions = ["us-west-2"]
            do {
                _ = try await registrar.run(req)
                Issue.record("no error")
            } catch let AMIError.imageFailed(_, region, state, _) {
                #expect(region == "us-west-2")
                #expect(state == "failed")
            }
        }
        try peer.expectNoRejections()
    }

    @Test("a wait stops at its limit while the image is still pending, and soon for an image EC2 never lists")
    func waitLimit() async throws {
        let peer = try StrictPeer(["--image-delay", "600"])
        defer { peer.stop() }
        try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("slow image", snapshot: snap)
            req.schedule.timeout = .seconds(1)
            do {
                _ = try await registrar.run(req)
                Issue.record("no error")
            } catch let AMIError.waitTimedOut(_, _, state, _) {
                #expect(state == "pending")
            }
            // An id EC2 never knew is polled only for the grace period.
            var schedule = AMIHarness.schedule
            schedule.notListedGrace = .milliseconds(500)
            await #expect(throws: AMIError.imageNotListed(imageID: "ami-0123456789abcdef0", region: "us-east-1")) {
                _ = try await registrar.home.waitUntilAvailable(imageID: "ami-0123456789abcdef0", schedule: schedule)
            }
        }
        #expect(try peer.requests("DescribeImages") >= 2, "the name check, then at least one poll")
    }

    @Test("a pending snapshot is waited for; a missing one is refused before RegisterImage")
    func snapshotStates() async throws {
        let peer = try StrictPeer(["--complete-delay", "1.0", "--image-delay", "0.2"])
        defer { peer.stop() }
        try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let pending = try await AMIHarness.snapshot(uploader, wait: false)
            let r = try await registrar.run(AMIHarness.request("after pending", snapshot: pending))
            #expect(r.images.first?.state == "available")
            peer.delete(snapshot: pending)
            do {
                _ = try await registrar.run(AMIHarness.request("snapshot gone", snapshot: pending))
                Issue.record("no error")
            } catch let AMIError.snapshotUnusable(id, _) {
                #expect(id == pending)
            }
        }
        #expect(try peer.requests("RegisterImage") == 1)
        try peer.expectNoRejections()
    }

    @Test("a name already used for another snapshot's AMI is a conflict, not a reuse")
    func nameTaken() async throws {
        let peer = try StrictPeer(["--image-delay", "0.2"])
        defer { peer.stop() }
        try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let a = try await AMIHarness.snapshot(uploader)
            let b = try await AMIHarness.snapshot(uploader)
            let first = try await registrar.run(AMIHarness.request("omnios same name", snapshot: a))
            do {
                _ = try await registrar.run(AMIHarness.request("omnios same name", snapshot: b))
                Issue.record("no error")
            } catch let AMIError.nameTaken(name, imageID, snapshotID) {
                #expect(name == "omnios same name")
                #expect(imageID == first.images[0].imageID)
                #expect(snapshotID == a)
            }
        }
        try peer.expectNoRejections()
    }

    @Test("every first answer lost: RegisterImage, CopyImage and sharing are retried without duplicates")
    func lostAnswers() async throws {
        let peer = try StrictPeer(["--image-delay", "0.3", "--ec2-faults", "lost=1.0", "--max-faults-per-key", "1"])
        defer { peer.stop() }
        let result = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("omnios lost answers", snapshot: snap)
            req.copyRegions = ["us-west-2"]
            req.shareWith = ["111122223333"]
            return try await registrar.run(req)
        }
        let images = try peer.images()
        #expect(images.count == 2, "one AMI and one copy, no duplicates: \(images.keys)")
        #expect(result.images.map(\.imageID).allSatisfy { images[$0] != nil })
        #expect(try peer.requests("RegisterImage") == 2, "the first answer was lost, the retry found the image")
        #expect(try peer.requests("CopyImage") == 2, "the retry with the same client token got the same copy")
        #expect(result.images.allSatisfy { $0.state == "available" })
        try peer.expectNoRejections()
    }

    @Test("throttling, 5xx and lost answers mixed on a seeded schedule", arguments: [21, 22, 23])
    func mixedFaults(_ seed: Int) async throws {
        let peer = try StrictPeer([
            "--image-delay", "0.3", "--ec2-faults", "throttle=0.2,5xx=0.2,lost=0.2", "--seed", String(seed),
        ])
        defer { peer.stop() }
        let result = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            var req = AMIHarness.request("omnios faults \(seed)", snapshot: snap)
            req.copyRegions = ["eu-west-1"]
            req.shareWith = ["111122223333"]
            return try await registrar.run(req)
        }
        #expect(result.images.count == 2)
        #expect(try peer.images().count == 2)
        let faults = try #require(try peer.stats()["faults"] as? [String: Int])
        #expect(faults.values.reduce(0, +) > 0, "the schedule injected nothing")
        try peer.expectNoRejections()
    }

    @Test("the peer refuses RegisterImage requests AWS refuses (sent raw, past zlabel's own checks)")
    func peerRejects() async throws {
        let peer = try StrictPeer(["--kernels"])
        defer { peer.stop() }
        let kernel = try Self.expectedKernel(peer, .hd0)
        let codes = try await AMIHarness.with(endpoint: peer.endpoint) { registrar, uploader, _ in
            let snap = try await AMIHarness.snapshot(uploader)
            func base(_ name: String, virt: String = "hvm", root: String = "/dev/xvda") -> EC2Parameters {
                var p = EC2Parameters()
                p.add("Name", name)
                p.add("Architecture", "x86_64")
                p.add("VirtualizationType", virt)
                p.add("RootDeviceName", root)
                p.add("BlockDeviceMapping.1.DeviceName", "/dev/xvda")
                p.add("BlockDeviceMapping.1.Ebs.SnapshotId", snap)
                return p
            }
            var cases: [(String, EC2Parameters)] = []
            cases.append(("InvalidAMIName.Malformed", base("x!")))
            cases.append(("InvalidBlockDeviceMapping", base("root not mapped", root: "/dev/sda1")))
            cases.append(("InvalidParameterCombination", base("pv without kernel", virt: "paravirtual")))
            var hvmKernel = base("hvm with kernel")
            hvmKernel.add("KernelId", kernel)
            cases.append(("InvalidParameterCombination", hvmKernel))
            var pvBadKernel = base("pv bad kernel", virt: "paravirtual")
            pvBadKernel.add("KernelId", "aki-00000000")
            cases.append(("InvalidAKIID.NotFound", pvBadKernel))
            var small = base("too small")
            small.add("BlockDeviceMapping.1.Ebs.VolumeSize", "0")
            cases.append(("InvalidBlockDeviceMapping", small))
            var missing = EC2Parameters()
            for p in base("no such snapshot").pairs {
                missing.add(p.name, p.name.hasSuffix("SnapshotId") ? "snap-0000000000000dead" : p.value)
            }
            cases.append(("InvalidSnapshot.NotFound", missing))
            var noVirt = EC2Parameters()
            for p in base("no virtualization").pairs where p.name != "VirtualizationType" { noVirt.add(p.name, p.value) }
            cases.append(("InvalidParameterValue", noVirt))
            var out: [(String, String)] = []
            for (want, params) in cases {
                do {
                    _ = try await registrar.home.ec2.call("RegisterImage", params)
                    out.append((want, "accepted"))
                } catch let e as AWSServiceError {
                    out.append((want, e.code))
                }
            }
            return out
        }
        for (want, got) in codes { #expect(got == want) }
        let rejections = try #require(try peer.stats()["rejections"] as? [String])
        #expect(rejections.count == codes.count)
        #expect(try peer.images().isEmpty)
    }
}

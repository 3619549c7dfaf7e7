import AWSCore
import EC2AMI
import Foundation
import Testing

/// The AMI request rules, response parsing and wait schedule, without a server.
@Suite("AMI requests and responses (no server)")
struct AMIUnitTests {
    static func hvm() -> ImageRegistration { ImageRegistration(name: "omnios r151054", snapshotID: "snap-0123456789abcdef0") }

    @Test("VirtualizationType and Architecture are always sent; the root device is the one mapping")
    func parametersAlwaysCarryTypes() throws {
        let r = Self.hvm()
        try r.validate()
        let p = Dictionary(r.parameters(kernelID: nil).pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(p["VirtualizationType"] == "hvm")
        #expect(p["Architecture"] == "x86_64")
        #expect(p["RootDeviceName"] == "/dev/xvda")
        #expect(p["BlockDeviceMapping.1.DeviceName"] == "/dev/xvda")
        #expect(p["BlockDeviceMapping.1.Ebs.SnapshotId"] == "snap-0123456789abcdef0")
        #expect(p["KernelId"] == nil)

        var pv = r
        pv.virtualization = .paravirtual
        pv.kernel = .id("aki-88aa75e1")
        try pv.validate()
        let q = Dictionary(pv.parameters(kernelID: "aki-88aa75e1").pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(q["VirtualizationType"] == "paravirtual")
        #expect(q["RootDeviceName"] == "/dev/sda")
        #expect(q["KernelId"] == "aki-88aa75e1")
    }

    @Test("requests EC2 would refuse, or that boot nothing, are refused before sending")
    func validation() {
        func refused(_ change: (inout ImageRegistration) -> Void) -> Bool {
            var r = Self.hvm()
            change(&r)
            do { try r.validate(); return false } catch { return true }
        }
        #expect(refused { $0.name = "ab" })
        #expect(refused { $0.name = String(repeating: "a", count: 129) })
        #expect(refused { $0.name = "omnios!" })
        #expect(!refused { $0.name = "OmniOS (r151054) [x86]/2026-11-27 build_1 @ami.-'" })
        #expect(refused { $0.snapshotID = "vol-1234" })
        #expect(refused { $0.kernel = .id("aki-12345678") })  // HVM with a kernel
        #expect(refused { $0.virtualization = .paravirtual })  // PV without a kernel
        #expect(refused { $0.virtualization = .paravirtual; $0.kernel = .id("ami-12345678") })
        #expect(refused { $0.virtualization = .paravirtual; $0.kernel = .automatic(.hd0); $0.enaSupport = true })
        #expect(refused { $0.virtualization = .paravirtual; $0.kernel = .automatic(.hd0); $0.bootMode = .uefi })
        #expect(refused { $0.virtualization = .paravirtual; $0.kernel = .automatic(.hd0); $0.architecture = .arm64 })
        #expect(refused { $0.architecture = .arm64; $0.bootMode = .legacyBIOS })
        #expect(refused { $0.volumeSizeGiB = 0 })
        #expect(refused { $0.volumeType = .standard; $0.volumeSizeGiB = 1025 })
        #expect(!refused { $0.volumeType = .gp3; $0.volumeSizeGiB = 16384 })
        #expect(refused { $0.rootDeviceName = "xvda" })
        #expect(refused { $0.tags = [ImageTag(key: "aws:x", value: "y")] })
        #expect(refused { $0.tags = [ImageTag(key: "a", value: "1"), ImageTag(key: "a", value: "2")] })
        #expect(refused { $0.description = String(repeating: "d", count: 256) })
    }

    @Test("copy regions and share accounts are checked")
    func requestValidation() {
        var req = AMIRequest(registration: Self.hvm())
        req.copyRegions = ["us-east-1"]
        #expect(throws: AMIError.self) { try req.validate(homeRegion: "us-east-1") }
        req.copyRegions = ["us-west-2", "us-west-2"]
        #expect(throws: AMIError.self) { try req.validate(homeRegion: "us-east-1") }
        req.copyRegions = ["us-west-2"]
        req.shareWith = ["12345"]
        #expect(throws: AMIError.self) { try req.validate(homeRegion: "us-east-1") }
        req.shareWith = ["111122223333"]
        #expect(throws: Never.self) { try req.validate(homeRegion: "us-east-1") }
    }

    @Test("tags parse as KEY=VALUE")
    func tags() throws {
        #expect(try ImageTag(parsing: "Name=omnios=r54") == ImageTag(key: "Name", value: "omnios=r54"))
        #expect(try ImageTag(parsing: "empty=") == ImageTag(key: "empty", value: ""))
        #expect(throws: AMIError.self) { try ImageTag(parsing: "=x") }
        #expect(throws: AMIError.self) { try ImageTag(parsing: "novalue") }
    }

    @Test("the wait schedule grows by its multiplier and stops at its cap")
    func schedule() {
        let s = WaitSchedule(initialInterval: .seconds(2), maxInterval: .seconds(30), multiplier: 2, timeout: .seconds(600))
        let delays = (1...7).map { s.delay(afterPoll: $0) }
        #expect(delays == [.seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30), .seconds(30), .seconds(30)])
        #expect(WaitSchedule(multiplier: 0.5).multiplier == 1)
    }

    static let describeImages = """
        <?xml version="1.0" encoding="UTF-8"?>
        <DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>
        <imagesSet><item><imageId>ami-0abc</imageId><imageState>failed</imageState><name>n</name>
        <architecture>x86_64</architecture><rootDeviceName>/dev/xvda</rootDeviceName>
        <blockDeviceMapping><item><deviceName>/dev/xvdb</deviceName><ebs><snapshotId>snap-other</snapshotId></ebs></item>
        <item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>snap-root</snapshotId><volumeSize>8</volumeSize></ebs></item>
        </blockDeviceMapping><virtualizationType>hvm</virtualizationType><enaSupport>true</enaSupport>
        <tagSet><item><key>k</key><value>v</value></item></tagSet>
        <stateReason><code>Client.InvalidSnapshot</code><message>bad snapshot</message></stateReason></item></imagesSet>
        </DescribeImagesResponse>
        """

    @Test("DescribeImages items parse into typed images; items without an id or state are errors, not traps")
    func parseImages() throws {
        let doc = try XMLTree.parse(Array(Self.describeImages.utf8))
        let image = try EC2Image(item: try #require(doc.items("imagesSet").first))
        #expect(image.imageID == "ami-0abc")
        #expect(image.state == "failed")
        #expect(image.rootSnapshotID == "snap-root")
        #expect(image.mappings.count == 2)
        #expect(image.mappings[1].volumeSize == 8)
        #expect(image.enaSupport == true)
        #expect(image.tags == ["k": "v"])
        #expect(image.stateReason == "Client.InvalidSnapshot: bad snapshot")
        #expect(throws: AWSResponseError.self) { try EC2Image(item: XMLTree(name: "item", children: [XMLTree(name: "imageState", text: "available")])) }
    }

    /// Answers every request with one canned response.
    struct CannedTransport: HTTPTransport {
        var response: HTTPResponse
        func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse { response }
    }

    static func client(_ status: Int, _ body: String) -> AMIClient {
        let service = AWSServiceClient(
            service: .ec2, region: "us-east-1", endpoint: Endpoint(scheme: "http", host: "127.0.0.1", port: 9),
            transport: CannedTransport(response: HTTPResponse(status: status, body: Array(body.utf8))),
            credentials: { AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", source: "test") })
        return AMIClient(ec2: EC2Client(client: service, policy: RetryPolicy(maxAttempts: 1)))
    }

    @Test("malformed and error responses become typed errors")
    func malformedResponses() async throws {
        let reg = Self.hvm()
        await #expect(throws: AWSResponseError.self) {
            _ = try await Self.client(200, "this is not XML").registerImage(reg, kernelID: nil)
        }
        await #expect(throws: AWSResponseError.self) {
            _ = try await Self.client(200, "<RegisterImageResponse><requestId>x</requestId></RegisterImageResponse>")
                .registerImage(reg, kernelID: nil)
        }
        await #expect(throws: AWSResponseError.self) {
            _ = try await Self.client(200, "<Other/>").describeImages(ids: ["ami-1"])
        }
        await #expect(throws: AWSResponseError.self) {
            _ = try await Self.client(200, "<ModifyImageAttributeResponse><return>false</return></ModifyImageAttributeResponse>")
                .addLaunchPermission(imageID: "ami-1", accounts: ["111122223333"])
        }
        await #expect(throws: AWSResponseError.self) {
            _ = try await Self.client(200, "<Other/>").createTags(resourceIDs: ["ami-1"], tags: [ImageTag(key: "a", value: "b")])
        }
        let error = """
            <Response><Errors><Error><Code>InvalidAMIName.Duplicate</Code><Message>AMI name n is already in use</Message>\
            </Error></Errors><RequestID>req-1</RequestID></Response>
            """
        do {
            _ = try await Self.client(400, error).registerImage(reg, kernelID: nil)
            Issue.record("no error thrown")
        } catch let e as AWSServiceError {
            #expect(e.code == "InvalidAMIName.Duplicate")
            #expect(e.requestID == "req-1")
            #expect(e.retryClass == .fatal)
        }
    }
}

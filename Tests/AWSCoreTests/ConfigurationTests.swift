import AWSCore
import Foundation
import Synchronization
import Testing

/// An environment with in-memory files.
func testEnvironment(_ vars: [String: String], files: [String: String] = [:]) -> AWSEnvironment {
    AWSEnvironment(variables: vars, homeDirectory: "/home/u", readFile: { files[$0] })
}

/// Answers from a table of (method, path) → response; records requests.
final class FakeTransport: HTTPTransport {
    let routes: [String: HTTPResponse]
    let seen = Mutex<[AWSRequest]>([])
    init(_ routes: [String: HTTPResponse]) { self.routes = routes }
    func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse {
        seen.withLock { $0.append(request) }
        guard let r = routes["\(request.method) \(request.path)"] else { throw TransportError(.connect, "refused") }
        return r
    }
}

@Suite("AWS configuration, credentials and endpoints")
struct ConfigurationTests {
    static let config = """
        # comment
        [default]
        region = eu-west-1
        ; another comment
        [profile dev]
        region = us-west-2
        services = local
        aws_access_key_id = AKCONFIG
        aws_secret_access_key = SKCONFIG
        [profile proc]
        credential_process = /bin/echo '{"Version": 1, "AccessKeyId": "AKPROC", "SecretAccessKey": "SKPROC", "SessionToken": "TPROC", "Expiration": "2099-01-01T00:00:00Z"}'
        [profile role]
        role_arn = arn:aws:iam::123456789012:role/x
        source_profile = default
        [profile ep]
        endpoint_url = http://127.0.0.1:9999
        [services local]
        ebs =
          endpoint_url = http://127.0.0.1:4000
        ec2 =
          endpoint_url = http://127.0.0.1:4001
        """
    static let credentials = """
        [default]
        aws_access_key_id = AKFILE
        aws_secret_access_key = SKFILE
        [dev]
        aws_access_key_id = AKDEVFILE
        aws_secret_access_key = SKDEVFILE
        aws_session_token = TDEV
        """
    static let files = ["/home/u/.aws/config": config, "/home/u/.aws/credentials": credentials]

    @Test("INI parsing: comments, colon separators, nested service tables, no inline comments")
    func ini() throws {
        let f = try SharedConfigFile(parsing: "[a]\nX = 1 # not a comment\ny: 2\nnest =\n  k = v\n  K2 = w\n", path: "t")
        #expect(f.sections["a"]?["x"] == .string("1 # not a comment"))
        #expect(f.sections["a"]?["y"] == .string("2"))
        #expect(f.sections["a"]?["nest"] == .nested(["k": "v", "k2": "w"]))
        #expect { _ = try SharedConfigFile(parsing: "key = 1\n", path: "cfg") } throws: {
            ($0 as? AWSConfigurationError)?.message == "cfg:1: a key outside any [section]"
        }
    }

    @Test("profile: --profile, then AWS_DEFAULT_PROFILE, then AWS_PROFILE; a missing one is an error")
    func profileOrder() throws {
        let env = testEnvironment(["AWS_PROFILE": "dev", "AWS_DEFAULT_PROFILE": "ep"], files: Self.files)
        #expect(try AWSConfiguration(environment: env, options: .init()).profileName == "ep")
        #expect(try AWSConfiguration(environment: env, options: .init(profile: "proc")).profileName == "proc")
        #expect(throws: AWSConfigurationError.self) {
            _ = try AWSConfiguration(environment: testEnvironment(["AWS_PROFILE": "nope"], files: Self.files), options: .init())
        }
    }

    @Test("region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile")
    func regionOrder() throws {
        func region(_ v: [String: String], _ o: AWSClientOptions = .init()) throws -> String? {
            try AWSConfiguration(environment: testEnvironment(v, files: Self.files), options: o).configuredRegion
        }
        #expect(try region([:]) == "eu-west-1")
        #expect(try region(["AWS_PROFILE": "dev"]) == "us-west-2")
        #expect(try region(["AWS_DEFAULT_REGION": "ap-south-1", "AWS_PROFILE": "dev"]) == "ap-south-1")
        #expect(try region(["AWS_REGION": "ca-central-1", "AWS_DEFAULT_REGION": "ap-south-1"]) == "ca-central-1")
        #expect(try region(["AWS_REGION": "ca-central-1"], .init(region: "sa-east-1")) == "sa-east-1")
    }

    @Test("endpoints: flag, service env, global env, services section, profile, default; ignore switch")
    func endpointOrder() throws {
        func ep(_ v: [String: String], _ o: AWSClientOptions = .init(), _ s: AWSService = .ebs) throws -> String {
            try AWSConfiguration(environment: testEnvironment(v, files: Self.files), options: o)
                .endpoint(for: s, region: "us-east-1").endpoint.baseURL
        }
        #expect(try ep([:]) == "https://ebs.us-east-1.amazonaws.com")
        #expect(try ep([:], .init(), .ec2) == "https://ec2.us-east-1.amazonaws.com")
        #expect(try ep(["AWS_PROFILE": "ep"]) == "http://127.0.0.1:9999")
        #expect(try ep(["AWS_PROFILE": "dev"]) == "http://127.0.0.1:4000")
        #expect(try ep(["AWS_PROFILE": "dev"], .init(), .ec2) == "http://127.0.0.1:4001")
        #expect(try ep(["AWS_PROFILE": "dev", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"]) == "http://127.0.0.1:5000")
        #expect(try ep(["AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL_EBS": "http://127.0.0.1:5001"]) == "http://127.0.0.1:5001")
        #expect(try ep(["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:5002"], .init(), .ebs) == "https://ebs.us-east-1.amazonaws.com")
        #expect(try ep(["AWS_ENDPOINT_URL_EBS": "http://127.0.0.1:5001"], .init(endpointURL: "http://127.0.0.1:6000")) == "http://127.0.0.1:6000")
        #expect(try ep(["AWS_ENDPOINT_URL_EBS": "http://127.0.0.1:5001", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_PROFILE": "dev"]) == "https://ebs.us-east-1.amazonaws.com")
        #expect(try AWSConfiguration(environment: testEnvironment([:]), options: .init()).endpoint(for: .ebs, region: "cn-north-1").endpoint.host == "ebs.cn-north-1.amazonaws.com.cn")
        #expect(throws: AWSConfigurationError.self) { _ = try ep([:], .init(endpointURL: "not a url")) }
    }

    @Test("files: AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE move them")
    func fileOverrides() async throws {
        let env = testEnvironment(
            ["AWS_CONFIG_FILE": "/etc/c", "AWS_SHARED_CREDENTIALS_FILE": "/etc/k"],
            files: ["/etc/c": "[default]\nregion = us-east-2\n", "/etc/k": "[default]\naws_access_key_id = A\naws_secret_access_key = S\n"])
        let c = try AWSConfiguration(environment: env, options: .init())
        #expect(c.configuredRegion == "us-east-2")
        let creds = try await CredentialChain(configuration: c, transport: NoNetwork()).credentials()
        #expect(creds.accessKeyID == "A" && creds.source == "shared-credentials-file")
    }

    static func creds(_ vars: [String: String], _ options: AWSClientOptions = .init(), transport: any HTTPTransport = NoNetwork())
        async throws -> AWSCredentials
    {
        var v = vars
        v["AWS_EC2_METADATA_DISABLED"] = v["AWS_EC2_METADATA_DISABLED"] ?? "true"
        let c = try AWSConfiguration(environment: testEnvironment(v, files: Self.files), options: options)
        return try await CredentialChain(configuration: c, transport: transport).credentials()
    }

    @Test("credential chain order")
    func chainOrder() async throws {
        let env = try await Self.creds(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV", "AWS_SESSION_TOKEN": "TENV"])
        #expect(env.accessKeyID == "AKENV" && env.sessionToken == "TENV" && env.source == "environment")
        // AWS_PROFILE does not disable env credentials; --profile does.
        let envWins = try await Self.creds(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV", "AWS_PROFILE": "dev"])
        #expect(envWins.accessKeyID == "AKENV")
        let flag = try await Self.creds(["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV"], .init(profile: "dev"))
        #expect(flag.accessKeyID == "AKDEVFILE" && flag.sessionToken == "TDEV")
        #expect(try await Self.creds([:]).accessKeyID == "AKFILE")
        let proc = try await Self.creds(["AWS_PROFILE": "proc"])
        #expect(proc.accessKeyID == "AKPROC" && proc.sessionToken == "TPROC" && proc.source == "credential_process")
        await #expect(throws: AWSConfigurationError.self) { _ = try await Self.creds(["AWS_PROFILE": "role"]) }
        await #expect(throws: AWSConfigurationError.self) { _ = try await Self.creds(["AWS_ACCESS_KEY_ID": "only"]) }
        let none = try AWSConfiguration(environment: testEnvironment(["AWS_EC2_METADATA_DISABLED": "true"]), options: .init())
        await #expect(throws: AWSConfigurationError.self) { _ = try await CredentialChain(configuration: none, transport: NoNetwork()).credentials() }
    }

    @Test("IMDSv2: token, role, credentials and region; the token is sent on every call")
    func imds() async throws {
        let creds = #"{"Code":"Success","AccessKeyId":"AKIMDS","SecretAccessKey":"SKIMDS","Token":"TIMDS","Expiration":"2099-01-01T00:00:00Z"}"#
        let t = FakeTransport([
            "PUT /latest/api/token": HTTPResponse(status: 200, body: Array("tok".utf8)),
            "GET /latest/meta-data/iam/security-credentials/": HTTPResponse(status: 200, body: Array("my-role\n".utf8)),
            "GET /latest/meta-data/iam/security-credentials/my-role": HTTPResponse(status: 200, body: Array(creds.utf8)),
            "GET /latest/meta-data/placement/region": HTTPResponse(status: 200, body: Array("eu-north-1".utf8)),
        ])
        let env = testEnvironment(["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1234", "AWS_CONFIG_FILE": "/none", "AWS_SHARED_CREDENTIALS_FILE": "/none"])
        let c = try AWSConfiguration(environment: env, options: .init())
        let got = try await CredentialChain(configuration: c, transport: t).credentials()
        #expect(got.accessKeyID == "AKIMDS" && got.sessionToken == "TIMDS" && got.source == "instance-metadata")
        let region = await InstanceMetadataClient(environment: env, transport: t).region()
        #expect(region == "eu-north-1")
        let reqs = t.seen.withLock { $0 }
        #expect(reqs.first?.header("X-aws-ec2-metadata-token-ttl-seconds") == "21600")
        #expect(reqs.filter { $0.method == "GET" }.allSatisfy { $0.header("X-aws-ec2-metadata-token") == "tok" })
        #expect(reqs.allSatisfy { $0.endpoint.port == 1234 })
        let session = try await AWSSession(configuration: c, transport: t)
        #expect(session.region == "eu-north-1")
    }

    @Test("container credentials with an authorization token")
    func container() async throws {
        let t = FakeTransport([
            "GET /v2/creds": HTTPResponse(status: 200, body: Array(#"{"AccessKeyId":"AKC","SecretAccessKey":"SKC","Token":"TC","Expiration":"2099-01-01T00:00:00Z"}"#.utf8))
        ])
        let got = try await Self.creds(
            ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/v2/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "xyz",
             "AWS_CONFIG_FILE": "/none", "AWS_SHARED_CREDENTIALS_FILE": "/none"], transport: t)
        #expect(got.accessKeyID == "AKC" && got.source == "container")
        #expect(t.seen.withLock { $0.first?.header("Authorization") } == "xyz")
    }
}

struct NoNetwork: HTTPTransport {
    func send(_ request: AWSRequest, timeout: Duration) async throws(TransportError) -> HTTPResponse {
        throw TransportError(.connect, "no network in unit tests")
    }
}

@Suite("Errors, retries, XML")
struct ErrorAndRetryTests {
    @Test("EBS JSON errors: code from x-amzn-ErrorType without its ':' suffix; Reason kept")
    func ebsError() {
        let r = HTTPResponse(
            status: 400, headers: [("x-amzn-ErrorType", "RequestThrottledException:http://internal.amazon.com/coral/")],
            body: Array(#"{"Message":"Rate exceeded","Reason":"RESOURCE_LEVEL_THROTTLE"}"#.utf8))
        let e = AWSServiceError(operation: "PutSnapshotBlock", response: r)
        #expect(e.code == "RequestThrottledException" && e.reason == "RESOURCE_LEVEL_THROTTLE" && e.retryClass == .throttled)
        let t = AWSServiceError(operation: "X", response: HTTPResponse(status: 400, body: Array(#"{"__type":"com.amazon#ValidationException","message":"bad"}"#.utf8)))
        #expect(t.code == "ValidationException" && t.message == "bad" && t.retryClass == .fatal)
        let denied = AWSServiceError(operation: "X", response: HTTPResponse(status: 403, headers: [("x-amzn-ErrorType", "AccessDeniedException")], body: []))
        #expect(denied.retryClass == .accessDenied)
        let nf = AWSServiceError(operation: "X", response: HTTPResponse(status: 404, headers: [("x-amzn-ErrorType", "ResourceNotFoundException")], body: []))
        #expect(nf.retryClass == .notFound)
    }

    @Test("EC2 XML errors and moto's HTML 500 pages")
    func ec2AndHTML() {
        let xml = #"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidSnapshot.NotFound</Code><Message>None</Message></Error></Errors><RequestID>abc</RequestID></Response>"#
        let e = AWSServiceError(operation: "DescribeSnapshots", response: HTTPResponse(status: 400, body: Array(xml.utf8)))
        #expect(e.code == "InvalidSnapshot.NotFound" && e.requestID == "abc" && e.retryClass == .fatal)
        #expect(!e.description.contains("None"))
        let html = AWSServiceError(operation: "GetSnapshotBlock", response: HTTPResponse(status: 500, body: Array("<!doctype html><html><title>500</title>".utf8)))
        #expect(html.code == "HTTP 500" && html.retryClass == .transient)
        let throttle = AWSServiceError(operation: "X", response: HTTPResponse(status: 503, body: Array("<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>".utf8)))
        #expect(throttle.retryClass == .throttled)
        #expect(TransportError(.timeout, "x").retryClass == .transient)
        #expect(TransportError(.cancelled, "x").retryClass == .fatal)
    }

    @Test("retry delays stay within their caps and give-up reasons follow the table")
    func policy() {
        let p = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), throttleBaseDelay: .seconds(1), maxDelay: .seconds(3))
        var g = SplitMix64(seed: 5)
        for n in 1...10 {
            let d = p.delay(afterAttempt: n, retryClass: .transient, using: &g)
            let cap = min(Duration.milliseconds(100) * (1 << (n - 1)), .seconds(3))
            #expect(d >= cap / 2 && d <= cap)
        }
        #expect(p.giveUpReason(retryClass: .accessDenied, attempt: 1, elapsed: .zero, sinceSnapshotStart: .zero) != nil)
        #expect(p.giveUpReason(retryClass: .fatal, attempt: 1, elapsed: .zero, sinceSnapshotStart: nil) != nil)
        #expect(p.giveUpReason(retryClass: .throttled, attempt: 4, elapsed: .zero, sinceSnapshotStart: nil) == nil)
        #expect(p.giveUpReason(retryClass: .throttled, attempt: 5, elapsed: .zero, sinceSnapshotStart: nil) != nil)
        #expect(p.giveUpReason(retryClass: .transient, attempt: 1, elapsed: .seconds(301), sinceSnapshotStart: nil) != nil)
        #expect(p.giveUpReason(retryClass: .notFound, attempt: 1, elapsed: .zero, sinceSnapshotStart: .seconds(5)) == nil)
        #expect(p.giveUpReason(retryClass: .notFound, attempt: 1, elapsed: .zero, sinceSnapshotStart: .seconds(500)) != nil)
        #expect(p.giveUpReason(retryClass: .notFound, attempt: 1, elapsed: .zero, sinceSnapshotStart: nil) != nil)
        // Inside the window the attempt count does not end a not-found; the window and the time limit do.
        #expect(p.giveUpReason(retryClass: .notFound, attempt: 50, elapsed: .seconds(5), sinceSnapshotStart: .seconds(5)) == nil)
        #expect(p.giveUpReason(retryClass: .notFound, attempt: 50, elapsed: .seconds(301), sinceSnapshotStart: .seconds(5)) != nil)
    }

    @Test("DescribeSnapshots XML (namespaced) parses into snapshots")
    func describeSnapshots() throws {
        let xml = #"""
            <?xml version="1.0" encoding="utf-8"?>
            <DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><snapshotSet><item><tagSet><item><key>Name</key><value>omnios</value></item></tagSet><snapshotId>snap-1</snapshotId><status>pending</status><progress>42%</progress><volumeSize>8</volumeSize><encrypted>false</encrypted><description>a &amp; b</description></item></snapshotSet><requestId>r</requestId></DescribeSnapshotsResponse>
            """#
        let doc = try XMLTree.parse(Array(xml.utf8))
        #expect(doc.name == "DescribeSnapshotsResponse")
        let s = try EC2Snapshot(item: try #require(doc.items("snapshotSet").first))
        #expect(s.snapshotID == "snap-1" && s.state == "pending" && s.progress == "42%" && s.volumeSize == 8)
        #expect(s.tags == ["Name": "omnios"] && s.description == "a & b" && s.encrypted == false)
        #expect(throws: XMLTreeError.self) { _ = try XMLTree.parse(Array("<a><b></a>".utf8)) }
    }

    @Test("EC2 query requests: form body, charset content type, list parameters")
    func ec2Request() {
        let client = AWSServiceClient(
            service: .ec2, region: "us-east-1", endpoint: Endpoint(scheme: "https", host: "ec2.us-east-1.amazonaws.com"),
            transport: NoNetwork(), credentials: { AWSCredentials(accessKeyID: "A", secretAccessKey: "S") })
        var p = EC2Parameters()
        p.addList("SnapshotId", ["snap-1", "snap-2"])
        p.addFilters([("tag:Name", ["a b"])])
        let r = EC2Client(client: client).request(action: "DescribeSnapshots", parameters: p)
        #expect(r.method == "POST" && r.path == "/")
        #expect(r.header("Content-Type") == "application/x-www-form-urlencoded; charset=utf-8")
        #expect(String(decoding: r.body, as: UTF8.self)
            == "Action=DescribeSnapshots&Version=2016-11-15&SnapshotId.1=snap-1&SnapshotId.2=snap-2&Filter.1.Name=tag%3AName&Filter.1.Value.1=a%20b")
    }
}

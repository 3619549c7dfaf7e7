import AWSCore
import Foundation
import Synchronization
import Testing

/// Connection failures follow the AWS SDKs' standard retry mode: 3 attempts unless max_attempts says otherwise,
/// full-jitter backoff from 1 s, and a message that names the endpoint and where it came from.
@Suite("retry modes and connection failures")
struct RetryModeTests {
    static func configuration(_ vars: [String: String], config: String? = nil) throws -> AWSConfiguration {
        var all = vars
        all["AWS_CONFIG_FILE"] = "/cfg"
        let files = config.map { ["/cfg": $0] } ?? [:]
        return try AWSConfiguration(environment: testEnvironment(all, files: files), options: AWSClientOptions())
    }

    @Test("a connection that cannot be made is its own class, limited to 3 attempts by default")
    func connectionClass() {
        #expect(TransportError(.connect, "refused").retryClass == .connection)
        #expect(TransportError(.connectionLost, "reset").retryClass == .transient)
        let p = RetryPolicy()
        #expect(p.attempts(for: .connection) == 3 && p.attempts(for: .transient) == 10)
        #expect(p.giveUpReason(retryClass: .connection, attempt: 2, elapsed: .zero, sinceSnapshotStart: nil) == nil)
        let why = p.giveUpReason(retryClass: .connection, attempt: 3, elapsed: .zero, sinceSnapshotStart: nil)
        #expect(why?.contains("gave up after 3 attempts; check that the endpoint is right") == true, "\(why ?? "nil")")
        #expect(p.giveUpReason(retryClass: .transient, attempt: 3, elapsed: .zero, sinceSnapshotStart: nil) == nil)
        #expect(p.giveUpReason(retryClass: .accessDenied, attempt: 1, elapsed: .zero, sinceSnapshotStart: nil)?
            .contains("never") == false)
    }

    @Test("connection backoff: uniform in 0…min(1 s · 2^(n-1), 20 s), so the default three attempts wait 3 s at most")
    func connectionBackoff() {
        let p = RetryPolicy()
        var g = SplitMix64(seed: 9)
        var total = Duration.zero
        for n in 1...8 {
            let cap = min(Duration.seconds(1) * (1 << (n - 1)), .seconds(20))
            var low = Duration.seconds(100)
            for _ in 0..<200 {
                let d = p.delay(afterAttempt: n, retryClass: .connection, using: &g)
                #expect(d >= .zero && d <= cap)
                low = min(low, d)
                if n <= 2 { total += d }
            }
            #expect(low < cap / 4, "full jitter reaches down towards 0")
        }
        #expect(total <= .seconds(3) * 200)
    }

    @Test("AWS_RETRY_MODE / retry_mode and AWS_MAX_ATTEMPTS / max_attempts: read, checked, applied")
    func settings() throws {
        let none = try Self.configuration([:]).retrySettings()
        #expect(none == RetrySettings(mode: .standard, maxAttempts: nil, source: "default"))
        var p = RetryPolicy()
        p.apply(none)
        #expect(p.maxAttempts == 10 && p.connectionMaxAttempts == 3)

        let file = "[default]\nretry_mode = standard\nmax_attempts = 5\n"
        let fromFile = try Self.configuration([:], config: file).retrySettings()
        #expect(fromFile.mode == .standard && fromFile.maxAttempts == 5)
        p = RetryPolicy()
        p.apply(fromFile)
        #expect(p.maxAttempts == 5 && p.connectionMaxAttempts == 5)

        // The environment wins over the profile.
        let env = try Self.configuration(["AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "Adaptive"], config: file).retrySettings()
        #expect(env.mode == .adaptive && env.maxAttempts == 2 && env.source == "AWS_RETRY_MODE, AWS_MAX_ATTEMPTS")

        // legacy keeps zlabel's own limits, for connection failures too.
        p = RetryPolicy()
        p.apply(try Self.configuration(["AWS_RETRY_MODE": "legacy"]).retrySettings())
        #expect(p.maxAttempts == 10 && p.connectionMaxAttempts == 10)

        #expect(throws: AWSConfigurationError("AWS_MAX_ATTEMPTS is \"0\"; it takes a whole number of attempts above 0")) {
            try Self.configuration(["AWS_MAX_ATTEMPTS": "0"]).retrySettings()
        }
        #expect(throws: AWSConfigurationError("profile default retry_mode is \"fast\"; it takes legacy, standard, adaptive")) {
            try Self.configuration([:], config: "[default]\nretry_mode = fast\n").retrySettings()
        }
    }

    @Test("a refused connection names the endpoint and where it came from, in one message")
    func refusedMessage() async throws {
        let transport = FakeTransport([:])  // refuses everything
        let config = try AWSConfiguration(
            environment: testEnvironment(["AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1",
                                          "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
                                          "AWS_EC2_METADATA_DISABLED": "true"]),
            options: AWSClientOptions())
        let session = try await AWSSession(configuration: config, transport: transport)
        let client = try session.client(for: .ebs)
        var policy = RetryPolicy()
        policy.connectionBaseDelay = .milliseconds(1)
        var g = SplitMix64(seed: 1)
        do {
            _ = try await client.sendWithRetries(client.request(method: "POST", path: "/snapshots"), operation: "StartSnapshot",
                                                 policy: policy, rng: &g)
            Issue.record("no error")
        } catch let e as TransportError {
            #expect(e.kind == .connect)
            #expect(e.message == "cannot connect to the ebs endpoint http://127.0.0.1:9 (from AWS_ENDPOINT_URL): refused", "\(e)")
        }
        #expect(transport.seen.withLock { $0.count } == 3)
    }
}

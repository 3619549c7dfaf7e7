// Where credentials come from, in botocore's order:
//   1. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (skipped when --profile was given);
//   2. role_arn / web identity / SSO in the profile: not implemented; reported as such rather than silently
//      falling through to other credentials;
//   3. the credentials file's [PROFILE];
//   4. the profile's credential_process;
//   5. the config file's profile keys;
//   6. container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI);
//   7. the EC2 instance metadata service (IMDSv2, with an IMDSv1 fallback unless disabled).
// Secrets never appear in a message: errors name the source, never the values.

public import Foundation

/// A chain that finds credentials and refreshes them before they expire.
public actor CredentialChain {
    private let configuration: AWSConfiguration
    private let transport: any HTTPTransport
    private var cached: AWSCredentials?

    /// Creates a chain.
    ///
    /// - Parameters:
    ///   - configuration: files, environment and profile.
    ///   - transport: used for container credentials and IMDS only (plain HTTP, unsigned).
    public init(configuration: AWSConfiguration, transport: any HTTPTransport) {
        self.configuration = configuration
        self.transport = transport
    }

    /// Credentials valid for at least five more minutes, from the cache or the chain.
    ///
    /// - Throws: ``AWSConfigurationError`` naming every source tried when none has credentials, or the first
    ///   source that is set up but broken.
    public func credentials() async throws -> AWSCredentials {
        if let c = cached, c.expiration.map({ $0.timeIntervalSinceNow > 300 }) ?? true { return c }
        let c = try await resolve()
        cached = c
        return c
    }

    private func resolve() async throws -> AWSCredentials {
        let env = configuration.environment
        let profileName = configuration.profileName
        if !configuration.profileIsExplicit, let c = try Self.fromEnvironment(env) { return c }
        for key in ["role_arn", "web_identity_token_file", "sso_session", "sso_start_url", "credential_source"]
        where configuration.profileValue(key) != nil {
            throw AWSConfigurationError(
                "profile \(profileName) uses \(key), which zlabel does not support yet; export temporary "
                    + "credentials (aws configure export-credentials) or use credential_process")
        }
        if !configuration.profileIsExplicit, env["AWS_WEB_IDENTITY_TOKEN_FILE"] != nil, env["AWS_ROLE_ARN"] != nil {
            throw AWSConfigurationError(
                "AWS_WEB_IDENTITY_TOKEN_FILE is set: web identity credentials are not supported yet; "
                    + "export temporary credentials instead")
        }
        if let section = configuration.credentialsFile.sections[profileName],
            let c = try Self.fromKeys(section, source: "shared-credentials-file", where: env.credentialsFilePath)
        {
            return c
        }
        if let command = configuration.profileValue("credential_process") {
            return try await Self.fromProcess(command)
        }
        if let section = configuration.profile,
            let c = try Self.fromKeys(section, source: "config-file", where: env.configFilePath)
        {
            return c
        }
        if let c = try await containerCredentials() { return c }
        if !env.flag("AWS_EC2_METADATA_DISABLED") {
            let imds = InstanceMetadataClient(environment: env, transport: transport)
            if let c = try await imds.credentials() { return c }
        }
        throw AWSConfigurationError(
            "no AWS credentials found (tried: environment, \(env.credentialsFilePath) [\(profileName)], "
                + "credential_process, \(env.configFilePath), container credentials, instance metadata)")
    }

    /// Credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`.
    ///
    /// - Throws: when only one of the key pair is set.
    public static func fromEnvironment(_ env: AWSEnvironment) throws(AWSConfigurationError) -> AWSCredentials? {
        let ak = env["AWS_ACCESS_KEY_ID"]
        let sk = env["AWS_SECRET_ACCESS_KEY"]
        switch (ak, sk) {
        case (nil, nil): return nil
        case (let a?, let s?):
            return AWSCredentials(
                accessKeyID: a, secretAccessKey: s,
                sessionToken: env["AWS_SESSION_TOKEN"] ?? env["AWS_SECURITY_TOKEN"], source: "environment")
        default:
            throw AWSConfigurationError(
                "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both or neither")
        }
    }

    static func fromKeys(_ section: [String: SharedConfigValue], source: String, where path: String)
        throws(AWSConfigurationError) -> AWSCredentials?
    {
        let ak = section["aws_access_key_id"]?.string
        let sk = section["aws_secret_access_key"]?.string
        switch (ak, sk) {
        case (nil, nil): return nil
        case (let a?, let s?):
            let token = section["aws_session_token"]?.string ?? section["aws_security_token"]?.string
            return AWSCredentials(accessKeyID: a, secretAccessKey: s, sessionToken: token, source: source)
        default:
            throw AWSConfigurationError(
                "\(path): the profile has only one of aws_access_key_id and aws_secret_access_key")
        }
    }

    /// Runs a `credential_process` command and parses its JSON (`Version` 1, `AccessKeyId`,
    /// `SecretAccessKey`, optional `SessionToken` and `Expiration`).
    ///
    /// The command runs through `/bin/sh -c`. Its standard output is never echoed; its standard error is
    /// passed through to ours.
    public static func fromProcess(_ command: String) async throws -> AWSCredentials {
        let output: Data = try await withCheckedThrowingContinuation { cont in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            let out = Pipe()
            p.standardOutput = out
            p.standardInput = FileHandle.nullDevice
            do {
                try p.run()
            } catch {
                cont.resume(throwing: AWSConfigurationError("credential_process could not start: \(error)"))
                return
            }
            DispatchQueue.global().async {
                let data = out.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                if p.terminationStatus != 0 {
                    cont.resume(
                        throwing: AWSConfigurationError(
                            "credential_process exited with status \(p.terminationStatus)"))
                } else {
                    cont.resume(returning: data)
                }
            }
        }
        return try parseCredentialJSON(output, source: "credential_process", tokenKey: "SessionToken", version: true)
    }

    static func parseCredentialJSON(_ data: Data, source: String, tokenKey: String, version: Bool)
        throws(AWSConfigurationError) -> AWSCredentials
    {
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw AWSConfigurationError("\(source): output is not a JSON object")
        }
        if version, (obj["Version"] as? Int) != 1 {
            throw AWSConfigurationError("\(source): unsupported Version (expected 1)")
        }
        guard let ak = obj["AccessKeyId"] as? String, let sk = obj["SecretAccessKey"] as? String else {
            throw AWSConfigurationError("\(source): AccessKeyId or SecretAccessKey missing")
        }
        var expiration: Date?
        if let e = obj["Expiration"] as? String {
            guard let d = parseISO8601(e) else {
                throw AWSConfigurationError("\(source): Expiration \"\(e)\" is not an ISO 8601 time")
            }
            expiration = d
        }
        return AWSCredentials(
            accessKeyID: ak, secretAccessKey: sk, sessionToken: obj[tokenKey] as? String, expiration: expiration,
            source: source)
    }

    /// Parses `2026-01-02T03:04:05Z` (fractional seconds and offsets allowed).
    public static func parseISO8601(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: s)
    }

    private func containerCredentials() async throws -> AWSCredentials? {
        let env = configuration.environment
        let url: String
        if let rel = env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] {
            url = "http://169.254.170.2" + rel
        } else if let full = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] {
            url = full
        } else {
            return nil
        }
        guard let comps = URLComponents(string: url), let scheme = comps.scheme, let host = comps.host else {
            throw AWSConfigurationError("container credentials URI is not a URL")
        }
        var req = AWSRequest(
            method: "GET", endpoint: Endpoint(scheme: scheme, host: host, port: comps.port),
            path: comps.percentEncodedPath.isEmpty ? "/" : SigV4.percentDecode(comps.percentEncodedPath),
            query: (comps.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        if let tokenFile = env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] {
            guard let t = env.readFile(tokenFile) else {
                throw AWSConfigurationError("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE cannot be read")
            }
            req.setHeader("Authorization", t.trimmingWhitespace())
        } else if let t = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] {
            req.setHeader("Authorization", t)
        }
        let resp: HTTPResponse
        do {
            resp = try await transport.send(req, timeout: .seconds(2))
        } catch {
            throw AWSConfigurationError("container credentials endpoint unreachable: \(error)")
        }
        guard resp.status == 200 else {
            throw AWSConfigurationError("container credentials endpoint answered HTTP \(resp.status)")
        }
        return try Self.parseCredentialJSON(Data(resp.body), source: "container", tokenKey: "Token", version: false)
    }
}

/// The EC2 instance metadata service: IMDSv2 token, role credentials, region.
///
/// Settings: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` (`IPv4`/`IPv6`),
/// `AWS_METADATA_SERVICE_TIMEOUT` (seconds, default 1), `AWS_METADATA_SERVICE_NUM_ATTEMPTS` (default 1),
/// `AWS_EC2_METADATA_V1_DISABLED`.
public struct InstanceMetadataClient: Sendable {
    let endpoint: Endpoint
    let timeout: Duration
    let attempts: Int
    let v1Disabled: Bool
    let transport: any HTTPTransport

    /// Creates a client from the environment's settings.
    public init(environment env: AWSEnvironment, transport: any HTTPTransport) {
        if let u = env["AWS_EC2_METADATA_SERVICE_ENDPOINT"], let e = try? Endpoint(parsing: u) {
            endpoint = e
        } else if env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"]?.lowercased() == "ipv6" {
            endpoint = Endpoint(scheme: "http", host: "fd00:ec2::254")
        } else {
            endpoint = Endpoint(scheme: "http", host: "169.254.169.254")
        }
        let t = Double(env["AWS_METADATA_SERVICE_TIMEOUT"] ?? "") ?? 1
        timeout = .milliseconds(Int(max(0.1, t) * 1000))
        attempts = max(1, Int(env["AWS_METADATA_SERVICE_NUM_ATTEMPTS"] ?? "") ?? 1)
        v1Disabled = env.flag("AWS_EC2_METADATA_V1_DISABLED")
        self.transport = transport
    }

    private func get(_ path: String, token: String?) async -> HTTPResponse? {
        var req = AWSRequest(method: "GET", endpoint: endpoint, path: path)
        if let token { req.setHeader("X-aws-ec2-metadata-token", token) }
        for _ in 0..<attempts {
            if let r = try? await transport.send(req, timeout: timeout), r.status < 500 { return r }
        }
        return nil
    }

    private func token() async -> String? {
        var req = AWSRequest(method: "PUT", endpoint: endpoint, path: "/latest/api/token")
        req.setHeader("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        for _ in 0..<attempts {
            if let r = try? await transport.send(req, timeout: timeout) {
                return r.status == 200 ? r.text : nil
            }
        }
        return nil
    }

    /// The IMDSv2 token, or nil to fall back to IMDSv1.
    private func sessionToken() async throws(AWSConfigurationError) -> String? {
        let t = await token()
        if t == nil && v1Disabled {
            throw AWSConfigurationError("instance metadata: no IMDSv2 token and IMDSv1 is disabled")
        }
        return t
    }

    /// The instance role's credentials, or nil when no metadata service answers or no role is attached.
    public func credentials() async throws -> AWSCredentials? {
        let token = try await sessionToken()
        guard let roles = await get("/latest/meta-data/iam/security-credentials/", token: token),
            roles.status == 200
        else { return nil }
        guard let role = roles.text.split(separator: "\n").first.map({ $0.trimmingWhitespace() }), !role.isEmpty
        else { return nil }
        guard let r = await get("/latest/meta-data/iam/security-credentials/\(role)", token: token), r.status == 200
        else {
            throw AWSConfigurationError("instance metadata: credentials of role \(role) could not be read")
        }
        return try CredentialChain.parseCredentialJSON(
            Data(r.body), source: "instance-metadata", tokenKey: "Token", version: false)
    }

    /// The instance's region, or nil.
    public func region() async -> String? {
        let t: String?
        do { t = try await sessionToken() } catch { return nil }
        guard let r = await get("/latest/meta-data/placement/region", token: t), r.status == 200 else {
            return nil
        }
        let s = r.text.trimmingWhitespace()
        return AWSConfiguration.isValidRegion(s) ? s : nil
    }
}

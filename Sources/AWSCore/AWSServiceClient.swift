public import Foundation
public import NIOCore

/// A failed call, reduced to what a retry loop needs.
public protocol RetryClassified: Error, CustomStringConvertible {
    /// How the failure is treated.
    var retryClass: RetryClass { get }
}

extension AWSServiceError: RetryClassified {}
extension TransportError: RetryClassified {}

/// Signs and sends requests to one service in one region.
public struct AWSServiceClient: Sendable {
    /// The service.
    public let service: AWSService
    /// The region in the credential scope.
    public let region: String
    /// Where requests go.
    public let endpoint: Endpoint
    /// The transport.
    public let transport: any HTTPTransport
    /// Supplies credentials for each request.
    public let credentials: @Sendable () async throws -> AWSCredentials
    /// The signing clock.
    public let now: @Sendable () -> Date
    /// The log.
    public let log: AWSLog
    /// Where the endpoint came from (`AWS_ENDPOINT_URL`, `--endpoint-url`, `default`…), for messages.
    public let endpointSource: String?

    /// Creates a client.
    public init(
        service: AWSService, region: String, endpoint: Endpoint, transport: any HTTPTransport,
        credentials: @escaping @Sendable () async throws -> AWSCredentials,
        now: @escaping @Sendable () -> Date = { Date() }, log: AWSLog = .silent, endpointSource: String? = nil
    ) {
        self.endpointSource = endpointSource
        self.service = service
        self.region = region
        self.endpoint = endpoint
        self.transport = transport
        self.credentials = credentials
        self.now = now
        self.log = log
    }

    /// Builds an unsigned request to this client's endpoint.
    public func request(
        method: String, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) -> AWSRequest {
        AWSRequest(method: method, endpoint: endpoint, path: path, query: query, headers: headers, body: body)
    }

    /// Builds an unsigned request to this client's endpoint, with a body already in a buffer.
    public func request(
        method: String, path: String, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], bodyBuffer: ByteBuffer
    ) -> AWSRequest {
        AWSRequest(
            method: method, endpoint: endpoint, path: path, query: query, headers: headers, bodyBuffer: bodyBuffer)
    }

    /// Signs `request` and sends it once.
    ///
    /// - Parameters:
    ///   - request: an unsigned request.
    ///   - operation: the API name, for errors.
    ///   - timeout: the attempt's time limit.
    /// - Returns: the response when its status is 2xx.
    /// - Throws: ``AWSServiceError`` for any other status, ``TransportError`` when no response came, or the
    ///   credential chain's error.
    public func send(_ request: AWSRequest, operation: String, timeout: Duration) async throws -> HTTPResponse {
        var r = request
        let creds = try await credentials()
        SigV4.sign(&r, credentials: creds, region: region, service: service.signingName, date: now())
        let response: HTTPResponse
        do { response = try await transport.send(r, timeout: timeout) } catch let e as TransportError {
            throw naming(e)
        }
        guard (200..<300).contains(response.status) else {
            throw AWSServiceError(operation: operation, response: response)
        }
        return response
    }

    /// A connect failure with the endpoint and where it came from (a wrong or stale `AWS_ENDPOINT_URL` is the
    /// usual cause); any other error as it is.
    func naming(_ error: TransportError) -> TransportError {
        guard error.kind == .connect else { return error }
        let origin = endpointSource.map { $0 == "default" ? " (the region's default)" : " (from \($0))" } ?? ""
        return TransportError(.connect, "cannot connect to the \(service) endpoint \(endpoint)\(origin): \(error.message)")
    }

    /// Sends with retries per `policy`, logging each retry at info level.
    ///
    /// - Throws: the last failure when the policy gives up, or at once for access denied and validation errors.
    public func sendWithRetries(
        _ request: AWSRequest, operation: String, policy: RetryPolicy,
        rng: inout some RandomNumberGenerator
    ) async throws -> HTTPResponse {
        let clock = ContinuousClock()
        let start = clock.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await send(request, operation: operation, timeout: policy.attemptTimeout)
            } catch let e as any RetryClassified {
                if let why = policy.giveUpReason(
                    retryClass: e.retryClass, attempt: attempt, elapsed: clock.now - start, sinceSnapshotStart: nil)
                {
                    log.debug("\(operation): \(why)")
                    throw e
                }
                let d = policy.delay(afterAttempt: attempt, retryClass: e.retryClass, using: &rng)
                log.info("retry \(attempt + 1)/\(policy.attempts(for: e.retryClass)) of \(operation) in \(Self.seconds(d)) s after \(e)")
                try await Task.sleep(for: d)
            }
        }
    }

    static func seconds(_ d: Duration) -> String {
        String(format: "%.2f", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}

/// Everything a command needs to talk to AWS: configuration, credentials, region, endpoints and transport.
public struct AWSSession: Sendable {
    /// Files, environment and profile.
    public let configuration: AWSConfiguration
    /// The region in use.
    public let region: String
    /// The credential chain (cached, refreshed before expiry).
    public let credentialChain: CredentialChain
    /// The transport.
    public let transport: any HTTPTransport
    /// The log.
    public let log: AWSLog

    /// Resolves the region (asking the instance metadata service last) and sets up credentials.
    ///
    /// Credentials are looked up on first use, so a missing credential shows up on the first call.
    ///
    /// - Throws: ``AWSConfigurationError`` when the files are malformed or no region is set anywhere.
    public init(configuration: AWSConfiguration, transport: any HTTPTransport, log: AWSLog = .silent) async throws {
        self.configuration = configuration
        self.transport = transport
        self.log = log
        var region = configuration.configuredRegion
        if region == nil && !configuration.environment.flag("AWS_EC2_METADATA_DISABLED") {
            region = await InstanceMetadataClient(environment: configuration.environment, transport: transport)
                .region()
        }
        guard let region else {
            throw AWSConfigurationError(
                "no region: pass \(option: .region), set AWS_REGION or AWS_DEFAULT_REGION, or set region in the profile")
        }
        guard AWSConfiguration.isValidRegion(region) else {
            throw AWSConfigurationError("region \"\(region)\" is not a valid region name")
        }
        self.region = region
        self.credentialChain = CredentialChain(configuration: configuration, transport: transport)
    }

    /// A client for one service, with its endpoint resolved.
    public func client(for service: AWSService, now: @escaping @Sendable () -> Date = { Date() }) throws
        -> AWSServiceClient
    {
        let (endpoint, source) = try configuration.endpoint(for: service, region: region)
        log.debug("\(service) endpoint \(endpoint) (from \(source)), region \(region)")
        let chain = credentialChain
        return AWSServiceClient(
            service: service, region: region, endpoint: endpoint, transport: transport,
            credentials: { try await chain.credentials() }, now: now, log: log, endpointSource: source)
    }
}

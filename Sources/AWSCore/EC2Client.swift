// EC2 Query API: `POST /` with a form body `Action=…&Version=2016-11-15&…`, signed for service `ec2`, answered
// with namespaced XML. Parameters use EC2's flattened list syntax (`SnapshotId.1`, `Filter.1.Name`,
// `Filter.1.Value.1`, `TagSpecification.1.Tag.1.Key`); ``EC2Parameters`` builds them.

import Foundation

/// An ordered list of query parameters, with helpers for EC2's list and structure syntax.
public struct EC2Parameters: Sendable, Equatable {
    /// The pairs in the order they will be sent.
    public private(set) var pairs: [(name: String, value: String)] = []

    /// An empty list.
    public init() {}

    /// Appends one parameter.
    public mutating func add(_ name: String, _ value: String) { pairs.append((name, value)) }

    /// Appends a list as `name.1`, `name.2`, …
    public mutating func addList(_ name: String, _ values: [String]) {
        for (i, v) in values.enumerated() { add("\(name).\(i + 1)", v) }
    }

    /// Appends `Filter.N.Name` and `Filter.N.Value.M`.
    public mutating func addFilters(_ filters: [(name: String, values: [String])]) {
        for (i, f) in filters.enumerated() {
            add("Filter.\(i + 1).Name", f.name)
            addList("Filter.\(i + 1).Value", f.values)
        }
    }

    public static func == (a: EC2Parameters, b: EC2Parameters) -> Bool {
        a.pairs.elementsEqual(b.pairs, by: { $0 == $1 })
    }
}

/// A snapshot as EC2 DescribeSnapshots reports it.
public struct EC2Snapshot: Sendable, Equatable {
    /// `snap-…`
    public var snapshotID: String
    /// `pending`, `completed`, `error`, `recoverable`, `recovering`.
    public var state: String
    /// e.g. `100%`.
    public var progress: String?
    /// GiB.
    public var volumeSize: Int?
    /// The description.
    public var description: String?
    /// Whether it is encrypted.
    public var encrypted: Bool?
    /// A message when the state is `error`.
    public var stateMessage: String?
    /// Tags.
    public var tags: [String: String]

    /// Reads one `<item>` of `<snapshotSet>`.
    public init(item: XMLTree) throws(AWSResponseError) {
        guard let id = item.string("snapshotId"), let state = item.string("status") else {
            throw AWSResponseError(operation: "DescribeSnapshots", "an item without snapshotId or status")
        }
        snapshotID = id
        self.state = state
        progress = item.string("progress")
        volumeSize = item.string("volumeSize").flatMap { Int($0) }
        description = item.string("description")
        encrypted = item.string("encrypted").map { $0 == "true" }
        stateMessage = item.string("statusMessage")
        var tags: [String: String] = [:]
        for t in item.items("tagSet") {
            if let k = t.string("key") { tags[k] = t.string("value") ?? "" }
        }
        self.tags = tags
    }
}

/// An EC2 Query API client: any action as XML, plus the typed calls this package needs.
public struct EC2Client: Sendable {
    /// The API version sent with every request.
    public static let apiVersion = "2016-11-15"
    /// The signed transport for service `ec2`.
    public let client: AWSServiceClient
    /// Retry limits.
    public var policy: RetryPolicy

    /// Creates a client.
    public init(client: AWSServiceClient, policy: RetryPolicy = RetryPolicy()) {
        self.client = client
        self.policy = policy
    }

    /// The unsigned request for an action (what botocore sends: form body, `Content-Type` with charset).
    public func request(action: String, parameters: EC2Parameters) -> AWSRequest {
        var all = EC2Parameters()
        all.add("Action", action)
        all.add("Version", Self.apiVersion)
        for p in parameters.pairs { all.add(p.name, p.value) }
        let body = all.pairs.map { SigV4.percentEncode($0.name, keeping: "") + "=" + SigV4.percentEncode($0.value, keeping: "") }
            .joined(separator: "&")
        return client.request(
            method: "POST", path: "/",
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: Array(body.utf8))
    }

    /// Calls an action with retries and returns the parsed response document.
    ///
    /// - Throws: ``AWSServiceError`` (EC2 codes such as `InvalidSnapshot.NotFound`), ``TransportError``, or
    ///   ``AWSResponseError`` when the body is not XML.
    public func call(_ action: String, _ parameters: EC2Parameters = EC2Parameters()) async throws -> XMLTree {
        var rng = SystemRandomNumberGenerator()
        let resp = try await client.sendWithRetries(
            request(action: action, parameters: parameters), operation: action, policy: policy, rng: &rng)
        do {
            return try XMLTree.parse(resp.body)
        } catch {
            throw AWSResponseError(operation: action, "\(error)")
        }
    }

    /// DescribeSnapshots for the given ids, following `nextToken`.
    public func describeSnapshots(ids: [String]) async throws -> [EC2Snapshot] {
        var out: [EC2Snapshot] = []
        var token: String?
        repeat {
            var p = EC2Parameters()
            p.addList("SnapshotId", ids)
            if let token { p.add("NextToken", token) }
            let doc = try await call("DescribeSnapshots", p)
            for item in doc.items("snapshotSet") { out.append(try EC2Snapshot(item: item)) }
            token = doc.string("nextToken").flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return out
    }

    /// Polls DescribeSnapshots until the snapshot reaches `desiredState` `successesRequired` times in a row.
    ///
    /// - Parameters:
    ///   - id: the snapshot.
    ///   - desiredState: usually `completed`.
    ///   - interval: time between polls.
    ///   - successesRequired: consecutive matching polls needed (EC2 is eventually consistent).
    ///   - timeout: overall limit.
    /// - Returns: the last description.
    /// - Throws: ``AWSConfigurationError``-free errors: ``SnapshotWaitError`` on state `error` or timeout.
    public func waitForSnapshot(
        id: String, desiredState: String = "completed", interval: Duration = .seconds(2),
        successesRequired: Int = 1, timeout: Duration = .seconds(3600)
    ) async throws -> EC2Snapshot {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var streak = 0
        var last: EC2Snapshot?
        while true {
            let snaps = try await describeSnapshots(ids: [id])
            guard let s = snaps.first(where: { $0.snapshotID == id }) else {
                throw SnapshotWaitError(snapshotID: id, message: "DescribeSnapshots did not list it")
            }
            if s.state == "error" {
                throw SnapshotWaitError(
                    snapshotID: id, message: "state is error" + (s.stateMessage.map { ": \($0)" } ?? ""))
            }
            if last?.state != s.state || last?.progress != s.progress {
                client.log.info("\(id): \(s.state) \(s.progress ?? "")")
            }
            last = s
            streak = s.state == desiredState ? streak + 1 : 0
            if streak >= successesRequired { return s }
            if clock.now + interval > deadline {
                throw SnapshotWaitError(snapshotID: id, message: "still \(s.state) after \(timeout)")
            }
            try await Task.sleep(for: interval)
        }
    }
}

/// A wait that ended without the desired state.
public struct SnapshotWaitError: Error, Sendable, CustomStringConvertible {
    /// The snapshot.
    public var snapshotID: String
    /// What happened.
    public var message: String
    public var description: String { "waiting for \(snapshotID): \(message)" }
}

// The EBS direct APIs (rest-json, signing name `ebs`), as the botocore model `ebs/2019-11-02` describes them.
// Each call is split into a pure request builder and a pure response parser, so both are tested without a
// network; `EBSClient` adds one signed attempt on top. Retries belong to the caller (the upload state machine,
// or `AWSServiceClient.sendWithRetries`).
//
// moto quirks handled here: StartSnapshot answers 200 (AWS: 201) with BlockSize 512 (AWS: 524288).
// Reading a snapshot back (ListSnapshotBlocks, GetSnapshotBlock) is the tests' business, not the uploader's.

public import AWSCore
import Crypto
import Foundation
public import NIOCore

/// The EBS block size: the only `x-amz-Data-Length` PutSnapshotBlock accepts.
public let ebsBlockSize = 524_288

/// StartSnapshot's parameters.
public struct StartSnapshotInput: Sendable, Equatable {
    /// Size of the volume in GiB (1…65536).
    public var volumeSizeGiB: Int
    /// Idempotency token, reused across retries of the same StartSnapshot.
    public var clientToken: String
    /// Description (≤ 255 characters).
    public var description: String?
    /// Tags, in order.
    public var tags: [SnapshotTag]
    /// Parent snapshot whose blocks the new one inherits.
    public var parentSnapshotID: String?
    /// Whether to encrypt.
    public var encrypted: Bool
    /// The KMS key ARN for encryption.
    public var kmsKeyARN: String?
    /// Minutes after which AWS cancels a snapshot that is not completed (10…4320).
    public var timeoutMinutes: Int?

    /// Creates the input.
    public init(
        volumeSizeGiB: Int, clientToken: String, description: String? = nil, tags: [SnapshotTag] = [],
        parentSnapshotID: String? = nil, encrypted: Bool = false, kmsKeyARN: String? = nil,
        timeoutMinutes: Int? = nil
    ) {
        self.volumeSizeGiB = volumeSizeGiB
        self.clientToken = clientToken
        self.description = description
        self.tags = tags
        self.parentSnapshotID = parentSnapshotID
        self.encrypted = encrypted
        self.kmsKeyARN = kmsKeyARN
        self.timeoutMinutes = timeoutMinutes
    }
}

/// A tag `Key=Value`.
public struct SnapshotTag: Sendable, Equatable, Codable {
    /// The key.
    public var key: String
    /// The value.
    public var value: String
    /// Creates a tag.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// What StartSnapshot returned.
public struct StartSnapshotOutput: Sendable, Equatable {
    /// `snap-…`
    public var snapshotID: String
    /// `pending` normally.
    public var status: String?
    /// The block size the service reported (moto says 512; AWS says 524288).
    public var blockSize: Int?
}

/// Builders and parsers for the EBS calls.
public enum EBSAPI {
    /// StartSnapshot: `POST /snapshots` with a JSON body.
    public static func startSnapshot(_ input: StartSnapshotInput, client: AWSServiceClient) -> AWSRequest {
        var obj: [String: Any] = ["VolumeSize": input.volumeSizeGiB, "ClientToken": input.clientToken]
        if let d = input.description { obj["Description"] = d }
        if !input.tags.isEmpty { obj["Tags"] = input.tags.map { ["Key": $0.key, "Value": $0.value] } }
        if let p = input.parentSnapshotID { obj["ParentSnapshotId"] = p }
        if input.encrypted { obj["Encrypted"] = true }
        if let k = input.kmsKeyARN { obj["KmsKeyArn"] = k }
        if let t = input.timeoutMinutes { obj["Timeout"] = t }
        let body = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8)
        return client.request(
            method: "POST", path: "/snapshots", headers: [("Content-Type", "application/json")], body: Array(body))
    }

    /// Parses StartSnapshot's response (201 from AWS, 200 from moto).
    public static func parseStartSnapshot(_ r: HTTPResponse) throws(AWSResponseError) -> StartSnapshotOutput {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any],
            let id = obj["SnapshotId"] as? String, !id.isEmpty
        else { throw AWSResponseError(operation: "StartSnapshot", "no SnapshotId in the response") }
        return StartSnapshotOutput(
            snapshotID: id, status: obj["Status"] as? String, blockSize: intValue(obj["BlockSize"]))
    }

    /// PutSnapshotBlock: `PUT /snapshots/ID/blocks/INDEX`, 512 KiB body, base64 SHA-256 checksum, body not
    /// signed (`X-Amz-Content-SHA256: UNSIGNED-PAYLOAD`), no Content-Type (as botocore).
    ///
    /// - Parameters:
    ///   - snapshotID: the pending snapshot.
    ///   - index: the block index (block size 512 KiB).
    ///   - data: the block, 512 KiB.
    ///   - checksum: base64 of the body's raw SHA-256.
    ///   - progress: optional 0…100 for `x-amz-Progress`.
    ///   - client: the EBS client that signs and addresses the request.
    public static func putSnapshotBlock(
        snapshotID: String, index: Int, data: [UInt8], checksum: String, progress: Int? = nil,
        client: AWSServiceClient
    ) -> AWSRequest {
        putSnapshotBlock(
            snapshotID: snapshotID, index: index, data: ByteBuffer(bytes: data), checksum: checksum,
            progress: progress, client: client)
    }

    /// PutSnapshotBlock with the block already in a buffer, which is sent as it is.
    public static func putSnapshotBlock(
        snapshotID: String, index: Int, data: ByteBuffer, checksum: String, progress: Int? = nil,
        client: AWSServiceClient
    ) -> AWSRequest {
        var headers: [(name: String, value: String)] = [
            ("x-amz-Data-Length", String(data.readableBytes)),
            ("x-amz-Checksum", checksum),
            ("x-amz-Checksum-Algorithm", "SHA256"),
            ("X-Amz-Content-SHA256", SigV4.unsignedPayload),
        ]
        if let progress { headers.append(("x-amz-Progress", String(progress))) }
        return client.request(
            method: "PUT", path: "/snapshots/\(snapshotID)/blocks/\(index)", headers: headers, bodyBuffer: data)
    }

    /// CompleteSnapshot: `POST /snapshots/completion/ID`, empty body, count and LINEAR aggregate checksum.
    public static func completeSnapshot(
        snapshotID: String, changedBlocksCount: Int, aggregateChecksum: String, client: AWSServiceClient
    ) -> AWSRequest {
        client.request(
            method: "POST", path: "/snapshots/completion/\(snapshotID)",
            headers: [
                ("x-amz-ChangedBlocksCount", String(changedBlocksCount)),
                ("x-amz-Checksum", aggregateChecksum),
                ("x-amz-Checksum-Algorithm", "SHA256"),
                ("x-amz-Checksum-Aggregation-Method", "LINEAR"),
            ])
    }

    /// Parses CompleteSnapshot's `{"Status": …}`.
    public static func parseCompleteSnapshot(_ r: HTTPResponse) -> String? {
        ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any])?["Status"] as? String
    }

    static func intValue(_ v: Any?) -> Int? {
        if let i = v as? Int { return i }
        if let s = v as? String { return Int(s) }
        if let d = v as? Double, d == d.rounded() { return Int(exactly: d) }
        return nil
    }

    /// Base64 of the raw SHA-256 of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> String {
        base64(Array(SHA256.hash(data: bytes)))
    }

    /// Standard base64 (with `=` padding) of `bytes`, as `Data.base64EncodedString()` writes it, without
    /// going through `Data`: every uploaded block's checksum header is one.
    public static func base64(_ bytes: [UInt8]) -> String {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        alphabet.withUTF8Buffer { a in
            var i = 0
            while i + 3 <= bytes.count {
                let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                out.append(a[Int(v >> 18 & 63)])
                out.append(a[Int(v >> 12 & 63)])
                out.append(a[Int(v >> 6 & 63)])
                out.append(a[Int(v & 63)])
                i += 3
            }
            let rest = bytes.count - i
            if rest > 0 {
                let v = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
                out.append(a[Int(v >> 18 & 63)])
                out.append(a[Int(v >> 12 & 63)])
                out.append(rest == 2 ? a[Int(v >> 6 & 63)] : UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The LINEAR aggregate checksum: SHA-256 over the concatenated raw 32-byte digests, in ascending block
    /// order, base64.
    public static func linearAggregate(_ digestsInBlockOrder: some Sequence<[UInt8]>) -> String {
        var aggregate = LinearAggregate()
        for d in digestsInBlockOrder { aggregate.add(d) }
        return aggregate.base64
    }
}

/// The LINEAR aggregate checksum, fed one block digest at a time in ascending block order (the journal streams
/// its slots into it; ``EBSAPI/linearAggregate(_:)`` takes a sequence).
public struct LinearAggregate: Sendable {
    private var hash = SHA256()
    /// Blocks added so far.
    public private(set) var count = 0

    /// An empty aggregate.
    public init() {}

    /// Adds the raw 32-byte SHA-256 digest of the next block.
    public mutating func add(_ digest: [UInt8]) {
        hash.update(data: digest)
        count += 1
    }

    /// The aggregate, base64, as CompleteSnapshot's `x-amz-Checksum` takes it.
    public var base64: String { EBSAPI.base64(Array(hash.finalize())) }
}

/// EBS calls over one signed attempt each.
public struct EBSClient: Sendable {
    /// The signed client for service `ebs`.
    public let client: AWSServiceClient

    /// Creates a client.
    public init(client: AWSServiceClient) { self.client = client }

    /// One StartSnapshot attempt.
    public func startSnapshot(_ input: StartSnapshotInput, timeout: Duration) async throws -> StartSnapshotOutput {
        let r = try await client.send(EBSAPI.startSnapshot(input, client: client), operation: "StartSnapshot", timeout: timeout)
        CrashPoint.reach(.startSnapshotSent)
        return try EBSAPI.parseStartSnapshot(r)
    }

    /// One PutSnapshotBlock attempt.
    public func putSnapshotBlock(
        snapshotID: String, index: Int, data: ByteBuffer, checksum: String, progress: Int? = nil, timeout: Duration
    ) async throws {
        let req = EBSAPI.putSnapshotBlock(
            snapshotID: snapshotID, index: index, data: data, checksum: checksum, progress: progress, client: client)
        _ = try await client.send(req, operation: "PutSnapshotBlock", timeout: timeout)
    }

    /// One CompleteSnapshot attempt; returns the status (`pending`, `completed`, `error`).
    public func completeSnapshot(
        snapshotID: String, changedBlocksCount: Int, aggregateChecksum: String, timeout: Duration
    ) async throws -> String? {
        let req = EBSAPI.completeSnapshot(
            snapshotID: snapshotID, changedBlocksCount: changedBlocksCount, aggregateChecksum: aggregateChecksum,
            client: client)
        return EBSAPI.parseCompleteSnapshot(try await client.send(req, operation: "CompleteSnapshot", timeout: timeout))
    }
}

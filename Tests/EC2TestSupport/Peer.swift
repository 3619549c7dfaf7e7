// The moto-backed test harness shared by the EC2 tower's test targets: a strict EBS/EC2 peer in front of one
// moto_server, an independent read-back, sparse test images and an uploader wired to the peer.

public import AWSCore
public import EBSUpload
public import Foundation
import Synchronization
public import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Paths and switches shared by the tests.
public enum TestEnv {
    public static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let peerScript = repoRoot.appendingPathComponent("Tests/Peers/strict_ebs_peer.py").path
    public static let readbackScript = repoRoot.appendingPathComponent("Tests/Peers/readback.py").path
    public static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// True when moto_server (or the moto module) is installed.
    public static let motoInstalled: Bool = {
        if run(["/bin/sh", "-c", "command -v moto_server"]).status == 0 { return true }
        return run(["/usr/bin/env", "python3", "-c", "import moto.server"]).status == 0
    }()

    /// Moto tests run when moto is installed, and always in CI (where a missing moto must fail them).
    public static var motoTestsEnabled: Bool {
        if !motoInstalled && !isCI {
            print("note: moto_server not installed; skipping the moto-backed upload tests (they fail when CI=true)")
        }
        return motoInstalled || isCI
    }

    @discardableResult
    public static func run(_ argv: [String], stdin: Data? = nil) -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let o = Pipe()
        let e = Pipe()
        p.standardOutput = o
        p.standardError = e
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (127, "", "\(error)") }
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data()  // written by one block, read after wait()
        nonisolated(unsafe) var err = Data()
        group.enter()
        DispatchQueue.global().async {
            out = o.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        err = e.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// A fresh temporary directory.
    public static func tempDir(_ name: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent(
            "zlabel-ebs-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d.path
    }
}

/// A child Python process that lives until we close its stdin (or the test process dies).
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let stdinPipe = Pipe()
    /// The JSON line it printed when ready.
    public let info: [String: Any]

    public init(_ argv: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.standardInput = stdinPipe
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // Read the first line.
        var line = Data()
        let h = out.fileHandleForReading
        while true {
            let b = h.readData(ofLength: 1)
            if b.isEmpty || b == Data([0x0A]) { break }
            line += b
        }
        guard let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw PeerError(message: "peer printed no ready line (exit \(process.isRunning ? -1 : process.terminationStatus))")
        }
        if let e = obj["error"] as? String { throw PeerError(message: e) }
        info = obj
    }

    public func stop() {
        try? stdinPipe.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit { if process.isRunning { stop() } }
}

public struct PeerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// One moto_server for the whole test process, started on first use.
public enum SharedMoto {
    public static let handle: Result<ChildProcess, PeerError> = {
        do {
            let child = try ChildProcess(["python3", TestEnv.peerScript, "--moto-only"])
            // Warm moto up: its first EBS and EC2 requests load whole backends, which on a busy 2-core machine
            // takes longer than the tests' short per-attempt timeouts allow.
            if let upstream = child.info["upstream"] as? String {
                _ = TestEnv.run(["/usr/bin/env", "python3", "-c", """
                    import boto3, botocore.config
                    cfg = botocore.config.Config(connect_timeout=120, read_timeout=120, retries={"max_attempts": 1})
                    kw = dict(endpoint_url="\(upstream)", region_name="us-east-1", aws_access_key_id="warm",
                              aws_secret_access_key="warm", config=cfg)
                    boto3.client("ebs", **kw).start_snapshot(VolumeSize=1)
                    boto3.client("ec2", **kw).describe_snapshots(OwnerIds=["self"])
                    """])
            }
            return .success(child)
        } catch let e as PeerError {
            return .failure(e)
        } catch {
            return .failure(PeerError(message: "\(error)"))
        }
    }()

    public static func url() throws -> String {
        let h = try handle.get()
        return try #require(h.info["upstream"] as? String)
    }
}

/// A strict peer in front of the shared moto, with its own fault schedule.
public final class StrictPeer: @unchecked Sendable {
    public let child: ChildProcess
    public let port: Int
    public let motoURL: String
    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public init(_ extra: [String] = []) throws {
        motoURL = try SharedMoto.url()
        child = try ChildProcess(["python3", TestEnv.peerScript, "--upstream", motoURL] + extra)
        port = try #require(child.info["port"] as? Int)
    }

    public func stop() { child.stop() }

    /// GET /_peer/stats.
    public func stats() throws -> [String: Any] {
        let r = TestEnv.run(["/usr/bin/env", "python3", "-c",
            "import urllib.request,sys;sys.stdout.write(urllib.request.urlopen('\(endpoint)/_peer/stats').read().decode())"])
        return try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
    }

    /// POST /_peer/delete?snapshot=ID.
    public func delete(snapshot: String) {
        TestEnv.run(["/usr/bin/env", "python3", "-c",
            "import urllib.request;urllib.request.urlopen(urllib.request.Request('\(endpoint)/_peer/delete?snapshot=\(snapshot)',data=b'',method='POST'))"])
    }

    /// The peer's record of each AMI it registered or copied, by id.
    public func images() throws -> [String: [String: Any]] {
        try #require(try stats()["images"] as? [String: [String: Any]])
    }

    /// How many requests of `action` the peer saw.
    public func requests(_ action: String) throws -> Int {
        (try stats()["requests"] as? [String: Any])?[action] as? Int ?? 0
    }

    /// Checks the peer saw no request that AWS would reject.
    public func expectNoRejections(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let s = try stats()
        let rejections = s["rejections"] as? [String] ?? ["(no stats)"]
        #expect(rejections.isEmpty, "peer rejected: \(rejections.prefix(5))", sourceLocation: sourceLocation)
    }
}

/// Reads a snapshot back with boto3 (an implementation independent of ours) and compares it with an image.
public struct Readback {
    public var blocksCompared = 0
    public var mismatches: [Int] = []
    public var written = 0
    public var nonzeroUnwritten: [Int] = []

    /// - Parameter writeTo: also write the snapshot's content to this file (sparse, the image's size).
    public static func check(motoURL: String, snapshot: String, parents: [String] = [], expectedImage: String,
                      writeTo: String? = nil) throws -> Readback {
        var argv = ["/usr/bin/env", "python3", TestEnv.readbackScript, "--endpoint", motoURL, "--snapshot", snapshot,
                    "--image", expectedImage]
        if !parents.isEmpty { argv += ["--parents", parents.joined(separator: ",")] }
        if let writeTo { argv += ["--write-to", writeTo] }
        let r = TestEnv.run(argv)
        guard r.status == 0 else { throw PeerError(message: "readback failed: \(r.err)") }
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        return Readback(
            blocksCompared: o["blocks_compared"] as? Int ?? -1, mismatches: o["mismatches"] as? [Int] ?? [-1],
            written: o["written"] as? Int ?? -1, nonzeroUnwritten: o["nonzero_unwritten"] as? [Int] ?? [-1])
    }

    /// Several snapshots, each compared with the same image, in one boto3 process.
    public static func checkEach(motoURL: String, snapshots: [String], expectedImage: String) throws -> [String: Readback] {
        if snapshots.count == 1 {
            return [snapshots[0]: try check(motoURL: motoURL, snapshot: snapshots[0], expectedImage: expectedImage)]
        }
        var argv = ["/usr/bin/env", "python3", TestEnv.readbackScript, "--endpoint", motoURL, "--image", expectedImage]
        for s in snapshots { argv += ["--snapshot", s] }
        let r = TestEnv.run(argv)
        guard r.status == 0 else { throw PeerError(message: "readback failed: \(r.err)") }
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        let results = try #require(o["results"] as? [String: [String: Any]])
        return results.mapValues { o in
            Readback(
                blocksCompared: o["blocks_compared"] as? Int ?? -1, mismatches: o["mismatches"] as? [Int] ?? [-1],
                written: o["written"] as? Int ?? -1, nonzeroUnwritten: o["nonzero_unwritten"] as? [Int] ?? [-1])
        }
    }

    public var identical: Bool { mismatches.isEmpty && nonzeroUnwritten.isEmpty && blocksCompared > 0 }
}

/// Sparse test images.
public enum TestImage {
    public static let block = 524_288

    /// A deterministic non-zero pattern for block `i` (seeded), 512 KiB.
    public static func pattern(_ i: Int, seed: UInt64 = 0) -> [UInt8] {
        var g = SplitMix64(seed: seed &+ UInt64(i) &* 0x9E37)
        var out = [UInt8](repeating: 0, count: block)
        out.withUnsafeMutableBytes { b in
            for k in stride(from: 0, to: block, by: 8) { b.storeBytes(of: g.next() | 1, toByteOffset: k, as: UInt64.self) }
        }
        return out
    }

    /// Creates a sparse file of `size` bytes and writes `writes` (offset, bytes) into it.
    public static func make(_ path: String, size: UInt64, writes: [(UInt64, [UInt8])]) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw PeerError(message: "cannot create \(path)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw PeerError(message: "ftruncate") }
        for (off, bytes) in writes {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(off)) }
            guard n == bytes.count else { throw PeerError(message: "pwrite") }
        }
    }

    /// Copies a file, keeping holes (cp --sparse=always), then applies an overlay to the copy.
    public static func expectedCopy(of path: String, overlay: ByteRangeOverlay, to dest: String) throws {
        TestEnv.run(["/bin/cp", "--sparse=always", path, dest])
        let fd = open(dest, O_RDWR)
        defer { close(fd) }
        for p in overlay.patches {
            _ = p.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(p.offset)) }
        }
    }

    /// A fingerprint of a (sparse) file that does not read its holes: size, mtime, data extents and the
    /// SHA-256 of the bytes in them.
    public static func fingerprint(ofFile path: String) throws -> String {
        let f = try ImageFile(path: path)
        var desc = "\(f.identity.size) \(f.identity.modifiedNanoseconds)"
        for e in try f.dataExtents() {
            desc += " \(e)"
            var buf = [UInt8](repeating: 0, count: Int(e.count))
            try buf.withUnsafeMutableBytes { try f.read(into: $0, at: e.lowerBound) }
            desc += ":" + EBSAPI.checksum(buf)
        }
        return desc
    }
}

/// Builds an uploader that talks to a peer with test credentials.
public enum UploadHarness {
    public static func with<R: Sendable>(
        endpoint: String, attemptTimeout: Duration = .seconds(2), token: String? = nil,
        _ body: (SnapshotUploader, @Sendable () -> [String]) async throws -> R
    ) async throws -> R {
        var vars = [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        ]
        if let token { vars["AWS_SESSION_TOKEN"] = token }
        let env = AWSEnvironment(variables: vars, homeDirectory: "/nonexistent")
        let config = try AWSConfiguration(environment: env, options: AWSClientOptions(endpointURL: endpoint))
        let log = LogCollector()
        return try await SocketTransport.withTransport(
            configuration: .init(
                maxThreads: 16, maxIdleConnectionsPerHost: 16, connectTimeout: .seconds(2), readTimeout: attemptTimeout)
        ) { transport in
            let session = try await AWSSession(configuration: config, transport: transport, log: log.log)
            let policy = fastPolicy(attemptTimeout: attemptTimeout)
            let uploader = SnapshotUploader(
                ebs: EBSClient(client: try session.client(for: .ebs)),
                ec2: EC2Client(client: try session.client(for: .ec2), policy: policy), log: log.log)
            return try await body(uploader, { log.lines })
        }
    }

    /// Test retry timing: short delays so fault schedules finish quickly.
    public static func fastPolicy(attemptTimeout: Duration = .seconds(2)) -> RetryPolicy {
        RetryPolicy(
            maxAttempts: 8, baseDelay: .milliseconds(20), throttleBaseDelay: .milliseconds(50),
            maxDelay: .milliseconds(400), attemptTimeout: attemptTimeout, operationTimeout: .seconds(60),
            notFoundWindow: .seconds(30))
    }
}

/// Collects log lines.
public final class LogCollector: Sendable {
    private let store = Mutex<[String]>([])
    public init() {}
    public var lines: [String] { store.withLock { $0 } }
    public var log: AWSLog {
        AWSLog { [self] level, msg in
            store.withLock { $0.append("\(level): \(msg)") }
        }
    }
}

/// An image of any size without its bytes: `data` are the extents, every byte in them is 0x5a.
public struct SizedImage: ImageSource {
    public var size: UInt64
    public var data: [Range<UInt64>]
    public init(size: UInt64, data: [Range<UInt64>]) {
        self.size = size
        self.data = data
    }
    public func dataExtents() throws -> [Range<UInt64>] { data }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5a)
    }
    public func prefetch(_ range: Range<UInt64>) {}
}

/// Runs `zlabel-ec2` (or `zlabel`) as a child process with test credentials and no AWS settings of the host.
public enum EC2Process {
    public static func environment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for k in env.keys where k.hasPrefix("AWS_") { env[k] = nil }
        env["AWS_ACCESS_KEY_ID"] = "testing"
        env["AWS_SECRET_ACCESS_KEY"] = "testing"
        env["AWS_REGION"] = "us-east-1"
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["AWS_CONFIG_FILE"] = "/nonexistent"
        env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
        return env
    }

    public static func launch(_ exe: String, _ args: [String]) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = environment()
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out, err)
    }
}

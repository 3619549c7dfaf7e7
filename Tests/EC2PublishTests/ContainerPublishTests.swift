import DiskContainers
import EBSUpload
import EC2TestSupport
import Foundation
import Testing
import TestSupport

/// Issue 13 on the EC2 side: `zlabel ec2 publish` and `ec2 upload` read the virtual disk of a qcow2 or VMDK
/// container (qemu-img's conversion of a fixture) or of a zstd-compressed raw image, skip what holds no data, and
/// overlay the target's labels in flight; the snapshot holds exactly what a publish of the raw image holds.
@Suite("ec2 upload and publish from VM disk containers")
struct ContainerPublishTests {
    /// The raw fixture converted by qemu-img into each container, and compressed by zstd, in one scratch directory.
    static func containers(_ fixture: String) throws -> (raw: URL, dir: TemporaryDirectory, packed: [(String, URL)]) {
        try Oracle.require(.qemuImg)
        try Oracle.require(.compressors)
        let raw = try Fixture.image(fixture)
        let d = try TemporaryDirectory(prefix: "zlabel-ec2-container")
        var packed: [(String, URL)] = []
        for (name, format) in [("disk.qcow2", ["qcow2"]), ("disk.vmdk", ["vmdk", "-o", "subformat=streamOptimized"])] {
            let url = d.file(name)
            let r = try Run.run("qemu-img", ["convert", "-f", "raw", "-O"] + format + [raw.path, url.path])
            guard r.succeeded else { throw OracleError.failed(r) }
            packed.append((name, url))
        }
        let zst = d.file("disk.raw.zst")
        let r = try Run.run("zstd", ["-q", raw.path, "-o", zst.path])
        guard r.succeeded else { throw OracleError.failed(r) }
        packed.append(("disk.raw.zst", zst))
        return (raw, d, packed)
    }

    @Test("the upload source is the virtual disk: bytes equal the raw image, holes from the container's map, identity of the container file",
          .oracle(.qemuImg, .compressors))
    func sourceAndIdentity() throws {
        let (raw, _, packed) = try Self.containers("disk-gpt.img")
        let rawBytes = try Data(contentsOf: raw)
        for (name, url) in packed {
            let image = try UploadImage.open(path: url.path)
            #expect(image.container != nil, "\(name)")
            #expect(image.source.size == UInt64(rawBytes.count), "\(name)")
            var bytes = Data(repeating: 0xA5, count: rawBytes.count)
            try bytes.withUnsafeMutableBytes { try image.source.read(into: $0, at: 0) }
            #expect(bytes == rawBytes, "\(name)")
            // The data map leaves out what qemu-img did not allocate: less than the whole disk, and every byte
            // outside it is zero in the raw image. A zstd file that records its size is not measured before the
            // upload, which reads it once and skips the all-zero blocks it finds: its map is the whole disk.
            let extents = try image.source.dataExtents()
            let mapped = extents.reduce(UInt64(0)) { $0 + UInt64($1.count) }
            if url.pathExtension == "zst" {
                #expect(extents == [0..<UInt64(rawBytes.count)], "\(name): \(extents)")
            } else {
                #expect(mapped > 0 && mapped < UInt64(rawBytes.count), "\(name): \(extents)")
            }
            var position = 0
            for e in extents + [UInt64(rawBytes.count)..<UInt64(rawBytes.count)] {
                let hole = position..<Int(e.lowerBound)
                #expect(rawBytes[hole] == Data(count: hole.count), "\(name): hole before \(e)")
                position = Int(e.upperBound)
            }
            // The journal's identity is the container file's: a rewritten container has another one.
            let file = try ImageFile(path: url.path)
            #expect(image.identity == file.identity, "\(name)")
            Thread.sleep(forTimeInterval: 0.01)
            if url.pathExtension == "zst" {
                // A zstd file takes no trailing bytes; the same bytes written again are a new modification.
                try Data(contentsOf: url).write(to: url)
            } else {
                let handle = try FileHandle(forWritingTo: url)
                try handle.seekToEnd()
                try handle.write(contentsOf: [UInt8](repeating: 0, count: 512))
                try handle.close()
            }
            #expect(try UploadImage.open(path: url.path).identity != image.identity, "\(name)")
        }
        let rawImage = try UploadImage.open(path: raw.path)
        #expect(rawImage.container == nil && rawImage.source is ImageFile)
    }

    @Test("a compressed raw image cut short is refused by upload, naming the file and the compressed offset",
          .oracle(.compressors))
    func compressedRawCutShort() throws {
        try Oracle.require(.compressors)
        let d = try TemporaryDirectory(prefix: "zlabel-ec2-container")
        let url = d.file("disk.raw.gz")
        let r = try Run.run("/bin/sh", ["-c", "head -c 4194304 /dev/urandom | gzip -c | head -c 100000 > '\(url.path)'"])
        #expect(r.succeeded, "\(r)")
        #expect(throws: EBSUpload.ImageError.self) { try UploadImage.open(path: url.path) }
        do { _ = try UploadImage.open(path: url.path) } catch {
            let text = "\(error)"
            #expect(text.contains(url.path) && text.contains("gzip stream") && text.contains("ends early")
                    && text.contains("at byte 100000"), "\(text)")
        }
    }

    @Test("publish from a qcow2, a streamOptimized VMDK and a .raw.zst: the snapshot read back equals the raw image with the target's labels; under 64 MiB of memory, no file over 1 MiB written",
          .oracle(.qemuImg, .compressors), .enabled(if: TestEnv.motoTestsEnabled))
    func publishFromContainers() throws {
        let (raw, d, packed) = try Self.containers("disk-gpt.img")
        let peer = try StrictPeer(["--image-delay", "0"])
        defer { peer.stop() }
        let env = PublishEndToEndTests.environment(peer)
        let devid = PublishEndToEndTests.devid

        // What a publish of the raw image puts in its snapshot: the raw image with `zlabel set`'s labels.
        let expected = d.file("expected.img")
        #expect(TestEnv.run(["/bin/cp", "--sparse=always", raw.path, expected.path]).status == 0)
        let set = try ZLabelCLI.run(["set", expected.path, "--target", "ec2-xen-hvm", "--devid", devid,
                                     "--backup", d.file("backup").path])
        #expect(set.status == 0, "\(set)")

        for (name, url) in packed {
            let before = try Data(contentsOf: url)
            let (run, peakKiB) = try Self.limited(["ec2", "publish", url.path, "--name", "omnios from \(name)", "--target", "ec2-xen-hvm",
                                                   "--devid", devid, "--state-dir", d.file("state").path, "--wait", "--no-progress",
                                                   "--json"], environment: env)
            #expect(run.status == 0, "\(run)")
            #expect(peakKiB > 0 && peakKiB < 64 * 1024, "\(name): peak RSS \(peakKiB) KiB")
            let doc = try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any], "\(run)")
            let ami = try #require(doc["ami"] as? [String: Any])
            let snapshot = try #require(ami["snapshot_id"] as? String)
            let rb = try Readback.check(motoURL: peer.motoURL, snapshot: snapshot, expectedImage: expected.path)
            #expect(rb.identical, "\(name): \(rb)")
            #expect(try Data(contentsOf: url) == before, "\(name): the container was only read")
        }

        // `ec2 upload` of the qcow2 and of a gzip file (no labels changed; gzip records no size, so the image is
        // measured first): the snapshot equals the raw image.
        let gz = d.file("disk.raw.gz")
        let gzipped = try Run.run("sh", ["-c", "gzip -1 -c < \"$1\" > \"$2\"", "sh", raw.path, gz.path])
        #expect(gzipped.succeeded, "\(gzipped)")
        for (n, url) in [(packed[0].0, packed[0].1), ("disk.raw.gz", gz)] {
            let upload = try ZLabelCLI.run(["ec2", "upload", url.path, "--state-dir", d.file("state-upload").path,
                                            "--no-progress", "--workers", "4"], environment: env)
            #expect(upload.status == 0, "\(upload)")
            let snapshot = upload.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            let rb = try Readback.check(motoURL: peer.motoURL, snapshot: snapshot, expectedImage: raw.path)
            #expect(rb.identical, "upload of \(n): \(rb)")
        }
        try peer.expectNoRejections()
    }

    @Test("the 1 MiB file limit the publish test runs under stops a larger write")
    func fileLimitBites() throws {
        let d = try TemporaryDirectory(prefix: "zlabel-ec2-limit")
        let script = """
            import resource, subprocess, sys
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
            sys.exit(subprocess.run(sys.argv[1:]).returncode)
            """
        let small = try Run.run("python3", ["-c", script, "dd", "if=/dev/zero", "of=\(d.file("small").path)", "bs=1024", "count=1024"])
        #expect(small.status == 0, "\(small)")
        let big = try Run.run("python3", ["-c", script, "dd", "if=/dev/zero", "of=\(d.file("big").path)", "bs=1024", "count=1025"])
        #expect(big.status != 0, "\(big)")
        #expect(try FileManager.default.attributesOfItem(atPath: d.file("big").path)[.size] as? Int == 1 << 20)
    }

    /// Runs zlabel with `arguments` as a child that may not write any file past 1 MiB (`RLIMIT_FSIZE`: the kernel
    /// stops such a write, temporary files included, and the run fails) and returns its peak resident set in KiB.
    static func limited(_ arguments: [String], environment: [String: String]) throws -> (ProcessResult, Int) {
        let script = """
            import resource, subprocess, sys
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
            r = subprocess.run(sys.argv[1:])
            print("peak-rss-kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
            sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)
            """
        let run = try Run.run("python3", ["-c", script, try ZLabelCLI.executable().path] + arguments, environment: environment)
        let line = run.stderrText.split(separator: "\n").last { $0.hasPrefix("peak-rss-kib ") }
        return (run, line.flatMap { Int($0.dropFirst("peak-rss-kib ".count)) } ?? -1)
    }
}

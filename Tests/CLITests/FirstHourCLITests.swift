import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a new user meets in the first hour (issue "A user's first hour"): usage errors before any file is opened,
/// a clear verdict on what is not a vdev, a refused endpoint that fails fast with one clear line.
@Suite("a user's first hour")
struct FirstHourCLITests {
    static func file(_ dir: TemporaryDirectory, _ name: String, size: Int, random seed: UInt64? = nil) throws -> URL {
        let url = dir.file(name)
        var bytes = [UInt8](repeating: 0, count: size)
        if let seed {
            var rng = Noise(seed)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            bytes[510] = 0  // no MBR signature: a bare "vdev"
        }
        try Data(bytes).write(to: url)
        return url
    }

    // MARK: usage before I/O

    @Test("usage errors are reported first, exit 64, whatever the image (even one that is too small or missing)",
          arguments: [
            (["--target", "bogus"], "unknown target \"bogus\""),
            (["--target", "ec2-xen-hvm", "--device", "/dev/sdz9"], "/dev/xvda"),
            (["--target", "ec2-xen-hvm", "--device", "sdf"], "must start with /dev/"),
            (["--target", "ec2-nitro", "--device", "/dev/sda"], "takes no device name"),
            (["--device", "/dev/sda"], "--device goes with --target"),
            (["--devid", "x", "--remove-devid"], "exclude each other"),
          ] as [([String], String)])
    func usageBeforeIO(_ options: [String], _ mention: String) throws {
        let dir = try TemporaryDirectory()
        let tiny = try Self.file(dir, "tiny.txt", size: 5)
        for image in [tiny.path, dir.file("missing.img").path, tiny.path + "@0:x"] {
            let run = try ZLabelCLI.run(["set", image] + options)
            #expect(run.status == 64, "\(run)")
            #expect(run.stderrText.contains(mention), "\(run)")
            #expect(!run.stderrText.contains("bytes") || image.hasSuffix("@0:x"), "the image was looked at first:\n\(run)")
        }
        let doctor = try ZLabelCLI.run(["doctor", tiny.path] + options.filter { !$0.contains("devid") })
        if options.contains("--target") || options.contains("--device") {
            #expect(doctor.status == 64 && doctor.stderrText.contains(mention), "\(doctor)")
        }
    }

    @Test("a malformed IMAGE@OFFSET:SIZE is a usage error, not a place in the image")
    func badRangeArgument() throws {
        let dir = try TemporaryDirectory()
        let tiny = try Self.file(dir, "tiny.img", size: 5)
        let run = try ZLabelCLI.run(["inspect", tiny.path + "@1:zz"])
        #expect(run.status == 64, "\(run)")
        #expect(run.stderrText.contains("OFFSET:SIZE") && !run.stderrText.contains("at byte"), "\(run)")
    }

    @Test("an image too small for labels: the message gives its size, not \"at byte 0\"")
    func noByteZero() throws {
        let dir = try TemporaryDirectory()
        let tiny = try Self.file(dir, "tiny.txt", size: 5)
        let run = try ZLabelCLI.run(["inspect", tiny.path])
        #expect(run.status == 2, "\(run)")
        #expect(run.stderrText.contains("5 bytes") && !run.stderrText.contains("at byte 0"), "\(run)")
        let disk = try Fixture.image("disk-gpt.img")
        let p7 = try ZLabelCLI.run(["inspect", "--partition", "p7", disk.path])
        #expect(p7.status == 2 && p7.stderrText.contains("p7") && !p7.stderrText.contains("at byte 0"), "\(p7)")
    }

    // MARK: what is not a vdev

    @Test("random bytes: inspect says no ZFS label was found and exits 2 (as zdb -l); --json still prints the object")
    func inspectRandom() throws {
        let dir = try TemporaryDirectory()
        let url = try Self.file(dir, "random-1MiB.img", size: 1 << 20, random: 7)
        let text = try ZLabelCLI.run(["inspect", url.path])
        #expect(text.status == 2, "\(text)")
        #expect(text.stderrText.contains("\(url.path): no ZFS label found") && text.stderrText.contains("not a ZFS vdev"), "\(text)")
        let json = try ZLabelCLI.run(["inspect", "--json", url.path])
        #expect(json.status == 2, "\(json)")
        let doc = try ExactJSON.parse(json.stdout)
        #expect(doc["vdevs"]?.array?.count == 1, "\(json)")
        // A real vdev still exits 0.
        #expect(try ZLabelCLI.run(["inspect", try Fixture.image("rpool-kvm.img").path]).status == 0)
    }

    @Test("a whole disk with no label in any partition: the partitions looked at are named, exit 2")
    func inspectDiskWithoutLabels() throws {
        let copy = try Fixture.scratchCopy("disk-gpt.img")
        let disk = try ZLabelCLI.run(["inspect", "--json", copy.url.path])
        let doc = try ExactJSON.parse(disk.stdout)
        let vdev = try #require(doc["vdevs"]?.array?.first)
        let start = try #require(vdev["partition"]?["start"]?.uint64), size = try #require(vdev["partition"]?["size"]?.uint64)
        let name = try #require(vdev["partition"]?["name"]?.string)
        // Zero the pool's four labels (the first and last 512 KiB of its partition).
        let handle = try FileHandle(forWritingTo: copy.url)
        for offset in [start, start + size - (512 << 10)] {
            try handle.seek(toOffset: offset)
            handle.write(Data(count: 512 << 10))
        }
        try handle.close()
        let run = try ZLabelCLI.run(["inspect", copy.url.path])
        #expect(run.status == 2, "\(run)")
        #expect(run.stderrText.contains("no ZFS label found") && run.stderrText.contains("looked at") && run.stderrText.contains(name), "\(run)")
    }

    @Test("doctor on random bytes: one problem, not a ZFS vdev, no repair suggested and no empty pool name")
    func doctorRandom() throws {
        let dir = try TemporaryDirectory()
        let url = try Self.file(dir, "random.img", size: 1 << 20, random: 8)
        let run = try ZLabelCLI.run(["doctor", url.path])
        #expect(run.status == 1, "\(run)")
        #expect(run.stdoutText.contains("not a ZFS vdev"), "\(run)")
        #expect(!run.stdoutText.contains("repair-checksums"), "\(run)")
        #expect(!run.stdoutText.hasPrefix("pool \n") && !run.stdoutText.contains("pool  "), "\(run)")
        #expect(run.stdoutText.split(separator: "\n").filter { $0.hasPrefix("problem:") }.count == 1, "\(run)")
    }

    // MARK: expect

    @Test("expect is silent when all hold; a misspelled key says it is unknown and names the key meant")
    func expectHints() throws {
        let image = try Fixture.image("rpool-kvm.img").path
        let good = try ZLabelCLI.run(["expect", image, "labels=4", "hostname=omnios", "checksums=valid"])
        #expect(good.status == 0 && good.stdoutText.isEmpty && good.stderrText.isEmpty, "\(good)")
        let typo = try ZLabelCLI.run(["expect", image, "phys_pth=/xpvd/xdf@51712:a"])
        #expect(typo.status == 1, "\(typo)")
        #expect(typo.stdoutText.contains("found phys_pth=absent") && typo.stdoutText.contains("did you mean phys_path?"), "\(typo)")
        let top = try ZLabelCLI.run(["expect", image, "pool_gid=1"])
        #expect(top.stdoutText.contains("did you mean pool_guid?"), "\(top)")
    }

    // MARK: restore after two edits

    @Test("restore from the first backup after a second edit names the newer backup to restore first")
    func restoreNamesNewerBackup() throws {
        let copy = try Fixture.scratchCopy("rpool-kvm.img")
        let path = copy.url.path
        #expect(try ZLabelCLI.run(["set", path, "--phys-path", "/xpvd/xdf@51712:a"]).status == 0)
        #expect(try ZLabelCLI.run(["set", path, "--phys-path", "/xpvd/xdf@51728:a"]).status == 0)
        let refused = try ZLabelCLI.run(["restore", path, "--from", path + ".zlabel-backup"])
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stderrText.contains("restore from it first") && refused.stderrText.contains(path + ".zlabel-backup-1"), "\(refused)")
        // Following the advice undoes both edits.
        #expect(try ZLabelCLI.run(["restore", path, "--from", path + ".zlabel-backup-1"]).status == 0)
        #expect(try ZLabelCLI.run(["restore", path, "--from", path + ".zlabel-backup"]).status == 0)
        #expect(try ZLabelCLI.run(["expect", path, "phys_path=/pci@0,0/pci1af4,2@4/blkdev@0,0:a"]).status == 0)
    }

    // MARK: dry run, misspelled subcommand

    @Test("--dry-run says that nothing was written")
    func dryRunSaysSo() throws {
        let copy = try Fixture.scratchCopy("rpool-kvm.img")
        let run = try ZLabelCLI.run(["set", copy.url.path, "--target", "ec2-xen-hvm", "--dry-run"])
        #expect(run.status == 0 && run.stdoutText.contains("dry run: nothing written"), "\(run)")
    }

    @Test("a misspelled subcommand is answered with the one meant")
    func misspelledSubcommand() throws {
        let run = try ZLabelCLI.run(["inpsect", "x.img"])
        #expect(run.status == 64, "\(run)")
        #expect(run.stderrText.contains("did you mean 'inspect'?"), "\(run)")
    }

    // MARK: a refused endpoint

    /// A TCP port on 127.0.0.1 with nothing listening: bound, then closed.
    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        close(fd)
        #expect(bound)
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func awsEnvironment(_ dir: TemporaryDirectory, port: Int) -> [String: String] {
        [
            "AWS_ENDPOINT_URL": "http://127.0.0.1:\(port)", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": dir.file("config").path, "AWS_SHARED_CREDENTIALS_FILE": dir.file("none").path,
            "AWS_MAX_ATTEMPTS": "", "AWS_RETRY_MODE": "", "AWS_PROFILE": "",
        ]
    }

    @Test("a refused endpoint: 3 attempts (the SDKs' standard mode), then one line naming the endpoint, its source and what to check")
    func refusedEndpoint() throws {
        let dir = try TemporaryDirectory()
        let image = try Self.file(dir, "disk.img", size: 1 << 20)
        let port = try Self.closedPort()
        let env = Self.awsEnvironment(dir, port: port)
        let run = try ZLabelCLI.run(["ec2", "upload", image.path, "--state-dir", dir.file("state").path, "--no-progress"],
                                    environment: env, timeout: 60)
        #expect(run.status == 1, "\(run)")
        let lines = run.stderrText.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.contains("retry ") }.map { $0.contains("/3 of StartSnapshot") } == [true, true], "\(run)")
        let failures = lines.filter { !$0.contains("retry ") }
        #expect(failures.count == 1, "\(run)")
        let line = failures.first ?? ""
        for part in ["StartSnapshot", "http://127.0.0.1:\(port)", "AWS_ENDPOINT_URL", "connection refused", "3 attempts",
                     "check that the endpoint is right"] {
            #expect(line.contains(part), "\(part) missing: \(line)")
        }
        #expect(!run.stderrText.contains("errno") && !run.stderrText.contains("Error: "), "\(run)")

        // AWS_MAX_ATTEMPTS and the profile's max_attempts are honoured; --max-attempts wins over both.
        var one = env
        one["AWS_MAX_ATTEMPTS"] = "1"
        let single = try ZLabelCLI.run(["ec2", "upload", image.path, "--state-dir", dir.file("s1").path, "--no-progress"],
                                       environment: one, timeout: 60)
        #expect(single.status == 1 && !single.stderrText.contains("retry ") && single.stderrText.contains("after 1 attempt;"), "\(single)")
        try "[default]\nmax_attempts = 2\nretry_mode = standard\n".write(to: dir.file("config"), atomically: true, encoding: .utf8)
        let profile = try ZLabelCLI.run(["ec2", "upload", image.path, "--state-dir", dir.file("s2").path, "--no-progress"],
                                        environment: env, timeout: 60)
        #expect(profile.stderrText.components(separatedBy: "retry 2/2 of StartSnapshot").count == 2 && profile.stderrText.contains("after 2 attempts"), "\(profile)")
        let flag = try ZLabelCLI.run(["ec2", "upload", image.path, "--state-dir", dir.file("s3").path, "--no-progress",
                                      "--max-attempts", "1"], environment: env, timeout: 60)
        #expect(!flag.stderrText.contains("retry ") && flag.stderrText.contains("after 1 attempt;"), "\(flag)")
        // A value that is not a mode or a count is named with where it came from.
        var bad = env
        bad["AWS_RETRY_MODE"] = "fast"
        let badMode = try ZLabelCLI.run(["ec2", "upload", image.path, "--state-dir", dir.file("s4").path], environment: bad)
        #expect(badMode.status == 1 && badMode.stderrText.contains("AWS_RETRY_MODE is \"fast\""), "\(badMode)")
    }
}

/// A small seeded generator for random image bytes (SplitMix64's steps).
fileprivate struct Noise {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

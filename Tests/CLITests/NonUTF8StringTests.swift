import Foundation
import Testing
import TestSupport
import ZLabel

/// Issue 14: strings are bytes. A pool that real ZFS (libzpool) created on a host whose hostname is Latin-1,
/// with a leaf path that is not UTF-8 either, as another OS may leave one. zlabel must read it as ZFS does,
/// show it losslessly, match it in `expect`, and edit other fields while keeping those bytes.
@Suite("strings that are not UTF-8, in a pool real ZFS wrote")
struct NonUTF8StringTests {
    /// `omni\xf6s`: "omniös" in ISO 8859-1.
    static let hostname: [UInt8] = Array("omni".utf8) + [0xf6] + Array("s".utf8)
    static let hostnameEscaped = #"omni\xf6s"#
    /// `/dev/dsk/c1t0d0s0-\xe9t\xe9`: "été" in ISO 8859-1.
    static let path: [UInt8] = Array("/dev/dsk/c1t0d0s0-".utf8) + [0xe9, 0x74, 0xe9]
    static let pathEscaped = #"/dev/dsk/c1t0d0s0-\xe9t\xe9"#
    static let physPath = "/pci@0,0/pci1af4,2@4/blkdev@0,0:a"

    /// The pool, made once by real ZFS for the whole suite (~3 s: the one source of such labels that is ZFS
    /// itself rather than a byte patch).
    static let made: Result<(TemporaryDirectory, URL), any Error> = Result {
        let directory = try TemporaryDirectory(prefix: "zlabel-nonutf8")
        let url = directory.file("latin1.img")
        let run = try Oracle.makeRealPool(["-E", "-H", hostnameEscaped, "-d", url.path, "-p", pathEscaped,
                                           "-P", physPath])
        guard run.succeeded else { throw OracleError.failed(run) }
        return (directory, url)
    }

    static func pool() throws -> URL { try made.get().1 }

    static func copy() throws -> (TemporaryDirectory, URL) {
        let directory = try TemporaryDirectory(prefix: "zlabel-nonutf8-copy")
        let url = directory.file("latin1.img")
        try Fixture.sparseCopy(from: try pool(), to: url)
        return (directory, url)
    }

    static func base64(_ bytes: [UInt8]) -> ExactJSON {
        .object([ExactJSON.Member(key: "base64", value: .string(Data(bytes).base64EncodedString()))])
    }

    /// The bytes `zdb -l` prints between `KEY: '` and `'` on the first line that has them: libnvpair's view.
    static func zdbValue(_ key: String, in output: Data) -> [UInt8]? {
        let bytes = [UInt8](output)
        let prefix = Array("\(key): '".utf8)
        guard let start = bytes.indices.first(where: { bytes[$0...].starts(with: prefix) }) else { return nil }
        let from = start + prefix.count
        guard let end = bytes[from...].firstIndex(of: UInt8(ascii: "\n")), end > from, bytes[end - 1] == UInt8(ascii: "'")
        else { return nil }
        return Array(bytes[from..<(end - 1)])
    }

    static func labels(_ url: URL) throws -> VdevLabels {
        let file = try ImageFile(path: url.path)
        let region = try #require(try file.findVdevs().regions.first)
        return try file.readLabels(in: region)
    }

    @Test("inspect and verify read the labels as ZFS does; JSON carries the exact bytes",
          .oracle(.makeRealPool, .zdb, .zlabelJSON))
    func inspectAndVerify() throws {
        let url = try Self.pool()
        // libnvpair, through zdb -l, holds these bytes: the pool really has them
        let zdb = try Oracle.zdbLabel(url)
        #expect(zdb.succeeded, "\(zdb)")
        #expect(Self.zdbValue("hostname", in: zdb.stdout) == Self.hostname, "\(zdb)")
        #expect(Self.zdbValue("path", in: zdb.stdout) == Self.path, "\(zdb)")
        // libnvpair unpacks all four labels and libzpool accepts their checksums (its JSON printer stops at
        // the first string that is not UTF-8, so the verdicts are read from the text)
        let oracle = try Oracle.script("zlabel-json.sh", [url.path])
        #expect(oracle.succeeded, "\(oracle)")
        #expect(oracle.stdoutText.components(separatedBy: #""cksum_valid":true,"byteswapped":false,"unpacked":true"#).count == 5,
                "\(oracle)")

        let (_, doc) = try LabelAgreement.inspectJSON([url.path])
        let vdev = try LabelAgreement.onlyVdev(doc)
        for i in 0..<4 {
            let label = vdev["labels"]?[i]
            #expect(label?["status"]?.string == "valid", "L\(i)")
            #expect(label?[path: "config.hostname"] == Self.base64(Self.hostname), "L\(i)")
            #expect(label?[path: "config.vdev_tree.path"] == Self.base64(Self.path), "L\(i)")
            #expect(label?[path: "config.vdev_tree.phys_path"]?.string == Self.physPath, "L\(i)")
            #expect(label?[path: "config.name"]?.string == "rpool", "L\(i)")
        }
        let verify = try ZLabelCLI.run(["verify", url.path])
        #expect(verify.status == 0, "\(verify)")

        // text, as zdb -l but with each byte that is not UTF-8 written \xNN
        let text = try ZLabelCLI.run(["inspect", url.path])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdoutText.contains("    hostname: '\(Self.hostnameEscaped)'\n"), "\(text)")
        #expect(text.stdoutText.contains("        path: '\(Self.pathEscaped)'\n"), "\(text)")
    }

    @Test("every label decodes and re-encodes to the bytes ZFS packed", .oracle(.makeRealPool))
    func roundTrip() throws {
        let url = try Self.pool()
        let labels = try Self.labels(url)
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        for label in labels.labels {
            try handle.seek(toOffset: label.offset + UInt64(LabelLayout.configOffset))
            let area = [UInt8](try handle.read(upToCount: LabelLayout.configCapacity) ?? Data())
            let decoded = try NVList.decode(xdr: area)
            #expect(decoded.list.string("hostname")?.bytes == Self.hostname)
            let encoded = decoded.list.encodeXDR(hostByteOrder: decoded.header.hostByteOrder)
            #expect(encoded == Array(area[..<decoded.byteCount]), "L\(label.index)")
            #expect(label.config == decoded.list, "L\(label.index)")
        }
    }

    @Test("set --phys-path keeps the hostname and path bytes, and real ZFS still imports the pool",
          .oracle(.makeRealPool, .zdb, .zdbCheck))
    func setKeepsTheBytes() throws {
        let (directory, url) = try Self.copy()
        let snapshot = try ImageSnapshot(url)
        let xen = "/xpvd/xdf@51712:a"
        // the leaf chosen by its path in escaped form
        let run = try ZLabelCLI.run(["set", url.path, "--vdev", Self.pathEscaped, "--phys-path", xen,
                                     "--backup", directory.file("backup").path])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.contains("wrote 4 labels"), "\(run)")
        let areas = (0..<LabelLayout.labelCount).map { i in
            let start = Int(LabelLayout.labelOffset(i, vdevSize: 64 << 20)) + LabelLayout.configOffset
            return start..<(start + LabelLayout.configSize)
        }
        #expect(try snapshot.firstChange(outside: areas) == nil)

        let labels = try Self.labels(url)
        for label in labels.labels {
            #expect(label.status == .valid, "L\(label.index)")
            let config = try #require(label.config)
            #expect(config.string("hostname")?.bytes == Self.hostname)
            let leaf = try #require(config.vdevLeaves.first)
            #expect(leaf.path?.bytes == Self.path)
            #expect(leaf.physPath == NVString(xen))
        }
        let zdb = try Oracle.zdbLabel(url)
        #expect(Self.zdbValue("hostname", in: zdb.stdout) == Self.hostname, "\(zdb)")
        #expect(Self.zdbValue("path", in: zdb.stdout) == Self.path, "\(zdb)")
        #expect(Self.zdbValue("phys_path", in: zdb.stdout) == Array(xen.utf8), "\(zdb)")
        let check = try Oracle.zdbCheck([Oracle.Device(url)], expect: ["phys_path": xen])
        #expect(check.succeeded, "\(check)")
    }

    @Test("set --dry-run --json shows the old path losslessly", .oracle(.makeRealPool))
    func planJSON() throws {
        let (_, url) = try Self.copy()
        let snapshot = try ImageSnapshot(url)
        let run = try ZLabelCLI.run(["set", url.path, "--path", "/dev/dsk/c2t0d0s0", "--dry-run", "--json"])
        #expect(run.status == 0, "\(run)")
        let doc = try ExactJSON.parse(run.stdout)
        #expect(doc[path: "members[0].changes[0].old"] == Self.base64(Self.path), "\(doc)")
        #expect(doc[path: "members[0].changes[0].new"]?.string == "/dev/dsk/c2t0d0s0", "\(doc)")
        #expect(try snapshot.isUnchanged())
    }

    @Test("expect matches such strings in escaped form", .oracle(.makeRealPool))
    func expectMatches() throws {
        let url = try Self.pool()
        for expectation in ["hostname=\(Self.hostnameEscaped)", #"hostname=omni\xF6s"#,
                            "leaf[\(Self.pathEscaped)].phys_path=\(Self.physPath)",
                            "vdev_tree.path=\(Self.pathEscaped)"] {
            let run = try ZLabelCLI.run(["expect", url.path, expectation])
            #expect(run.status == 0, "\(expectation): \(run)")
        }
        for wrong in ["hostname=omnios", "hostname=omni\u{f6}s", #"hostname=omni\xf6"#] {
            let run = try ZLabelCLI.run(["expect", url.path, wrong])
            #expect(run.status == 1, "\(wrong): \(run)")
            // the value found is shown in the form that matches it
            #expect(run.stdoutText.contains(Self.hostnameEscaped) || run.stderrText.contains(Self.hostnameEscaped),
                    "\(wrong): \(run)")
        }
    }

    @Test("doctor and boot-view read the pool", .oracle(.makeRealPool))
    func doctorAndBootView() throws {
        let url = try Self.pool()
        for command in [["doctor", url.path], ["doctor", "--json", url.path], ["boot-view", url.path]] {
            let run = try ZLabelCLI.run(command)
            #expect(!run.timedOut && run.status >= 0 && run.status <= 2, "\(command): \(run)")
            #expect(!run.stdoutText.isEmpty, "\(command): \(run)")
        }
    }
}

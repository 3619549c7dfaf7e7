import Foundation
import Testing
import TestSupport

/// `zlabel expect` on every fixture: expectations built from what real ZFS (libnvpair and libzpool through
/// `zlabel-json.sh`) reads in each image hold; altered ones fail with one line per label, naming the image,
/// the label, the expectation and the value real ZFS reads there.
@Suite("zlabel expect")
struct ExpectCLITests {
    /// What real ZFS reads in one label, in the terms of `zlabel expect`.
    struct OracleLabel {
        var index: Int
        var valid: Bool
        var config: ExactJSON?

        /// The node of the label's own leaf (guid = the config's guid) in its vdev_tree.
        var ownLeaf: ExactJSON? {
            guard let guid = config?["guid"], let tree = config?["vdev_tree"] else { return nil }
            func find(_ node: ExactJSON) -> ExactJSON? {
                if let children = node["children"]?.array, !children.isEmpty {
                    return children.lazy.compactMap(find).first
                }
                return node["guid"] == guid ? node : nil
            }
            return find(tree)
        }

        /// A value as `zlabel expect` writes it: strings as they are, numbers as written, `absent` when missing.
        static func text(_ value: ExactJSON?) -> String {
            switch value {
            case nil: "absent"
            case .string(let s)?: s
            case let other?: other.description
            }
        }
    }

    static func oracleLabels(_ fixture: Fixture, _ url: URL) throws -> [OracleLabel] {
        let dump = try Oracle.zlabelJSON(Oracle.Device(url, fixture: fixture))
        #expect(dump.labelsValid == fixture.validLabels, "\(dump.result)")
        return dump.labels.map { OracleLabel(index: $0.index, valid: $0.isValid, config: $0.config) }
    }

    /// `PATH (REGION)` as zlabel names a vdev: the image, and for a whole disk the partition or slice.
    static func place(_ fixture: Fixture, _ url: URL) -> String {
        guard let partition = fixture.partition else { return url.path }
        switch partition.scheme {
        case .gpt: return "\(url.path) (p\(partition.number))"
        case .mbrVTOC: return "\(url.path) (\(partition.slice))"
        }
    }

    @Test("expectations read from real ZFS hold; altered ones fail, one line per label",
          .oracle(.zlabelJSON), arguments: Fixture.all)
    func everyFixture(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let labels = try Self.oracleLabels(fixture, url)
        let valid = labels.filter(\.valid)
        let first = try #require(valid.first, "no valid label in \(fixture)")
        let config = try #require(first.config)
        let leaf = try #require(first.ownLeaf, "no own leaf in \(fixture)")
        // Labels that do not unpack fail every config expectation, so scope to the valid ones.
        let scope = valid.count == 4 ? "" : "label[\(valid.map { String($0.index) }.joined(separator: ","))]."
        let state = try #require(config["state"]?.uint64)

        let holding = [
            "labels=\(valid.count)",
            "\(scope)checksums=valid",
            "\(scope)state=\(state)",
            "\(scope)state=\(state == 0 ? "active" : "exported")",
            "\(scope)name=\(OracleLabel.text(config["name"]))",
            "\(scope)hostid=\(OracleLabel.text(config["hostid"]))",
            "\(scope)hostname=\(OracleLabel.text(config["hostname"]))",
            "\(scope)phys_path=\(OracleLabel.text(leaf["phys_path"]))",
            "\(scope)path=\(OracleLabel.text(leaf["path"]))",
            "\(scope)devid=\(OracleLabel.text(leaf["devid"]))",
            "\(scope)leaf[\(OracleLabel.text(leaf["guid"]))].path=\(OracleLabel.text(leaf["path"]))",
            "\(scope)vdev_tree.type=\(OracleLabel.text(config["vdev_tree"]?["type"]))",
            "\(scope)pool_guid=0x\(String(try #require(config["pool_guid"]?.uint64), radix: 16))",
        ]
        let pass = try ZLabelCLI.run(["expect", url.path] + holding)
        #expect(pass.status == 0, "\(pass)")
        #expect(pass.stdoutText.isEmpty, "\(pass)")

        // Every label whose config real ZFS unpacks, for each altered expectation.
        let physPath = OracleLabel.text(leaf["phys_path"])
        let hostid = config["hostid"]
        let failing = [
            "phys_path=\(physPath == "absent" ? "/xpvd/xdf@51712:a" : physPath + "-not")",
            hostid == nil ? "hostid=0x0badc0de" : "hostid=absent",
            "state=destroyed",
        ]
        let fail = try ZLabelCLI.run(["expect", url.path] + failing + ["labels=\(valid.count == 4 ? 3 : 4)"])
        #expect(fail.status == 1, "\(fail)")
        let lines = fail.stdoutText.split(separator: "\n").map(String.init)
        let place = Self.place(fixture, url)
        var expected: [String] = []
        for expectation in failing {
            let key = String(expectation.prefix { $0 != "=" })
            for label in labels {
                guard let labelConfig = label.config else {
                    expected.append("\(place): label \(label.index): expected \(expectation), found (no config: the label is ")
                    continue
                }
                let found: String
                switch key {
                case "phys_path": found = OracleLabel.text(label.ownLeaf?["phys_path"])
                case "state": found = labelConfig["state"]?.uint64 == 0 ? "active" : "exported"
                default: found = OracleLabel.text(labelConfig[key])
                }
                expected.append("\(place): label \(label.index): expected \(expectation), found \(key)=\(found)")
            }
        }
        expected.append("\(place): expected labels=\(valid.count == 4 ? 3 : 4), found labels=\(valid.count)")
        #expect(lines.count == expected.count, "\(fail.stdoutText)")
        for (line, want) in zip(lines, expected) {
            if want.hasSuffix("the label is ") || want.contains("found labels=") && valid.count < 4 {
                #expect(line.hasPrefix(want), "\(line)\nshould start with\n\(want)")
            } else {
                #expect(line == want)
            }
        }
    }

    @Test("mirror: each member's own leaf, and a sibling's record in every member's labels", .oracle(.zlabelJSON))
    func mirrorMembers() throws {
        let fixtures = try Fixture.pool(of: "rpool-mirror-0.img")
        let urls = try fixtures.map { try $0.url() }
        let members = try zip(fixtures, urls).map { try Self.oracleLabels($0, $1) }
        let leaves = try members.map { try #require($0[0].ownLeaf) }
        let phys = leaves.map { OracleLabel.text($0["phys_path"]) }
        let paths = leaves.map { OracleLabel.text($0["path"]) }
        #expect(Set(phys).count == 2, "the members' phys_paths should differ: \(phys)")

        // Each member's own phys_path, checked member by member.
        for (url, value) in zip(urls, phys) {
            let run = try ZLabelCLI.run(["expect", url.path, "phys_path=\(value)"])
            #expect(run.status == 0, "\(run)")
        }
        // Both members given: member 0's value fails in member 1's four labels only.
        let both = try ZLabelCLI.run(["expect"] + urls.map(\.path) + ["phys_path=\(phys[0])"])
        #expect(both.status == 1)
        #expect(both.stdoutText == (0..<4).map {
            "\(urls[1].path): label \($0): expected phys_path=\(phys[0]), found phys_path=\(phys[1])\n"
        }.joined(), "\(both)")
        // Every member's labels record every sibling: address them by path and by guid.
        var siblings: [String] = []
        for (i, leaf) in leaves.enumerated() {
            siblings.append("leaf[\(paths[i])].phys_path=\(phys[i])")
            siblings.append("leaf[\(OracleLabel.text(leaf["guid"]))].devid=\(OracleLabel.text(leaf["devid"]))")
        }
        let records = try ZLabelCLI.run(["expect"] + urls.map(\.path) + siblings)
        #expect(records.status == 0, "\(records)")
        // A leaf that is not there.
        let missing = try ZLabelCLI.run(["expect", urls[0].path, "leaf[/dev/dsk/c9t9d0s0].phys_path=x"])
        #expect(missing.status == 1)
        let lines = missing.stdoutText.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines.allSatisfy {
            $0.contains(": expected leaf[/dev/dsk/c9t9d0s0].phys_path=x, found (no leaf /dev/dsk/c9t9d0s0 in the vdev_tree; its leaves: ")
                && $0.contains(paths[0]) && $0.contains(paths[1])
        }, "\(missing)")
    }

    @Test("--json: every outcome, with image, label, expected and found", .oracle(.zlabelJSON))
    func json() throws {
        let fixture = try Fixture.named("disk-gpt.img")
        let url = try fixture.url()
        let labels = try Self.oracleLabels(fixture, url)
        let path = OracleLabel.text(try #require(labels[0].ownLeaf)["path"])
        let run = try ZLabelCLI.run(["expect", "--json", url.path, "path=\(path)", "label[2,3].path=/dev/dsk/c2t0d0s0"])
        #expect(run.status == 1, "\(run)")
        let doc = try ExactJSON.parse(run.stdout)
        #expect(doc["ok"]?.bool == false)
        #expect(doc["checked"]?.int == 6)
        #expect(doc["failed"]?.int == 2)
        let outcomes = try #require(doc["outcomes"]?.array)
        #expect(outcomes.count == 6)
        for outcome in outcomes {
            #expect(outcome["image"]?.string == url.path)
            #expect(outcome["region"]?.string == "p1")
            #expect(outcome["found"]?.string == path)
        }
        let failed = outcomes.filter { $0["holds"]?.bool == false }
        #expect(failed.compactMap { $0["label"]?.int } == [2, 3])
        #expect(failed.allSatisfy { $0["expected"]?.string == "/dev/dsk/c2t0d0s0" && $0["key"]?.string == "label[2,3].path" })
    }

    @Test("bad usage exits 64, an unreadable image 2; nothing is checked")
    func usageAndIO() throws {
        let url = try Fixture.image("rpool-kvm.img")
        for (arguments, message) in [
            ([url.path, "state=bogus"], "state is one of active, exported"),
            ([url.path, "label[7].path=/x"], "label indices are 0, 1, 2 and 3"),
            ([url.path, "labels=many"], "labels=N takes a count from 0 to 4"),
            ([url.path], "give at least one expectation"),
            (["state=exported"], "give at least one image"),
        ] {
            let run = try ZLabelCLI.run(["expect"] + arguments)
            #expect(run.status == 64, "\(run)")
            #expect(run.stderrText.contains(message), "\(run)")
        }
        let missing = try ZLabelCLI.run(["expect", url.path + ".missing", "state=exported"])
        #expect(missing.status == 2, "\(missing)")
        #expect(missing.stderrText.contains(".missing"), "\(missing)")
    }
}

import Foundation
import Testing
import TestSupport

/// `zlabel inspect` against real ZFS on every fixture: the libnvpair/libzpool dump (`zlabel-json.sh`) field by
/// field, every uberblock slot, and `zdb -l`'s text.
@Suite("inspect agrees with real ZFS")
struct InspectOracleTests {
    static let bareFixtures = Fixture.all.filter(\.isBareVdev)
    static let diskFixtures = Fixture.all.filter { !$0.isBareVdev }
    static let bigEndianFixtures = Fixture.all.filter { $0.byteOrder == .big }

    @Test("inspect --json equals zlabel-json.sh: status, byte order, config, active uberblock",
          .oracle(.zlabelJSON), arguments: Fixture.all)
    func inspectMatchesOracle(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let vdev = LabelAgreement.Vdev(url, fixture: fixture)
        // the whole image: a bare vdev, or a disk whose partition table leads to the pool
        let (ours, dump) = try LabelAgreement.checkAgainstOracle(vdev, arguments: [url.path], context: "\(fixture)")
        #expect(dump.labelsValid == fixture.validLabels, "\(dump.result)")
        let statuses = ours["labels"]?.array?.compactMap { $0["status"]?.string } ?? []
        #expect(statuses.filter { $0 == "valid" }.count == fixture.validLabels, "\(statuses)")
        if let partition = fixture.partition {
            #expect(ours["partition"]?["start"]?.uint64 == partition.offset, "\(ours["partition"].map(\.description) ?? "no partition member")")
            #expect(ours["partition"]?["size"]?.uint64 == partition.size)
        }
    }

    @Test("whole disks: --offset/--size and IMAGE@OFFSET:SIZE select the pool as the oracle's -o/-s do",
          .oracle(.zlabelJSON), arguments: diskFixtures)
    func explicitRange(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let vdev = LabelAgreement.Vdev(url, fixture: fixture)
        try LabelAgreement.checkAgainstOracle(vdev, context: "\(fixture) --offset")
        try LabelAgreement.checkAgainstOracle(
            vdev, arguments: ["\(url.path)@\(vdev.offset):\(vdev.size)"], context: "\(fixture)@")
    }

    @Test("every uberblock slot agrees with zlabel-json.sh -a", .oracle(.zlabelJSON), arguments: Fixture.all)
    func uberblockRings(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let vdev = LabelAgreement.Vdev(url, fixture: fixture)
        let dump = try Oracle.zlabelJSON(vdev.device, allUberblocks: true)
        let (_, doc) = try LabelAgreement.inspectJSON([url.path], uberblocks: true)
        let ours = try LabelAgreement.onlyVdev(doc)
        LabelAgreement.checkUberblockRings(ours, dump, context: "\(fixture)")
        // the rings are not empty: every valid label has checksummed uberblocks
        for label in dump.labels where label.isValid {
            #expect(label.uberblocksChecksumValid > 0, "\(fixture) L\(label.index)")
        }
    }

    @Test("big-endian (SPARC) fixtures read as big-endian with valid checksums", arguments: bigEndianFixtures)
    func bigEndian(_ fixture: Fixture) throws {
        // no oracle needed: what real ZFS says about these images is recorded in the catalogue
        let (_, doc) = try LabelAgreement.inspectJSON([try fixture.url().path], uberblocks: true)
        let vdev = try LabelAgreement.onlyVdev(doc)
        let labels = try #require(vdev["labels"]?.array)
        let valid = labels.filter { $0["status"]?.string == "valid" }
        #expect(valid.count == fixture.validLabels)
        for label in valid {
            #expect(label["byte_order"]?.string == "big", "\(fixture) L\(label["index"]?.int ?? -1)")
            #expect(label["config"]?["name"]?.string == fixture.poolName)
            #expect(label["config"]?["version"]?.uint64 == fixture.poolVersion)
            let rings = label["uberblocks"]?.array ?? []
            #expect(!rings.isEmpty)
            #expect(rings.allSatisfy { $0["byte_order"]?.string == "big" && $0["checksum_valid"]?.bool == true },
                    "\(fixture) L\(label["index"]?.int ?? -1): uberblocks \(rings.count)")
        }
        #expect(vdev["active_uberblock"]?["txg"]?.uint64 != nil)
    }

    @Test("catalogue: status counts and pool identity, without an oracle", arguments: Fixture.all)
    func catalogue(_ fixture: Fixture) throws {
        let (_, doc) = try LabelAgreement.inspectJSON([try fixture.url().path])
        let vdev = try LabelAgreement.onlyVdev(doc)
        let labels = try #require(vdev["labels"]?.array)
        #expect(labels.filter { $0["status"]?.string == "valid" }.count == fixture.validLabels)
        for label in labels where label["status"]?.string == "valid" {
            #expect(label["byte_order"]?.string == fixture.byteOrder.rawValue)
            #expect(label["config"]?["name"]?.string == fixture.poolName)
            #expect(label["config"]?["state"]?.uint64 == fixture.state)
        }
    }

    // MARK: zdb -l

    @Test("zdb -l: same configs, same label groups, same unpack failures", .oracle(.zdb), arguments: bareFixtures)
    func zdbAgrees(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let zdb = try Oracle.zdbLabel(url)
        #expect(zdb.status == (fixture.validLabels == 4 ? 0 : 1), "\(zdb)")
        let theirs = try ZdbLabelText(zdb.stdoutText)
        let (_, doc) = try LabelAgreement.inspectJSON([url.path])
        let labels = try #require(try LabelAgreement.onlyVdev(doc)["labels"]?.array)
        for group in theirs.groups {
            for i in group.labels {
                let diffs = LabelAgreement.differences(labels[i]["config"], group.config)
                #expect(diffs.isEmpty, "\(fixture) L\(i) vs zdb -l:\n\(diffs.joined(separator: "\n"))")
            }
        }
        // our text output groups labels as zdb does
        let text = try ZLabelCLI.run(["inspect", url.path])
        #expect(text.status == 0, "\(text)")
        let ourText = try ZdbLabelText(text.stdoutText, lenient: true)
        #expect(ourText.groups.map(\.labels) == theirs.groups.map(\.labels), "\(text.stdoutText)")
        #expect(ourText.failed == theirs.failed)
    }
}

/// `zdb -l` output, parsed: each printed label's config (4 spaces of indent per level, `key: 'string'`,
/// `key: number`, `key:` for a nested list, `key[i]:` for an element of a list array, a bare `key` for a
/// boolean flag), the labels that share it (`labels = 0 1 2 3`), and the labels that failed to unpack.
fileprivate struct ZdbLabelText {
    var groups: [(labels: [Int], config: ExactJSON)] = []
    var failed: [Int] = []

    private final class Node {
        var members: [(String, Item)] = []
        enum Item { case scalar(ExactJSON), node(Node), array([Node]) }

        var json: ExactJSON {
            .object(members.map { key, item in
                switch item {
                case .scalar(let v): ExactJSON.Member(key: key, value: v)
                case .node(let n): ExactJSON.Member(key: key, value: n.json)
                case .array(let a): ExactJSON.Member(key: key, value: .array(a.map(\.json)))
                }
            })
        }
    }

    struct ParseError: Error, CustomStringConvertible {
        var line: String
        var description: String { "cannot parse zdb -l line: \(line)" }
    }

    /// - Parameter lenient: skip lines outside label blocks (zlabel's text has a header and a footer).
    init(_ text: String, lenient: Bool = false) throws {
        var root: Node?
        var stack: [Node] = []
        func finish(_ labels: [Int]) {
            if let root { groups.append((labels, root.json)) }
            root = nil
            stack = []
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            let line = raw.replacingOccurrences(of: "\t", with: "    ")
            if line.hasPrefix("-----") { continue }
            if line.hasPrefix("LABEL ") {
                root = Node()
                stack = [root!]
                continue
            }
            if line.hasPrefix("failed to unpack label") {
                let digits = line.dropFirst("failed to unpack label".count).drop { $0 == " " }.prefix { $0.isNumber }
                if let n = Int(digits) { failed.append(n) }
                root = nil
                stack = []
                continue
            }
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("labels = ") {
                finish(trimmed.dropFirst("labels = ".count).split(separator: " ").compactMap { Int($0) })
                continue
            }
            guard root != nil else {
                if lenient { continue }
                throw ParseError(line: raw)
            }
            let level = (line.count - trimmed.count) / 4
            guard level >= 1, level <= stack.count else { throw ParseError(line: raw) }
            stack.removeLast(stack.count - level)
            let parent = stack[level - 1]
            let body = String(trimmed)
            if body.hasSuffix(":") {
                let key = String(body.dropLast())
                let child = Node()
                if key.hasSuffix("]"), let open = key.lastIndex(of: "[") {
                    let name = String(key[..<open])
                    if let i = parent.members.firstIndex(where: { $0.0 == name }), case .array(let a) = parent.members[i].1 {
                        parent.members[i].1 = .array(a + [child])
                    } else {
                        parent.members.append((name, .array([child])))
                    }
                } else {
                    parent.members.append((key, .node(child)))
                }
                stack.append(child)
            } else if let colon = body.range(of: ": ") {
                let key = String(body[..<colon.lowerBound])
                let value = String(body[colon.upperBound...])
                if value.hasPrefix("'") && value.hasSuffix("'") && value.count >= 2 {
                    parent.members.append((key, .scalar(.string(String(value.dropFirst().dropLast())))))
                } else {
                    parent.members.append((key, .scalar(.number(value))))
                }
            } else {
                parent.members.append((body, .scalar(.bool(true))))
            }
        }
    }
}

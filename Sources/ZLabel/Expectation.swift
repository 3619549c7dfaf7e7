// Golden-image expectations: "this image has phys_path /xpvd/xdf@51712:a in every label, state exported, no
// hostid, four valid labels, bootfs rpool/ROOT/omnios". An expectation is a value parsed from `KEY=VALUE`;
// checking a list of them against images gives a report with one outcome per image, label and expectation,
// which `zlabel expect` prints and Swift tests hand to `#expect`.
//
// Grammar (README.md and the DocC article "Writing golden-image tests" say the same in prose):
//
//     EXPECTATION := SCOPE* KEY "=" VALUE
//     SCOPE       := "label[" N ("," N)* "]."          only these labels (0...3)
//                  | "leaf[" GUID | PATH "]."          the leaf with this guid or current path
//     KEY         := labels | checksums | state | bootfs | phys_path | path | devid | NVPATH
//     VALUE       := text, a number (decimal or 0x…), or `absent`

public import DiskPartitions
public import NVList
public import ZFSImage
import ZFSLabel
import ZFSMOS

/// One golden-image expectation, such as `phys_path=/xpvd/xdf@51712:a` or `label[0,1].hostid=absent`.
///
/// Config expectations (``Subject-swift.enum/config(_:)``, ``Subject-swift.enum/leaf(_:_:)``,
/// ``Subject-swift.enum/state``, ``Subject-swift.enum/checksums``) are checked in each of the four labels
/// of every vdev, or in the labels a `label[…]` scope names; a label whose config does not unpack fails
/// them. ``Subject-swift.enum/validLabels`` is checked once per vdev and ``Subject-swift.enum/bootfs``
/// once per pool.
///
/// ```swift
/// let physPath = try Expectation(parsing: "phys_path=/xpvd/xdf@51712:a")
/// let sibling = try Expectation(parsing: "leaf[/dev/dsk/c1t1d0s0].devid=absent")
/// ```
public struct Expectation: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// Which leaf of a label's `vdev_tree` a leaf expectation is about.
    public enum Leaf: Sendable, Hashable, CustomStringConvertible {
        /// The leaf the label belongs to: the one whose guid is the label config's `guid`.
        case own
        /// The leaf with this `guid`.
        case guid(UInt64)
        /// The leaf whose current `path` is this.
        case path(String)

        /// The leaf as written in a `leaf[…]` scope (empty for ``own``).
        public var description: String {
            switch self {
            case .own: ""
            case .guid(let g): String(g)
            case .path(let p): p
            }
        }
    }

    /// What an expectation is about.
    public enum Subject: Sendable, Hashable {
        /// `labels=N`: how many of the vdev's four labels are valid (unpack, checksum matches).
        case validLabels
        /// `checksums=valid`: the label's config checksum matches and no uberblock slot holding an
        /// uberblock fails its checksum.
        case checksums
        /// `state=exported`: the pool state in the label config, by name (`active`, `exported`,
        /// `destroyed`, `spare`, `l2cache`, `uninitialized`, `unavail`, `potentially_active`) or number.
        case state
        /// `bootfs=rpool/ROOT/omnios`: the pool's `bootfs` property, read from the MOS.
        case bootfs
        /// A value in the label config, such as `hostid` or `vdev_tree.children[0].devid`.
        case config(NVPath)
        /// A value in a leaf's node of the `vdev_tree`, such as `phys_path` of the label's own leaf.
        case leaf(Leaf, NVPath)
    }

    /// The value an expectation wants.
    public enum Value: Sendable, Hashable, CustomStringConvertible {
        /// The key must not exist (`absent`).
        case absent
        /// The key must exist with this value: equal text, or for numbers an equal number written in
        /// decimal or hexadecimal (`0x…`).
        case text(String)

        /// The value as written in an expectation.
        public var description: String {
            switch self {
            case .absent: "absent"
            case .text(let t): t
            }
        }
    }

    /// The labels checked, or `nil` for all four.
    public var labels: [Int]?
    /// What is checked.
    public var subject: Subject
    /// What it must be.
    public var expected: Value

    /// Creates an expectation from its parts.
    ///
    /// - Throws: ``ExpectationError`` when the parts do not go together (a label scope on a per-vdev or
    ///   per-pool subject, an unknown state name, `checksums` other than `valid`, a non-numeric label count).
    public init(_ subject: Subject, _ expected: Value, labels: [Int]? = nil) throws(ExpectationError) {
        self.subject = subject
        self.expected = expected
        self.labels = labels
        try validate()
    }

    /// Parses `[label[N,…].][leaf[GUID|PATH].]KEY=VALUE`.
    ///
    /// - Throws: ``ExpectationError`` naming the text and what is wrong with it.
    public init(parsing text: String) throws(ExpectationError) {
        func fail(_ reason: String) -> ExpectationError { ExpectationError(text: text, reason: reason) }
        // An unbalanced bracket is reported by the scope or path parser, not as a missing '='.
        guard let equals = Self.splitIndex(text) ?? text.firstIndex(of: "=") else {
            throw fail("no '=': write KEY=VALUE")
        }
        var key = Substring(text[..<equals])
        let value = String(text[text.index(after: equals)...])
        guard !value.isEmpty else { throw fail("empty value: give a value, or 'absent'") }

        var labels: [Int]?
        var leaf: Leaf?
        while true {
            if key.hasPrefix("label[") {
                guard labels == nil else { throw fail("more than one label[…] scope") }
                guard let close = key.firstIndex(of: "]") else { throw fail("unclosed 'label['") }
                let list = key[key.index(key.startIndex, offsetBy: 6)..<close]
                var indices: [Int] = []
                for part in list.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let n = Int(part.trimmingSpaces), (0..<LabelLayout.labelCount).contains(n) else {
                        throw fail("label[\(list)]: label indices are 0, 1, 2 and 3")
                    }
                    if !indices.contains(n) { indices.append(n) }
                }
                labels = indices.sorted()
                key = try Self.afterScope(key, close, fail)
            } else if key.hasPrefix("leaf[") {
                guard leaf == nil else { throw fail("more than one leaf[…] scope") }
                guard let close = key.firstIndex(of: "]") else { throw fail("unclosed 'leaf['") }
                let inside = String(key[key.index(key.startIndex, offsetBy: 5)..<close])
                guard !inside.isEmpty else { throw fail("leaf[]: give a guid or a path") }
                leaf = Self.parseNumber(inside).map(Leaf.guid) ?? .path(inside)
                key = try Self.afterScope(key, close, fail)
            } else {
                break
            }
        }
        guard !key.isEmpty else { throw fail("no key before '='") }

        let expected: Value = value == "absent" ? .absent : .text(value)
        let subject: Subject
        switch (String(key), leaf) {
        case ("labels", nil): subject = .validLabels
        case ("checksums", nil): subject = .checksums
        case ("state", nil): subject = .state
        case ("bootfs", nil): subject = .bootfs
        case ("labels", _?), ("checksums", _?), ("state", _?), ("bootfs", _?):
            throw fail("'\(key)' is not a leaf's value; drop the leaf[…] scope")
        default:
            let path: NVPath
            do { path = try NVPath(parsing: String(key)) } catch { throw fail(error.reason) }
            if let leaf {
                subject = .leaf(leaf, path)
            } else if Self.leafKeys.contains(String(key)) {
                subject = .leaf(.own, path)
            } else {
                subject = .config(path)
            }
        }
        self.subject = subject
        self.expected = expected
        self.labels = labels
        do { try validate() } catch { throw fail(error.reason) }
    }

    /// Creates an expectation from a literal; the literal must parse (see ``init(parsing:)``).
    public init(stringLiteral value: String) {
        do { try self.init(parsing: value) } catch { preconditionFailure("invalid expectation literal: \(error)") }
    }

    /// Keys that, without a `leaf[…]` scope, mean the label's own leaf rather than the top of the config.
    public static let leafKeys: Set<String> = ["phys_path", "path", "devid"]

    /// The expectation as `zlabel expect` takes it; parsing it gives this expectation back.
    public var description: String { "\(scopeText)\(keyText)=\(expected)" }

    /// The key with its scopes, without `=VALUE`: `label[0,1].phys_path`.
    public var key: String { scopeText + keyText }

    private var scopeText: String {
        var out = ""
        if let labels { out += "label[\(labels.map(String.init).joined(separator: ","))]." }
        if case .leaf(let leaf, _) = subject, leaf != .own { out += "leaf[\(leaf)]." }
        return out
    }

    private var keyText: String {
        switch subject {
        case .validLabels: "labels"
        case .checksums: "checksums"
        case .state: "state"
        case .bootfs: "bootfs"
        case .config(let path): path.description
        case .leaf(_, let path): path.description
        }
    }

    private func validate() throws(ExpectationError) {
        func fail(_ reason: String) -> ExpectationError { ExpectationError(text: description, reason: reason) }
        if let labels {
            guard !labels.isEmpty, labels.allSatisfy({ (0..<LabelLayout.labelCount).contains($0) }) else {
                throw fail("label indices are 0, 1, 2 and 3")
            }
        }
        switch subject {
        case .validLabels:
            if labels != nil { throw fail("'labels' counts the vdev's labels; it takes no label[…] scope") }
            guard case .text(let t) = expected, let n = Int(t), (0...LabelLayout.labelCount).contains(n) else {
                throw fail("labels=N takes a count from 0 to 4")
            }
        case .checksums:
            guard expected == .text("valid") else { throw fail("the only value of 'checksums' is 'valid'") }
        case .state:
            guard case .text(let t) = expected, Self.stateNumber(t) != nil else {
                throw fail("state is one of \(Self.stateNames.joined(separator: ", ")), or a number")
            }
        case .bootfs:
            if labels != nil { throw fail("'bootfs' is read from the pool's MOS; it takes no label[…] scope") }
        case .config, .leaf:
            break
        }
    }

    // MARK: parsing helpers

    /// The first `=` outside brackets (quoted names in a path may hold one).
    private static func splitIndex(_ text: String) -> String.Index? {
        var depth = 0
        for i in text.indices {
            switch text[i] {
            case "[": depth += 1
            case "]": depth = max(0, depth - 1)
            case "=" where depth == 0: return i
            default: break
            }
        }
        return nil
    }

    private static func afterScope(_ key: Substring, _ close: Substring.Index, _ fail: (String) -> ExpectationError)
        throws(ExpectationError) -> Substring
    {
        let rest = key[key.index(after: close)...]
        guard rest.hasPrefix(".") else { throw fail("a scope is followed by '.' and the key") }
        return rest.dropFirst()
    }

    /// A number written in decimal, or in hexadecimal with `0x`.
    static func parseNumber(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            let digits = text.dropFirst(2)
            return digits.isEmpty ? nil : UInt64(digits, radix: 16)
        }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(text)
    }

    /// `pool_state_t`'s names, in the order of their numbers.
    public static let stateNames = [
        "active", "exported", "destroyed", "spare", "l2cache", "uninitialized", "unavail", "potentially_active",
    ]

    static func stateNumber(_ text: String) -> UInt64? {
        if let i = stateNames.firstIndex(of: text.lowercased()) { return UInt64(i) }
        return parseNumber(text)
    }

    static func stateName(_ n: UInt64) -> String { n < UInt64(stateNames.count) ? stateNames[Int(n)] : String(n) }
}

/// An expectation that does not parse, or whose parts do not go together.
public struct ExpectationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The expectation as given.
    public var text: String
    /// What is wrong with it.
    public var reason: String

    /// Creates an error about `text`.
    public init(text: String, reason: String) {
        self.text = text
        self.reason = reason
    }

    /// `expectation 'TEXT': REASON`.
    public var description: String { "expectation '\(text)': \(reason)" }
}

/// The verdict on one expectation in one place: an image's label, a vdev, or a pool.
public struct ExpectationOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The image path, as given (for a pool-wide expectation, the paths of the pool's images joined by `+`).
    public var image: String
    /// The partition or slice the vdev was found in (`p1`, `s0`), or `nil` for a bare vdev.
    public var region: String?
    /// The label index, or `nil` for a per-vdev or per-pool expectation.
    public var label: Int?
    /// The expectation.
    public var expectation: Expectation
    /// What was found, in the expectation's own terms (`absent` when the key is missing), or a sentence in
    /// parentheses when there is nothing to compare (a label without a config, a missing leaf).
    public var found: String
    /// Whether the expectation holds here.
    public var holds: Bool
    /// When the key was not found but a name near it was (`did you mean phys_path?`): a misspelled key is
    /// otherwise just "absent".
    public var hint: String?

    /// Where the outcome was found: `IMAGE[ (REGION)][: label N]`.
    public var place: String {
        var out = image
        if let region { out += " (\(region))" }
        if let label { out += ": label \(label)" }
        return out
    }

    /// One line: `PLACE: expected KEY=VALUE, found KEY=VALUE` (or `found (why not)`), or `…: KEY=VALUE holds`.
    public var description: String {
        if holds { return "\(place): \(expectation) holds" }
        let what = found.hasPrefix("(") ? found : "\(expectation.key)=\(found)"
        return "\(place): expected \(expectation), found \(what)" + (hint.map { " (\($0))" } ?? "")
    }

    /// The outcome as a JSON object.
    public var json: JSONValue {
        .object([
            ("image", .string(image)), ("region", region.map(JSONValue.string) ?? .null),
            ("label", label.map { .uint(UInt64($0)) } ?? .null), ("expectation", .string(expectation.description)),
            ("key", .string(expectation.key)), ("expected", .string(expectation.expected.description)),
            ("found", .string(found)), ("holds", .bool(holds)),
        ] + (hint.map { [("hint", JSONValue.string($0))] } ?? []))
    }
}

/// Expectations checked against images: one ``ExpectationOutcome`` per place each was checked.
///
/// It prints its failures one per line, so a Swift Testing check shows exactly what is wrong:
///
/// ```swift
/// let report = try ExpectationReport.check(["phys_path=/xpvd/xdf@51712:a", "state=exported",
///                                           "hostid=absent", "labels=4"], images: ["disk.img"])
/// #expect(report.holds, "\(report)")
/// ```
public struct ExpectationReport: Sendable, CustomStringConvertible {
    /// Every outcome, failed or not, in image, vdev, expectation and label order; pool-wide ones last.
    public var outcomes: [ExpectationOutcome]

    /// The outcomes that do not hold.
    public var failures: [ExpectationOutcome] { outcomes.filter { !$0.holds } }

    /// Whether every expectation holds everywhere it was checked.
    public var holds: Bool { outcomes.allSatisfy(\.holds) }

    /// One line per failure, or `all N checks hold` when there is none.
    public var description: String {
        let failed = failures
        if failed.isEmpty { return "all \(outcomes.count) checks hold" }
        return failed.map(\.description).joined(separator: "\n")
    }

    /// The report as the `zlabel expect --json` object: `ok`, `checked`, `failed` and every outcome.
    public var json: JSONValue {
        .object([
            ("ok", .bool(holds)), ("checked", .uint(UInt64(outcomes.count))),
            ("failed", .uint(UInt64(failures.count))), ("outcomes", .array(outcomes.map(\.json))),
        ])
    }

    /// Checks expectations against images: every vdev found in each image (or the one its selector
    /// picks), every label in scope; `bootfs` once for each pool, reading its MOS from all of its images.
    ///
    /// - Parameters:
    ///   - expectations: what must hold.
    ///   - images: each image with the region selector that picks its vdev (`nil`: find them).
    /// - Throws: `ImageError` or `PartitionTableError` when an image cannot be read. An image without
    ///   any vdev, a label without a config and an unreadable MOS are failed outcomes, not errors.
    public init(checking expectations: [Expectation], in images: [(storage: any ImageStorage, selector: RegionSelector?)])
        throws
    {
        var outcomes: [ExpectationOutcome] = []
        var pools: [(key: String, images: [(storage: any ImageStorage, selector: RegionSelector?)], name: String)] = []
        for (storage, selector) in images {
            let report = try ImageReport(image: storage, selector: selector)
            if report.vdevs.isEmpty {
                for expectation in expectations {
                    outcomes.append(ExpectationOutcome(image: storage.path, region: nil, label: nil,
                                                       expectation: expectation, found: "(no ZFS vdev in the image)",
                                                       holds: false))
                }
                continue
            }
            for vdev in report.vdevs {
                for expectation in expectations {
                    outcomes += Self.check(expectation, image: storage.path, vdev: vdev)
                }
                let config = vdev.labels.config ?? vdev.labels.labels.lazy.compactMap(\.config).first
                let key = config?.uint64("pool_guid").map(String.init) ?? "no pool in \(storage.path)"
                if let i = pools.firstIndex(where: { $0.key == key }) {
                    if !pools[i].images.contains(where: { $0.storage === storage }) {
                        pools[i].images.append((storage, selector))
                    }
                } else {
                    pools.append((key, [(storage, selector)], config?.string("name")?.description ?? "?"))
                }
            }
        }
        let poolWide = expectations.filter { $0.subject == .bootfs }
        if !poolWide.isEmpty {
            for pool in pools {
                let names = pool.images.map(\.storage.path).joined(separator: "+")
                var found: String
                var bootfs: String?
                do {
                    let inspection = try PoolInspection(images: pool.images)
                    bootfs = inspection.mos.bootfs?.name
                    found = bootfs ?? "absent"
                    if let problem = inspection.mos.bootfsProblem { found = "(\(problem))" }
                } catch {
                    found = "(the MOS of pool \(pool.name) cannot be read: \(error))"
                }
                for expectation in poolWide {
                    let holds = !found.hasPrefix("(")
                        && (bootfs == nil ? expectation.expected == .absent
                            : Self.matches(expectation.expected, found: found, numeric: nil))
                    outcomes.append(ExpectationOutcome(image: names, region: nil, label: nil, expectation: expectation,
                                                       found: found, holds: holds))
                }
            }
        }
        self.outcomes = outcomes
    }

    /// Opens each image read-only (`ImageFile.openForReading`: raw, device or VM disk container) and checks the expectations.
    ///
    /// - Parameters:
    ///   - expectations: what must hold.
    ///   - paths: each image path with its region selector.
    public init(checking expectations: [Expectation], paths: [(path: String, selector: RegionSelector?)]) throws {
        var images: [(storage: any ImageStorage, selector: RegionSelector?)] = []
        for (path, selector) in paths { images.append((try ImageFile.openForReading(path: path), selector)) }
        try self.init(checking: expectations, in: images)
    }

    /// Parses the expectations and checks them against image paths; each path may end in `@OFFSET:SIZE` to
    /// pick a byte range. The helper for golden-image tests:
    ///
    /// ```swift
    /// let report = try ExpectationReport.check(["state=exported", "labels=4"], images: [path])
    /// #expect(report.holds, "\(report)")
    /// ```
    ///
    /// - Parameters:
    ///   - expectations: expectations as `zlabel expect` takes them, such as `state=exported`.
    ///   - images: image paths, each optionally followed by `@OFFSET:SIZE`.
    /// - Throws: ``ExpectationError`` for an expectation that does not parse; `ImageError` or
    ///   `PartitionTableError` when an image cannot be read.
    public static func check(_ expectations: [String], images: [String]) throws -> ExpectationReport {
        let parsed = try expectations.map { text throws(ExpectationError) in try Expectation(parsing: text) }
        let paths = try images.map { try RegionSelector.splitImageArgument($0) }
        return try ExpectationReport(checking: parsed, paths: paths.map { ($0.path, $0.range) })
    }

    // MARK: checking one vdev

    static func check(_ expectation: Expectation, image: String, vdev: ImageReport.Vdev) -> [ExpectationOutcome] {
        let region = vdev.region.name
        func outcome(_ label: Int?, _ found: String, _ holds: Bool) -> ExpectationOutcome {
            ExpectationOutcome(image: image, region: region, label: label, expectation: expectation, found: found,
                               holds: holds)
        }
        switch expectation.subject {
        case .bootfs:
            return []
        case .validLabels:
            let valid = vdev.labels.labels.filter { $0.status == .valid }
            let others = vdev.labels.labels.filter { $0.status != .valid }
                .map { "label \($0.index) \($0.status.rawValue)" }
            let found = String(valid.count) + (others.isEmpty ? "" : " (\(others.joined(separator: ", ")))")
            return [outcome(nil, found, expectation.expected == .text(String(valid.count)))]
        default:
            break
        }
        var out: [ExpectationOutcome] = []
        for label in vdev.labels.labels where expectation.labels?.contains(label.index) ?? true {
            if expectation.subject == .checksums {
                let bad = label.uberblocks.filter { $0.uberblock != nil && !$0.checksum.isValid }.map(\.index)
                if label.status != .valid {
                    out.append(outcome(label.index, label.status.rawValue, false))
                } else if !bad.isEmpty {
                    out.append(outcome(label.index, "(uberblock slots \(bad.map(String.init).joined(separator: ", ")) fail their checksum)", false))
                } else {
                    out.append(outcome(label.index, "valid", true))
                }
                continue
            }
            guard let config = label.config else {
                out.append(outcome(label.index, "(no config: the label is \(label.status.rawValue))", false))
                continue
            }
            switch Self.lookup(expectation.subject, in: config) {
            case .failure(let why):
                out.append(outcome(label.index, "(\(why))", false))
            case .success(let value):
                let (found, numeric) = Self.render(value, subject: expectation.subject)
                let holds: Bool
                if expectation.subject == .state, case .text(let t) = expectation.expected {
                    holds = numeric != nil && Expectation.stateNumber(t) == numeric
                } else {
                    holds = value == nil ? expectation.expected == .absent
                        : Self.matches(expectation.expected, found: found, numeric: numeric, value: value)
                }
                var result = outcome(label.index, found, holds)
                if value == nil && !holds { result.hint = Self.unknownKeyHint(expectation.subject, in: config) }
                out.append(result)
            }
        }
        return out
    }

    /// For a key that is absent: when the list it was looked for in has no pair of that name but one near it
    /// (edit distance 2 or less; for a top-level key, also the leaf keys), that name. `nil` otherwise.
    static func unknownKeyHint(_ subject: Expectation.Subject, in config: NVList) -> String? {
        let path: NVPath, parent: Expectation.Subject
        switch subject {
        case .config(let p):
            path = p
            parent = .config(NVPath(components: p.components.dropLast()))
        case .leaf(let leaf, let p):
            path = p
            parent = .leaf(leaf, NVPath(components: p.components.dropLast()))
        default:
            return nil
        }
        guard case .key(let name)? = path.components.last else { return nil }
        let list: NVList
        if path.components.count == 1, case .config = subject {
            list = config
        } else {
            guard case .success(.nvlist(let l)?) = lookup(parent, in: config) else { return nil }
            list = l
        }
        let names = list.pairs.map(\.name)
        guard !names.contains(name) else { return nil }
        // A top-level key may be a misspelled leaf key (phys_pth for phys_path), which means the label's own leaf.
        let topLevel = path.components.count == 1 && { if case .config = subject { true } else { false } }()
        let candidates = names + (topLevel ? Expectation.leafKeys.sorted() : [])
        let near = candidates.filter { editDistance($0, name) <= 2 }
        // Only a near name makes it likely a misspelling: a key ZFS simply did not write (hostid on an old pool)
        // is just absent.
        guard !near.isEmpty else { return nil }
        let whereText = if case .leaf = subject { "the leaf" } else { path.components.count == 1 ? "the label's config" : "that list" }
        return "\(whereText) has no key \(name); did you mean \(near.joined(separator: " or "))?"
    }

    /// The value a config or leaf subject points at (`nil`: absent), or why there is nothing to look at.
    static func lookup(_ subject: Expectation.Subject, in config: NVList) -> Result<NVValue?, LookupFailure> {
        switch subject {
        case .state:
            return .success(config["state"])
        case .config(let path):
            return .success(config.value(at: path))
        case .leaf(let leaf, let path):
            let leaves = config.vdevLeaves
            let found: VdevLeaf?
            switch leaf {
            case .own:
                let guid = config.uint64("guid")
                found = leaves.first { $0.guid == guid }
                guard found != nil else {
                    return .failure(LookupFailure("the config's vdev_tree has no leaf with the label's own guid \(guid.map(String.init) ?? "(none)")"))
                }
            case .guid(let g):
                found = leaves.first { $0.guid == g }
            case .path(let p):
                let matches = leaves.filter { $0.path?.matches(p) == true }
                guard matches.count <= 1 else {
                    return .failure(LookupFailure("\(matches.count) leaves have path \(p); name one by guid"))
                }
                found = matches.first
            }
            guard let found, case .nvlist(let node)? = config.value(at: found.configPath) else {
                let list = leaves.map { "\($0.guid) \($0.path ?? "(no path)")" }.joined(separator: ", ")
                return .failure(LookupFailure("no leaf \(leaf) in the vdev_tree; its leaves: \(list)"))
            }
            return .success(node.value(at: path))
        default:
            return .success(nil)
        }
    }

    /// Why a config lookup found nothing to compare.
    struct LookupFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// The value as text in the expectation's terms, and its number when it is an unsigned or non-negative
    /// integer.
    static func render(_ value: NVValue?, subject: Expectation.Subject) -> (String, UInt64?) {
        guard let value else { return ("absent", nil) }
        let number: UInt64?
        switch value {
        case .uint64(let v): number = v
        case .uint32(let v): number = UInt64(v)
        case .uint16(let v): number = UInt64(v)
        case .uint8(let v), .byte(let v): number = UInt64(v)
        case .int64(let v), .hrtime(let v): number = v >= 0 ? UInt64(v) : nil
        case .int32(let v): number = v >= 0 ? UInt64(v) : nil
        case .int16(let v): number = v >= 0 ? UInt64(v) : nil
        case .int8(let v): number = v >= 0 ? UInt64(v) : nil
        default: number = nil
        }
        if subject == .state, let number { return (Expectation.stateName(number), number) }
        // A string shows as its text, or, when its bytes are not UTF-8, in the escaped form (`h\xf6st`).
        if case .string(let s) = value { return (s.description, nil) }
        switch value.json {
        case .string(let s): return (s, number)
        case let other: return (other.rendered(), number)
        }
    }

    static func matches(_ expected: Expectation.Value, found: String, numeric: UInt64?, value: NVValue? = nil) -> Bool {
        guard case .text(let text) = expected else { return false }
        // A string matches its exact text or its escaped form (`\xNN` for a byte, `\\` for a backslash).
        if case .string(let s)? = value { return s.matches(text) }
        if let numeric, let wanted = Expectation.parseNumber(text) { return numeric == wanted }
        return text == found
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

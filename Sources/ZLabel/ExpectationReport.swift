// Checking golden-image expectations against images: one outcome per image, label and expectation, and the
// report `zlabel expect` prints (its text and its JSON document, docs/json-output.md). Parsing an expectation
// is in Expectation.swift.

public import DiskPartitions
public import NVList
public import ZFSImage
import ZFSLabel
import ZFSMOS

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

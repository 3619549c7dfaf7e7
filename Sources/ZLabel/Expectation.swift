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

import DiskPartitions
public import NVList
import ZFSImage
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

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

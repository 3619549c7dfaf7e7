public import NVList
import ZFSChecksum

/// Which leaf vdev an edit is about.
public enum LeafSelector: Sendable, Hashable, CustomStringConvertible {
    /// The only leaf of the pool's top-level vdev; refused when there are several.
    case automatic
    /// The leaf with this `guid`.
    case guid(UInt64)
    /// The leaf whose current `path` is this.
    case path(String)

    public var description: String {
        switch self {
        case .automatic: "the only leaf"
        case .guid(let g): "the leaf with guid \(g)"
        case .path(let p): "the leaf with path '\(p)'"
        }
    }
}

/// An offline change to the device strings of one leaf vdev, and to the host fields, as a value.
///
/// ```swift
/// var edit = LeafEdit()
/// edit.physPath = .set("/xpvd/xdf@51712:a")
/// edit.devid = .remove
/// let plan = try LabelEditPlan(members: [("rpool.img", labels)], edit: edit)
/// print(plan.summary)          // the per-label diff
/// ```
public struct LeafEdit: Sendable, Hashable {
    /// What to do with one string field.
    public enum Change: Sendable, Hashable {
        /// Set the field to these bytes (a string literal or `NVString(text)` for text).
        case set(NVString)
        case remove
    }

    /// The leaf to change.
    public var leaf: LeafSelector = .automatic
    /// New `path` (`ZPOOL_CONFIG_PATH`); ZFS needs one, so it can be set but not removed.
    public var path: Change?
    /// New `devid` (`ZPOOL_CONFIG_DEVID`), or `.remove`.
    public var devid: Change?
    /// New `phys_path` (`ZPOOL_CONFIG_PHYS_PATH`), or `.remove`.
    public var physPath: Change?
    /// Drop the top-level `hostid`, so no host claims the pool.
    public var removeHostid = false
    /// Drop the top-level `hostname`.
    public var removeHostname = false

    /// Creates an edit of `leaf` that changes nothing yet.
    public init(leaf: LeafSelector = .automatic) { self.leaf = leaf }

    /// Whether the edit asks for anything at all.
    public var isEmpty: Bool { path == nil && devid == nil && physPath == nil && !removeHostid && !removeHostname }

    /// The longest string accepted for a device string (`MAXPATHLEN` less its NUL).
    public static let maximumStringLength = 1023
}

/// Why an edit was refused before anything was written.
public struct LabelEditError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why an edit is refused.
    public enum Code: Sendable, Hashable {
        /// The edit asks for nothing.
        case emptyEdit
        /// A value is empty, too long, or has a NUL.
        case invalidValue
        /// A member has no valid label to start from.
        case noValidLabel
        /// Labels (of one member, or across members) disagree on pool or vdev guid.
        case guidDisagreement
        /// No leaf matches the selector, or several do.
        case leafNotFound
        case ambiguousLeaf
        /// The pool is imported somewhere (state ACTIVE) and `force` was not given.
        case poolActive
        /// The edited config does not fit in a label's 114 648 bytes.
        case doesNotFit
    }

    /// Why the edit is refused.
    public var code: Code
    /// The member (image) concerned, when there is one.
    public var member: String?
    /// A sentence saying what is wrong.
    public var message: String

    /// Creates an error, about one member image when `member` is given.
    public init(_ code: Code, member: String? = nil, message: String) {
        self.code = code
        self.member = member
        self.message = message
    }

    public var description: String { member.map { "\($0): \(message)" } ?? message }
}

/// A planned edit of the labels of one or more leaf vdevs (the members of one top-level vdev): for every
/// label, what it holds now and the bytes it will hold. Building a plan reads nothing and writes nothing;
/// the `ZFSImage` module applies it.
public struct LabelEditPlan: Sendable {
    /// One leaf vdev (one image or partition) and its four labels.
    public struct Member: Sendable {
        /// The name given with the labels (an image path).
        public var name: String
        /// This member's own leaf guid (the label's `guid`).
        public var guid: UInt64
        /// The config the edit starts from (``VdevLabels/configLabel``) and the edited config.
        public var before: NVList, after: NVList
        /// One entry per label, in index order.
        public var labels: [LabelChange]
        /// The changed fields, as paths into the config with old and new values.
        public var diff: [FieldChange]

        /// Whether any label of this member is written.
        public var writesAnything: Bool { labels.contains { $0.action != .keep } }
    }

    /// What happens to one label.
    public struct LabelChange: Sendable {
        /// What is written to a label.
        public enum Action: Sendable, Hashable {
            /// Nothing: it already holds the edited config.
            case keep
            /// A valid label, rewritten with the edited config.
            case rewrite
            /// A damaged or absent label, written afresh from the edited config as ZFS would on its next
            /// sync; the reason says what was wrong.
            case writeFresh(reason: String)
        }

        /// Label index, 0...3.
        public var index: Int
        /// Byte offset of the label's config area from the start of the leaf vdev.
        public var configOffset: UInt64
        /// The label's status before the edit.
        public var statusBefore: Label.Status
        /// What is written to it.
        public var action: Action
        /// The 112 KiB config area to write (packed nvlist, zero fill, embedded checksum); `nil` for `keep`.
        public var newConfigArea: [UInt8]?
    }

    /// One changed value.
    public struct FieldChange: Sendable, Hashable, CustomStringConvertible {
        /// The nvlist path of the changed value, such as `vdev_tree.phys_path`.
        public var path: String
        /// The value before and after, with their exact bytes; `nil` when absent. The text form writes a
        /// string that is not UTF-8 in `NVString.escaped` form, JSON as `NVString.json`.
        public var old: NVString?, new: NVString?
        public var description: String { "\(path): \(old.map { "'\($0)'" } ?? "(absent)") -> \(new.map { "'\($0)'" } ?? "(absent)")" }
    }

    /// The edit this plan carries out.
    public var edit: LeafEdit
    /// The guid of the leaf being changed.
    public var leafGuid: UInt64
    /// The members, in the order given.
    public var members: [Member]
    /// Things the user should know, such as siblings whose labels were not given and keep the old value.
    public var notes: [String]
    /// The four raw labels of each member as they were read for this plan, when the planner kept them
    /// (`LabelWriter.plan` does): applying then checks that the images still hold exactly these bytes instead
    /// of decoding and planning again.
    public var sourceLabels: [[[UInt8]]]?
    /// The SHA-256 (hex) of each label of ``sourceLabels``, as the backup records them, when the planner has
    /// them being computed (`LabelWriter.plan` hashes on a second thread while the plan is made): asking waits.
    /// Given other labels than those it hashed, it answers nil.
    package var sourceLabelDigests: (@Sendable ([[[UInt8]]]) -> [[String]]?)?

    /// Whether anything is to be written.
    public var writesAnything: Bool { members.contains { $0.writesAnything } }

    /// Plans an edit.
    ///
    /// - Parameters:
    ///   - members: the labels of each leaf vdev to edit, with a name for messages.
    ///   - edit: what to change.
    ///   - force: edit even when the pool's state is ACTIVE (imported somewhere).
    /// - Throws: ``LabelEditError``; nothing has been written.
    public init(members: [(name: String, labels: VdevLabels)], edit: LeafEdit, force: Bool = false)
        throws(LabelEditError)
    {
        guard !edit.isEmpty else { throw LabelEditError(.emptyEdit, message: "nothing to change: no field to set or remove") }
        try Self.validate(edit)
        precondition(!members.isEmpty, "at least one member")
        self.edit = edit

        // Each member starts from the label ZFS would read; its valid labels must agree on the guids.
        var bases: [(name: String, labels: VdevLabels, label: Label, config: NVList)] = []
        for (name, labels) in members {
            guard let label = labels.configLabel, let config = label.config else {
                let statuses = labels.labels.map { "L\($0.index) \($0.status.rawValue)" }.joined(separator: ", ")
                throw LabelEditError(.noValidLabel, member: name, message: "no valid label to start from (\(statuses))")
            }
            let valid = labels.labels.filter { $0.status == .valid }.compactMap(\.config)
            for key in ["pool_guid", "guid", "top_guid"] where Set(valid.map { $0.uint64(key) }).count > 1 {
                throw LabelEditError(.guidDisagreement, member: name, message: "the valid labels disagree on \(key); refusing to guess which is right")
            }
            bases.append((name, labels, label, config))
        }
        let pools = Set(bases.map { $0.config.uint64("pool_guid") })
        if pools.count > 1 {
            throw LabelEditError(.guidDisagreement, message: "the images belong to different pools (pool_guid \(pools.compactMap { $0 }.map(String.init).sorted().joined(separator: ", ")))")
        }
        for base in bases {
            if base.config.uint64("state") == 0 && !force {
                throw LabelEditError(.poolActive, member: base.name, message: "pool '\(base.config.string("name") ?? "?")' is ACTIVE (state 0): it is imported on some host, which would overwrite these labels; export it first, or force the edit")
            }
        }

        // Resolve the leaf against the union of the members' trees.
        var leaves = LeavesByGuid()
        var order: [UInt64] = []
        for base in bases {
            for leaf in base.config.vdevLeaves where leaves[leaf.guid] == nil {
                leaves.all.append(leaf)
                order.append(leaf.guid)
            }
        }
        let target: VdevLeaf
        switch edit.leaf {
        case .automatic:
            guard order.count == 1, let only = leaves[order[0]] else {
                let list = order.compactMap { leaves[$0] }.map { "\($0.guid) (\($0.path ?? "no path"))" }.joined(separator: ", ")
                throw LabelEditError(.ambiguousLeaf, message: "the top-level vdev has \(order.count) leaves: \(list); choose one by its guid or path")
            }
            target = only
        case .guid(let g):
            guard let leaf = leaves[g] else {
                throw LabelEditError(.leafNotFound, message: "no leaf with guid \(g) in the labels (leaves: \(order.map(String.init).joined(separator: ", ")))")
            }
            target = leaf
        case .path(let p):
            let matches = order.compactMap { leaves[$0] }.filter { $0.path?.matches(p) == true }
            guard let leaf = matches.first else {
                throw LabelEditError(.leafNotFound, message: "no leaf with path '\(p)' (paths: \(order.compactMap { leaves[$0]?.path?.description }.joined(separator: ", ")))")
            }
            guard matches.count == 1 else {
                throw LabelEditError(.ambiguousLeaf, message: "\(matches.count) leaves have path '\(p)'; choose one by its guid")
            }
            target = leaf
        }
        leafGuid = target.guid

        var planned: [Member] = []
        for base in bases {
            var after = base.config
            var diff: [FieldChange] = []
            if let leaf = base.config.vdevLeaves.first(where: { $0.guid == target.guid }) {
                try Self.apply(edit, to: &after, at: leaf.configPath, diff: &diff)
            }
            if edit.removeHostid, let old = after.uint64("hostid") {
                after["hostid"] = nil
                diff.append(FieldChange(path: "hostid", old: NVString(String(old)), new: nil))
            }
            if edit.removeHostname, let old = after.string("hostname") {
                after["hostname"] = nil
                diff.append(FieldChange(path: "hostname", old: old, new: nil))
            }
            guard after.encodedSize <= LabelLayout.configCapacity else {
                throw LabelEditError(.doesNotFit, member: base.name, message: "the edited config packs to \(after.encodedSize) bytes; a label holds \(LabelLayout.configCapacity)")
            }
            let hostOrder = base.label.streamHeader?.hostByteOrder ?? .little
            let order = base.label.byteOrder ?? .little
            let packed = after.encodeXDR(hostByteOrder: hostOrder)
            var changes: [LabelChange] = []
            for label in base.labels.labels {
                let configOffset = label.offset + UInt64(LabelLayout.configOffset)
                let action: LabelChange.Action
                if label.status == .valid {
                    action = label.config == after ? .keep : .rewrite
                } else {
                    action = .writeFresh(reason: "\(label.status.rawValue)" + (label.problem.map { ": \($0)" } ?? ""))
                }
                changes.append(LabelChange(index: label.index, configOffset: configOffset, statusBefore: label.status,
                                           action: action, newConfigArea: nil))
            }
            // Every area written holds the same packed config and zero fill and differs only in its checksum (which
            // covers its own offset): sealed together, the 112 KiB hashed once.
            let written = changes.indices.filter { changes[$0].action != .keep }
            if !written.isEmpty {
                var bytes = packed
                bytes.append(contentsOf: repeatElement(0, count: LabelLayout.configSize - packed.count))
                let areas = EmbeddedChecksum.sealed(bytes, offsets: written.map { changes[$0].configOffset }, order: order)
                for (i, area) in zip(written, areas) { changes[i].newConfigArea = area }
            }
            planned.append(Member(name: base.name, guid: base.config.uint64("guid") ?? 0, before: base.config,
                                  after: after, labels: changes, diff: diff))
        }
        self.members = planned

        // Siblings in the same top-level vdev whose images were not given keep the old strings.
        var notes: [String] = []
        let given = Set(planned.map(\.guid))
        let siblings = bases[0].config.vdevLeaves.filter { !given.contains($0.guid) }
        if !siblings.isEmpty && planned.contains(where: { !$0.diff.isEmpty }) {
            let names = siblings.map { "\($0.guid) (\($0.path ?? "no path"))" }.joined(separator: ", ")
            notes.append("the labels of \(siblings.count == 1 ? "member" : "members") \(names) were not given: they still carry the old value for this leaf; pass every member's image to edit them consistently")
        }
        self.notes = notes
    }

    private static func validate(_ edit: LeafEdit) throws(LabelEditError) {
        for (name, change) in [("path", edit.path), ("devid", edit.devid), ("phys_path", edit.physPath)] {
            guard case .set(let value)? = change else { continue }
            if value.byteCount == 0 {
                throw LabelEditError(.invalidValue, message: "\(name) cannot be empty" + (name == "devid" ? "; remove it instead" : ""))
            }
            // An NVString holds no NUL byte, so only the length is left to check.
            if value.byteCount > LeafEdit.maximumStringLength {
                throw LabelEditError(.invalidValue, message: "\(name) is \(value.byteCount) bytes; at most \(LeafEdit.maximumStringLength) fit")
            }
        }
        if edit.path == .remove { throw LabelEditError(.invalidValue, message: "path cannot be removed: ZFS needs one") }
    }

    /// Applies the string changes to the leaf node at `nodePath`, keeping existing pairs where they are and
    /// putting new ones where `vdev_config_generate` writes them (path, devid, phys_path follow guid in that
    /// order).
    private static func apply(_ edit: LeafEdit, to config: inout NVList, at nodePath: NVPath, diff: inout [FieldChange])
        throws(LabelEditError)
    {
        guard case .nvlist(var node)? = config.value(at: nodePath) else { return }
        let fields: [(String, LeafEdit.Change?, [String])] = [
            ("path", edit.path, ["guid", "top_guid"]),
            ("devid", edit.devid, ["path", "guid"]),
            ("phys_path", edit.physPath, ["devid", "path", "guid"]),
        ]
        for (key, change, predecessors) in fields {
            guard let change else { continue }
            let old = node.string(key)
            switch change {
            case .remove:
                guard node.contains(key) else { continue }
                node[key] = nil
                diff.append(FieldChange(path: "\(nodePath).\(key)", old: old, new: nil))
            case .set(let value):
                // Compared as bytes: a value that differs only in its Unicode normalization is a change.
                guard old != value else { continue }
                if node.contains(key) {
                    node[key] = .string(value)
                } else {
                    let after = predecessors.lazy.compactMap { p in node.pairs.firstIndex { $0.name == p } }.first
                    node.pairs.insert(NVPair(key, .string(value)), at: after.map { $0 + 1 } ?? node.pairs.count)
                }
                diff.append(FieldChange(path: "\(nodePath).\(key)", old: old, new: value))
            }
        }
        do { try config.setValue(.nvlist(node), at: nodePath) } catch {
            preconditionFailure("the leaf was found at \(nodePath): \(error)")
        }
    }
}

/// Leaves by guid: an array searched in order. A pool's top-level vdev has a handful of leaves, and a
/// `Dictionary<UInt64, VdevLeaf>` costs a `set` process more in run-time generic metadata than the search.
private struct LeavesByGuid {
    var all: [VdevLeaf] = []
    subscript(guid: UInt64) -> VdevLeaf? { all.first { $0.guid == guid } }
}

extension LabelEditPlan {
    /// The plan in words: per member and label, the old and new values and what will be written.
    public var summary: String {
        var out = ""
        for member in members {
            out += "\(member.name): leaf \(member.guid)\n"
            if member.diff.isEmpty { out += "    no value changes\n" }
            for change in member.diff { out += "    \(change)\n" }
            for label in member.labels {
                let what: String
                switch label.action {
                case .keep: what = "unchanged"
                case .rewrite: what = "rewrite config area (112 KiB) at leaf byte \(label.configOffset)"
                case .writeFresh(let reason): what = "write afresh at leaf byte \(label.configOffset) (was \(reason))"
                }
                out += "    label \(label.index): \(what)\n"
            }
        }
        if writesAnything {
            out += "write order: L0 and L2 of every image, flush, then L1 and L3, flush; then read back and verify\n"
        } else {
            out += "nothing to write: the labels already hold these values\n"
        }
        for note in notes { out += "note: \(note)\n" }
        return out
    }

    /// The plan as JSON, for `--json`.
    public var json: JSONValue {
        .object([
            ("leaf_guid", .uint(leafGuid)),
            ("members", .array(members.map { m in
                .object([
                    ("name", .string(m.name)), ("guid", .uint(m.guid)),
                    ("changes", .array(m.diff.map { c in
                        .object([("path", .string(c.path)), ("old", c.old?.json ?? .null),
                                 ("new", c.new?.json ?? .null)])
                    })),
                    ("labels", .array(m.labels.map { l in
                        let action: String
                        switch l.action {
                        case .keep: action = "keep"
                        case .rewrite: action = "rewrite"
                        case .writeFresh: action = "write-fresh"
                        }
                        return .object([("index", .uint(UInt64(l.index))), ("status_before", .string(l.statusBefore.rawValue)),
                                        ("action", .string(action))])
                    })),
                ])
            })),
            ("notes", .array(notes.map(JSONValue.string))),
        ])
    }
}

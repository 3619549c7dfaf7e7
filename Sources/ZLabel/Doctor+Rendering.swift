// `zlabel doctor`'s diagnosis as people and programs read it: the verdict line, the text report and the JSON
// document (docs/json-output.md). Computing the diagnosis is in Doctor.swift.

import BootTargets
public import NVList

extension Diagnosis {
    /// A summary line: whether anything is wrong.
    public var verdict: String {
        let counts = Severity.allCases.reversed().map { s in (s, findings.filter { $0.severity == s }.count) }
        let tally = counts.map { "\($0.1) \($0.0.rawValue)\($0.1 == 1 ? "" : "s")" }.joined(separator: ", ")
        if !isClean {
            return "result: \(tally): " + (target.map { "the pool will not boot on \($0.target.rawValue) as it is" } ?? "something needs fixing")
        }
        return "result: \(tally): " + (target.map { "nothing stops the boot on \($0.target.rawValue)" } ?? "no problem found")
    }

    /// The diagnosis as text: the values side by side, the boot view, then each finding with its fix.
    public var text: String {
        var out = leaves.isEmpty ? "no ZFS pool found" : "pool \(pool)" + (poolGUID.map { " (guid \($0))" } ?? "")
        if let target {
            out += ", target \(target.target.rawValue)"
            if let d = target.device { out += " (root \(d)" + (target.vbd.map { ", Xen vbd \($0)" } ?? "") + ")" }
        }
        out += "\n"
        for leaf in leaves {
            out += "leaf \(leaf.guid) in \(leaf.image)\(leaf.region.name.map { " (\($0))" } ?? "")\(leaf.isBootDisk && target != nil ? ", the boot disk" : ""):\n"
            for field in leaf.fields {
                out += "  \(field.name)\n"
                for group in field.labels {
                    out += "    labels \(group.labels.map(String.init).joined(separator: ",")): \(Self.show(group.value))\n"
                }
                if let mos = field.mos {
                    out += "    MOS:        \(mos == field.effective ? "same" : Self.show(mos))\n"
                } else if leaf.inMOS == false {
                    out += "    MOS:        (no such leaf)\n"
                }
                switch field.target {
                case .set(let v)?: out += "    target:     \(NVString(v) == field.effective ? "same" : "'\(v)'")\n"
                case .remove?: out += "    target:     \(field.effective == nil ? "same (absent)" : "absent")\n"
                default: break
                }
            }
        }
        if let bootView {
            out += "boot: the \(bootView.loader.rawValue) loader passes \(bootView.bootfsArgument ?? "nothing")\n"
        }
        for finding in findings {
            out += "\(finding.severity.rawValue): \(finding.message)\n"
            if let fix = finding.fix { out += "  fix: \(fix)\n" }
        }
        out += verdict + "\n"
        return out
    }

    /// The diagnosis as one JSON object.
    public var json: JSONValue {
        func opt(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        func opt(_ s: NVString?) -> JSONValue { s?.json ?? .null }
        let leafJSON: [JSONValue] = leaves.map { leaf in
            var fields: [(String, JSONValue)] = []
            for field in leaf.fields {
                var members: [(String, JSONValue)] = [
                    ("labels", .array(field.labels.map { g in
                        .object([("labels", .array(g.labels.map { .uint(UInt64($0)) })), ("value", opt(g.value))])
                    })),
                    ("effective", opt(field.effective)),
                ]
                members.append(("mos", field.mos.map { opt($0) } ?? .null))
                members.append(("mos_read", .bool(field.mos != nil)))
                switch field.target {
                case .set(let v)?: members.append(("target", .object([("set", .string(v))])))
                case .remove?: members.append(("target", .object([("remove", .bool(true))])))
                default: members.append(("target", .null))
                }
                fields.append((field.name, .object(members)))
            }
            return .object([
                ("guid", .uint(leaf.guid)), ("image", .string(leaf.image)), ("partition", opt(leaf.region.name)),
                ("boot_disk", .bool(leaf.isBootDisk)), ("in_mos", leaf.inMOS.map(JSONValue.bool) ?? .null),
                ("fields", .object(fields)),
            ])
        }
        return .object([
            ("pool", .string(pool)), ("pool_guid", poolGUID.map(JSONValue.uint) ?? .null),
            ("target", opt(target?.target.rawValue)), ("device", opt(target?.device?.description)),
            ("loader", opt(loader?.rawValue)),
            ("leaves", .array(leafJSON)),
            ("boot", bootView?.json ?? .null),
            ("findings", .array(findings.map { f in
                .object([
                    ("severity", .string(f.severity.rawValue)), ("kind", .string(f.kind.rawValue)),
                    ("leaf", f.leaf.map(JSONValue.uint) ?? .null), ("message", .string(f.message)), ("fix", opt(f.fix)),
                ])
            })),
            ("clean", .bool(isClean)),
        ])
    }
}

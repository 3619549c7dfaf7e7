// A boot view as people and programs read it: `zlabel boot-view`'s `key=value` text and its JSON document
// (docs/json-output.md). What the loaders compute is in BootView.swift.

public import NVList

extension BootView {
    /// The view as text: the argument, then one `key=value` line per field.
    public var text: String {
        var out = ""
        out += "loader=\(loader.rawValue)\n"
        if let bootfsArgument { out += "\(bootfsArgument)\n" }
        out += "pool=\(pool)\n"
        out += "bootfs=\(bootfs.map { "\($0.name) (object \($0.object))" } ?? "")\n"
        out += "bootpath=\(bootpath ?? "")\n"
        out += "diskdevid=\(diskdevid ?? "")\n"
        if loader == .illumos {
            out += "zfs-bootpool=\(poolGUID.map(String.init) ?? "")\n"
            out += "zfs-bootvdev=\(vdevGUID.map(String.init) ?? "")\n"
        }
        out += "can-boot=\(canBoot ? "yes" : "no")\n"
        for p in problems { out += "problem: \(p)\n" }
        for n in notes { out += "note: \(n)\n" }
        return out
    }

    /// The view as a JSON object.
    public var json: JSONValue {
        func opt(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        func opt(_ v: UInt64?) -> JSONValue { v.map(JSONValue.uint) ?? .null }
        return .object([
            ("loader", .string(loader.rawValue)), ("pool", .string(pool)),
            ("bootfs", bootfs.map { .object([("name", .string($0.name)), ("object", .uint($0.object))]) } ?? .null),
            ("label", label.map { .uint(UInt64($0)) } ?? .null), ("boot_vdev_guid", opt(bootVdevGUID)),
            ("bootpath", opt(bootpath)), ("diskdevid", opt(diskdevid)),
            ("pool_guid", opt(poolGUID)), ("vdev_guid", opt(vdevGUID)),
            ("zfs_bootfs", opt(bootfsArgument)), ("can_boot", .bool(canBoot)),
            ("problems", .array(problems.map(JSONValue.string))), ("notes", .array(notes.map(JSONValue.string))),
        ])
    }
}

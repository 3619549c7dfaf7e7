/// A JSON value with ordered object members and exact 64-bit integers, for machine-readable output.
///
/// Foundation's serializers reorder keys and may pass large integers through `Double`; label configs carry
/// guids up to 2^64 − 1 that must print exactly, so output is written by this small type instead.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.uint(let x), .uint(let y)): x == y
        case (.int(let x), .uint(let y)), (.uint(let y), .int(let x)): x >= 0 && UInt64(x) == y
        case (.double(let x), .double(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .null: h.combine(0)
        case .bool(let b): h.combine(b)
        case .int(let i): if i >= 0 { h.combine(UInt64(i)) } else { h.combine(i) }
        case .uint(let u): h.combine(u)
        case .double(let d): h.combine(d)
        case .string(let s): h.combine(s)
        case .array(let a): h.combine(a)
        case .object(let o): for (k, v) in o { h.combine(k); h.combine(v) }
        }
    }

    /// The member `key` of an object, or `nil`.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    /// Renders the value as JSON text.
    ///
    /// - Parameter pretty: indent nested values by two spaces per level; otherwise one line, no spaces.
    public func rendered(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, pretty: pretty, indent: 0)
        return out
    }

    private func write(to out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): Self.quote(s, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                item.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                Self.quote(key, into: &out)
                out += pretty ? ": " : ":"
                value.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20 || c.value == 0x7f:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

extension NVList {
    /// The list as a JSON object, in the mapping of libnvpair's `nvlist_print_json`: numbers as exact JSON
    /// integers, nested lists as objects, list arrays as arrays, a valueless boolean flag as `true`. A string
    /// is a JSON string when its bytes are valid UTF-8, and otherwise the object `{"base64": "..."}` holding
    /// its exact bytes (``NVString/json``), so the mapping loses nothing.
    public var json: JSONValue { .object(pairs.map { ($0.name, $0.value.json) }) }
}

extension NVValue {
    /// The value in the JSON mapping of ``NVList/json``.
    public var json: JSONValue {
        switch self {
        case .boolean: .bool(true)
        case .booleanValue(let b): .bool(b)
        case .byte(let v): .uint(UInt64(v))
        case .int8(let v): .int(Int64(v))
        case .uint8(let v): .uint(UInt64(v))
        case .int16(let v): .int(Int64(v))
        case .uint16(let v): .uint(UInt64(v))
        case .int32(let v): .int(Int64(v))
        case .uint32(let v): .uint(UInt64(v))
        case .int64(let v): .int(v)
        case .uint64(let v): .uint(v)
        case .hrtime(let v): .int(v)
        case .double(let v): .double(v)
        case .string(let s): s.json
        case .byteArray(let a): .array(a.map { .uint(UInt64($0)) })
        case .int8Array(let a): .array(a.map { .int(Int64($0)) })
        case .uint8Array(let a): .array(a.map { .uint(UInt64($0)) })
        case .int16Array(let a): .array(a.map { .int(Int64($0)) })
        case .uint16Array(let a): .array(a.map { .uint(UInt64($0)) })
        case .int32Array(let a): .array(a.map { .int(Int64($0)) })
        case .uint32Array(let a): .array(a.map { .uint(UInt64($0)) })
        case .int64Array(let a): .array(a.map { .int($0) })
        case .uint64Array(let a): .array(a.map { .uint($0) })
        case .booleanArray(let a): .array(a.map { .bool($0) })
        case .stringArray(let a): .array(a.map { $0.json })
        case .nvlist(let l): l.json
        case .nvlistArray(let a): .array(a.map { $0.json })
        }
    }
}

extension NVString {
    /// The string in the JSON mapping of ``NVList/json``: a JSON string when the bytes are valid UTF-8 (JSON
    /// escapes keep every character), otherwise `{"base64": "..."}` with the exact bytes in standard base64,
    /// since a JSON string cannot carry bytes that are not UTF-8.
    public var json: JSONValue { string.map(JSONValue.string) ?? .object([("base64", .string(base64))]) }
}

public import Foundation
import NVList

/// A JSON document as written, for comparing our output with an oracle's: object members keep their order and
/// duplicates, and numbers keep their literal text, so a uint64 guid above 2^53 is never rounded through a Double.
/// (Foundation's JSONSerialization on Linux keeps such integers too, but loses member order.)
///
/// To compare zlabel's own `NVList.JSONValue` with an oracle, parse its rendering:
/// `try ExactJSON.parse(value.rendered())`.
///
/// ```swift
/// let doc = try ExactJSON.parse(result.stdout)
/// let phys = doc["labels"]?[0]?["config"]?["vdev_tree"]?["phys_path"]?.string
/// let guid = doc["labels"]?[0]?["config"]?["guid"]?.uint64
/// ```
public enum ExactJSON: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    /// The number exactly as written (e.g. `"16434441236424571549"`, `"-1"`, `"1.5e3"`).
    case number(String)
    case string(String)
    case array([ExactJSON])
    /// Members in document order.
    case object([Member])

    public struct Member: Sendable, Hashable {
        public let key: String
        public let value: ExactJSON
        public init(key: String, value: ExactJSON) {
            self.key = key
            self.value = value
        }
    }

    // MARK: access

    /// The value of the first member named `key`, if this is an object that has one.
    public subscript(key: String) -> ExactJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The element at `index`, if this is an array that long.
    public subscript(index: Int) -> ExactJSON? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// Follows a path such as `labels[0].config.vdev_tree.children[1].phys_path`.
    public subscript(path path: String) -> ExactJSON? {
        var current: ExactJSON? = self
        for part in path.split(separator: ".") {
            var name = Substring(part)
            var indices: [Int] = []
            while name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
                guard let i = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) else { return nil }
                indices.insert(i, at: 0)
                name = name[..<open]
            }
            if !name.isEmpty { current = current?[String(name)] }
            for i in indices { current = current?[i] }
        }
        return current
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [ExactJSON]? { if case .array(let a) = self { a } else { nil } }
    public var members: [Member]? { if case .object(let m) = self { m } else { nil } }
    /// Object keys in document order.
    public var keys: [String]? { members?.map(\.key) }
    /// The number as an exact UInt64 (nil for negative, fractional or out-of-range numbers).
    public var uint64: UInt64? { if case .number(let n) = self { UInt64(n) } else { nil } }
    /// The number as an exact Int64.
    public var int64: Int64? { if case .number(let n) = self { Int64(n) } else { nil } }
    public var int: Int? { if case .number(let n) = self { Int(n) } else { nil } }
    public var double: Double? { if case .number(let n) = self { Double(n) } else { nil } }
    public var isNull: Bool { self == .null }

    /// Compact JSON text (numbers and member order as parsed).
    public var description: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): ExactJSON.writeString(s, to: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        case .object(let m):
            out += "{"
            for (i, member) in m.enumerated() {
                if i > 0 { out += "," }
                ExactJSON.writeString(member.key, to: &out)
                out += ":"
                member.value.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += JSONValue.string(s).rendered()  // the library's own escaping
    }

    // MARK: parsing

    public struct ParseError: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "JSON parse error at byte \(offset): \(reason)" }
    }

    /// Parses one JSON document (RFC 8259; surrounding whitespace allowed). Nesting is limited to 512 levels.
    public static func parse(_ data: Data) throws -> ExactJSON {
        var parser = Parser(bytes: [UInt8](data))
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.at == parser.bytes.count else { throw parser.error("trailing data") }
        return value
    }

    public static func parse(_ text: String) throws -> ExactJSON { try parse(Data(text.utf8)) }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func error(_ reason: String) -> ParseError { ParseError(offset: at, reason: reason) }

        mutating func skipWhitespace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for b in literal.utf8 {
                guard at < bytes.count, bytes[at] == b else { throw error("expected \(literal)") }
                at += 1
            }
        }

        mutating func value(depth: Int) throws -> ExactJSON {
            guard depth < 512 else { throw error("nesting deeper than 512") }
            guard at < bytes.count else { throw error("unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var members: [Member] = []
                skipWhitespace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") {
                    at += 1
                    return .object(members)
                }
                while true {
                    skipWhitespace()
                    guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    members.append(Member(key: key, value: try value(depth: depth + 1)))
                    skipWhitespace()
                    guard at < bytes.count else { throw error("unterminated object") }
                    if bytes[at] == UInt8(ascii: ",") {
                        at += 1
                    } else if bytes[at] == UInt8(ascii: "}") {
                        at += 1
                        return .object(members)
                    } else {
                        throw error("expected , or }")
                    }
                }
            case UInt8(ascii: "["):
                at += 1
                var elements: [ExactJSON] = []
                skipWhitespace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") {
                    at += 1
                    return .array(elements)
                }
                while true {
                    skipWhitespace()
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard at < bytes.count else { throw error("unterminated array") }
                    if bytes[at] == UInt8(ascii: ",") {
                        at += 1
                    } else if bytes[at] == UInt8(ascii: "]") {
                        at += 1
                        return .array(elements)
                    } else {
                        throw error("expected , or ]")
                    }
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            default:
                return .number(try number())
            }
        }

        mutating func number() throws -> String {
            let start = at
            func digits(_ p: inout Parser) -> Int {
                let s = p.at
                while p.at < p.bytes.count, (0x30...0x39).contains(p.bytes[p.at]) { p.at += 1 }
                return p.at - s
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
            let intStart = at
            guard digits(&self) > 0 else { throw error("bad number") }
            if bytes[intStart] == UInt8(ascii: "0"), at - intStart > 1 { throw error("leading zero") }
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
                at += 1
                guard digits(&self) > 0 else { throw error("bad fraction") }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
                at += 1
                if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
                guard digits(&self) > 0 else { throw error("bad exponent") }
            }
            return String(decoding: bytes[start..<at], as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw error("short \\u escape") }
            guard let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
                throw error("bad \\u escape")
            }
            at += 4
            return v
        }

        mutating func string() throws -> String {
            at += 1  // opening quote
            var scalars = String.UnicodeScalarView()
            var run = at  // start of the current unescaped run
            func flush(_ p: Parser, _ end: Int, into s: inout String.UnicodeScalarView) {
                s.append(contentsOf: String(decoding: p.bytes[run..<end], as: UTF8.self).unicodeScalars)
            }
            while true {
                guard at < bytes.count else { throw error("unterminated string") }
                let b = bytes[at]
                if b == UInt8(ascii: "\"") {
                    flush(self, at, into: &scalars)
                    at += 1
                    return String(scalars)
                }
                if b < 0x20 { throw error("control character in string") }
                if b != UInt8(ascii: "\\") {
                    at += 1
                    continue
                }
                flush(self, at, into: &scalars)
                at += 1
                guard at < bytes.count else { throw error("unterminated escape") }
                let e = bytes[at]
                at += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if (0xD800..<0xDC00).contains(v), at + 6 <= bytes.count, bytes[at] == UInt8(ascii: "\\"),
                        bytes[at + 1] == UInt8(ascii: "u")
                    {
                        let save = at
                        at += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            at = save
                        }
                    }
                    scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                default:
                    throw error("bad escape")
                }
                run = at
            }
        }
    }
}

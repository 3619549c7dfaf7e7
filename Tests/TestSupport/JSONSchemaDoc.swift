public import Foundation

/// The JSON schema of the command-line tools, read from docs/json-output.md: each document's key paths and
/// their types, so a test can hold a command's output against what the page promises.
public struct JSONSchemaDoc: Sendable {
    /// One documented key.
    public struct Key: Sendable, Hashable {
        /// `a.b`, `a[].b`, `a.*.b`.
        public let path: String
        /// The type column, as written.
        public let type: String
        /// The key may be absent.
        public var isOptional: Bool { type.hasPrefix("optional") }
        /// The value is opaque to the schema (ZFS's nvpair names or values): not walked into.
        public var isOpaque: Bool { ["nvlist", "nvvalue", "nvstring"].contains { type.contains($0) } }
    }

    /// Every section (documents and parts) by heading, with its rows as written.
    let sections: [String: [(key: String, type: String)]]

    /// Reads the page at `url` (default: the repository's docs/json-output.md).
    public init(url: URL = Repository.root.appending(path: "docs/json-output.md")) throws {
        var sections: [String: [(key: String, type: String)]] = [:]
        var current: String?
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### ") {
                current = String(line.dropFirst(4)).trimmingCharacters(in: .whitespaces)
                sections[current!] = []
            } else if line.hasPrefix("## ") {
                current = nil
            } else if let current, line.hasPrefix("|"), !line.hasPrefix("|---") {
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                guard cells.count >= 4, cells[1] != "key" else { continue }
                sections[current, default: []].append((cells[1], cells[2]))
            }
        }
        self.sections = sections
    }

    /// The names of the documents (the sections whose heading is a command line).
    public var documents: [String] { sections.keys.filter { $0.hasPrefix("zlabel ") }.sorted() }

    /// The keys of the document or part `name`, with parts expanded.
    public func keys(of name: String) throws -> [Key] {
        try expand(name, at: "", depth: 0)
    }

    private func expand(_ name: String, at prefix: String, depth: Int) throws -> [Key] {
        guard let rows = sections[name] else { throw SchemaError("docs/json-output.md has no section \"\(name)\"") }
        guard depth < 8 else { throw SchemaError("docs/json-output.md: parts nest too deep at \"\(name)\"") }
        func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "." + b }
        var keys: [Key] = []
        for row in rows {
            let part = Self.partName(in: row.key + " " + row.type)
            if !row.key.hasPrefix("`") {
                // "the keys of [part](#part)": the part's keys at this level.
                guard let part else { throw SchemaError("docs/json-output.md, \(name): row \"\(row.key)\" names no part") }
                keys += try expand(part, at: prefix, depth: depth + 1)
                continue
            }
            let path = join(prefix, row.key.trimmingCharacters(in: CharacterSet(charactersIn: "`")))
            keys.append(Key(path: path, type: row.type))
            if let part {
                keys += try expand(part, at: row.type.contains("array") ? path + "[]" : path, depth: depth + 1)
            }
        }
        return keys
    }

    /// `boot view` from `… see [boot view](#boot-view) …`.
    static func partName(in text: String) -> String? {
        guard let open = text.range(of: "]("), let start = text[..<open.lowerBound].lastIndex(of: "[") else { return nil }
        return String(text[text.index(after: start)..<open.lowerBound])
    }

    /// What is wrong with `output` as the document `name`: keys it has that the page does not list, listed keys
    /// it lacks (those not optional, inside objects the output has), values of the wrong type, keys that are not
    /// snake_case, and a missing or wrong `schema_version`. Empty when the output matches.
    public func mismatches(_ output: ExactJSON, document name: String) throws -> [String] {
        let documented = try keys(of: name)
        let byPath = Dictionary(documented.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var problems: [String] = []
        var seen: Set<String> = []
        var objects: Set<String> = []

        func walk(_ value: ExactJSON, at path: String) {
            guard case .object(let members) = value else { return }
            objects.insert(path)
            for member in members {
                let wildcard = path.isEmpty ? "*" : path + ".*"
                let keyPath = byPath[wildcard] != nil ? wildcard : (path.isEmpty ? member.key : path + "." + member.key)
                if byPath[wildcard] == nil, !Self.isSnakeCase(member.key) {
                    problems.append("\(keyPath): key \"\(member.key)\" is not snake_case")
                }
                seen.insert(keyPath)
                guard let key = byPath[keyPath] else {
                    problems.append("\(keyPath): not in docs/json-output.md (\(name))")
                    continue
                }
                if let kind = Self.kindProblem(member.value, type: key.type) { problems.append("\(keyPath): \(kind)") }
                if key.isOpaque { continue }
                switch member.value {
                case .object: walk(member.value, at: keyPath)
                case .array(let items): for item in items { walk(item, at: keyPath + "[]") }
                default: break
                }
            }
        }
        walk(output, at: "")

        for key in documented where !key.isOptional && !seen.contains(key.path) {
            let parent = key.path.contains(".") ? String(key.path[..<key.path.lastIndex(of: ".")!]) : ""
            if objects.contains(parent) { problems.append("\(key.path): documented, missing from the output") }
        }
        if output["schema_version"]?.uint64 != 1 {
            problems.append("schema_version is \(output["schema_version"].map(\.description) ?? "absent"), not 1")
        }
        var unique: Set<String> = []
        return problems.filter { unique.insert($0).inserted }
    }

    /// Lowercase ASCII letters, digits and `_`, starting with a letter.
    public static func isSnakeCase(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return key.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// Why `value` does not have one of the kinds the type column names, or nil when it does.
    static func kindProblem(_ value: ExactJSON, type: String) -> String? {
        let words = Set(type.split(whereSeparator: { !$0.isLetter }).map(String.init))
        if words.contains("nvvalue") { return nil }
        let first = words.contains("array") ? "array" : words.contains("object") ? "object"
            : ["nvlist", "nvstring", "uint", "number", "bool", "string"].first { words.contains($0) }
        guard let first else { return nil }
        let ok: Bool
        switch value {
        case .null: ok = words.contains("null")
        case .bool: ok = first == "bool"
        case .string: ok = first == "string" || first == "nvstring"
        case .number(let n): ok = first == "number" || (first == "uint" && UInt64(n) != nil)
        case .array: ok = first == "array"
        case .object: ok = first == "object" || first == "nvlist" || first == "nvstring"
        }
        return ok ? nil : "\(value) is not \(type)"
    }

    /// A malformed schema page.
    public struct SchemaError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

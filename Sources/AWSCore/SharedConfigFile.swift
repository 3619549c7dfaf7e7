// The shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`), parsed as botocore does
// (Python's configparser, then botocore's nested-value pass):
// * `[section]` headers; `key = value` or `key: value`; key names are lower-cased, section names kept;
// * whole-line comments start with `#` or `;` (there are no inline comments: `a = b # c` has the value `b # c`);
// * an indented line continues the previous value; a key whose value is empty and continued by indented
//   `k = v` lines is a nested table (`ec2 =` / `  endpoint_url = …` in a `[services NAME]` section).
// In the config file a profile is `[default]` or `[profile NAME]`; in the credentials file it is `[NAME]`.

/// One value of a config file: a string, or a nested table.
public enum SharedConfigValue: Sendable, Equatable {
    /// A plain value.
    case string(String)
    /// A nested table (`key =` followed by indented `k = v` lines).
    case nested([String: String])

    /// The value when it is a plain string.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// A parsed config or credentials file: section name → key → value.
public struct SharedConfigFile: Sendable, Equatable {
    /// Sections by their name as written between brackets (trimmed).
    public var sections: [String: [String: SharedConfigValue]]

    /// An empty file.
    public init() { sections = [:] }

    /// Parses file text.
    ///
    /// - Parameters:
    ///   - text: the file's contents.
    ///   - path: used in error messages only.
    /// - Throws: ``AWSConfigurationError`` naming the file and line of a line that is neither a section, a
    ///   key, a comment nor a continuation.
    public init(parsing text: String, path: String) throws(AWSConfigurationError) {
        var sections: [String: [String: String]] = [:]
        var order: [String] = []
        var current: String?
        var lastKey: String?
        var lineNo = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            var line = String(rawLine)
            if line.hasSuffix("\r") { line.removeLast() }
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty {
                lastKey = nil
                continue
            }
            if trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            let indented = line.first == " " || line.first == "\t"
            if indented, let section = current, let key = lastKey {
                sections[section]![key]! += "\n" + trimmed
                continue
            }
            if trimmed.hasPrefix("[") {
                guard let close = trimmed.firstIndex(of: "]") else {
                    throw AWSConfigurationError("\(path):\(lineNo): section header without ']'")
                }
                let name = trimmed[trimmed.index(after: trimmed.startIndex)..<close].trimmingWhitespace()
                current = name
                if sections[name] == nil {
                    sections[name] = [:]
                    order.append(name)
                }
                lastKey = nil
                continue
            }
            guard let section = current else {
                throw AWSConfigurationError("\(path):\(lineNo): a key outside any [section]")
            }
            guard let sep = trimmed.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw AWSConfigurationError("\(path):\(lineNo): expected 'key = value'")
            }
            let key = trimmed[..<sep].trimmingWhitespace().lowercased()
            let value = trimmed[trimmed.index(after: sep)...].trimmingWhitespace()
            sections[section]![key] = value
            lastKey = key
        }
        var result: [String: [String: SharedConfigValue]] = [:]
        for (name, kv) in sections {
            var out: [String: SharedConfigValue] = [:]
            for (k, v) in kv {
                if v.hasPrefix("\n") {
                    var nested: [String: String] = [:]
                    for l in v.split(separator: "\n") {
                        guard let eq = l.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
                        nested[l[..<eq].trimmingWhitespace().lowercased()] = l[l.index(after: eq)...]
                            .trimmingWhitespace()
                    }
                    out[k] = .nested(nested)
                } else {
                    out[k] = .string(v)
                }
            }
            result[name] = out
        }
        self.sections = result
    }

    /// A profile of a **config** file: `[default]` for `default`, else `[profile NAME]`.
    public func configProfile(_ name: String) -> [String: SharedConfigValue]? {
        if let p = sections["profile \(name)"] { return p }
        return name == "default" ? sections["default"] : nil
    }

    /// A `[services NAME]` section of a config file.
    public func servicesSection(_ name: String) -> [String: SharedConfigValue]? {
        sections["services \(name)"]
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}

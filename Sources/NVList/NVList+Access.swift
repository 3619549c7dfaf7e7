extension NVList {
    /// The names of the pairs, in order.
    public var names: [String] { pairs.map(\.name) }

    /// The value of the first pair with this name, or `nil`.
    ///
    /// Setting a value replaces the pair where it stands, so the order of the list (and so its encoding) stays
    /// as it was; a new name is appended at the end, as `nvlist_add_*` does; `nil` removes every pair of that name.
    public subscript(name: String) -> NVValue? {
        get { pairs.first { $0.name == name }?.value }
        set {
            guard let newValue else {
                pairs.removeAll { $0.name == name }
                return
            }
            if let i = pairs.firstIndex(where: { $0.name == name }) {
                pairs[i].value = newValue
            } else {
                pairs.append(NVPair(name, newValue))
            }
        }
    }

    /// Whether a pair with this name exists.
    public func contains(_ name: String) -> Bool { pairs.contains { $0.name == name } }

    /// The `uint64` value of `name`, or `nil` when absent or of another type.
    public func uint64(_ name: String) -> UInt64? {
        if case .uint64(let v)? = self[name] { return v }
        return nil
    }

    /// The string value of `name`, or `nil` when absent or of another type. Its bytes need not be UTF-8:
    /// `.string` is the text when they are, `.description` always text (see ``NVString``).
    public func string(_ name: String) -> NVString? {
        if case .string(let v)? = self[name] { return v }
        return nil
    }

    /// The nested list `name`, or `nil` when absent or of another type.
    public func list(_ name: String) -> NVList? {
        if case .nvlist(let v)? = self[name] { return v }
        return nil
    }

    /// The list array `name`, or `nil` when absent or of another type.
    public func lists(_ name: String) -> [NVList]? {
        if case .nvlistArray(let v)? = self[name] { return v }
        return nil
    }

    /// The `uint64` array `name`, or `nil` when absent or of another type.
    public func uint64Array(_ name: String) -> [UInt64]? {
        if case .uint64Array(let v)? = self[name] { return v }
        return nil
    }

    /// The value at a path such as `vdev_tree.children[1].phys_path`, or `nil` when any step is missing.
    public func value(at path: NVPath) -> NVValue? {
        var current: NVValue = .nvlist(self)
        for component in path.components {
            switch (component, current) {
            case (.key(let k), .nvlist(let l)):
                guard let next = l[k] else { return nil }
                current = next
            case (.index(let i), .nvlistArray(let a)):
                guard a.indices.contains(i) else { return nil }
                current = .nvlist(a[i])
            case (.index(let i), _):
                guard let element = current.element(at: i) else { return nil }
                current = element
            default:
                return nil
            }
        }
        return current
    }

    /// Sets (or, with `nil`, removes) the value at a path; the parent of the last step must exist.
    ///
    /// - Throws: ``NVPathError`` when a step before the last does not exist or is not a list.
    public mutating func setValue(_ value: NVValue?, at path: NVPath) throws(NVPathError) {
        guard let first = path.components.first else { throw NVPathError(path: path, reason: "empty path") }
        let rest = NVPath(components: Array(path.components.dropFirst()))
        guard case .key(let key) = first else {
            throw NVPathError(path: path, reason: "a list is indexed by name, not by number")
        }
        if rest.components.isEmpty {
            self[key] = value
            return
        }
        switch (self[key], rest.components.first!) {
        case (.nvlist(var child)?, .key):
            try child.setValue(value, at: rest)
            self[key] = .nvlist(child)
        case (.nvlistArray(var array)?, .index(let i)) where array.indices.contains(i):
            let inner = NVPath(components: Array(rest.components.dropFirst()))
            if inner.components.isEmpty {
                // The path names an element of a list array: only another list can take its place.
                guard case .nvlist(let element)? = value else {
                    throw NVPathError(path: path, reason: "an element of a list array can only be replaced by a list")
                }
                array[i] = element
            } else {
                try array[i].setValue(value, at: inner)
            }
            self[key] = .nvlistArray(array)
        default:
            throw NVPathError(path: path, reason: "'\(key)' is missing or not a nested list here")
        }
    }
}

extension NVValue {
    fileprivate func element(at i: Int) -> NVValue? {
        func pick<T>(_ a: [T], _ wrap: (T) -> NVValue) -> NVValue? { a.indices.contains(i) ? wrap(a[i]) : nil }
        switch self {
        case .byteArray(let a): return pick(a, NVValue.byte)
        case .int16Array(let a): return pick(a, NVValue.int16)
        case .uint16Array(let a): return pick(a, NVValue.uint16)
        case .int32Array(let a): return pick(a, NVValue.int32)
        case .uint32Array(let a): return pick(a, NVValue.uint32)
        case .int64Array(let a): return pick(a, NVValue.int64)
        case .uint64Array(let a): return pick(a, NVValue.uint64)
        case .stringArray(let a): return pick(a, NVValue.string)
        case .nvlistArray(let a): return pick(a, NVValue.nvlist)
        case .booleanArray(let a): return pick(a, NVValue.booleanValue)
        case .int8Array(let a): return pick(a, NVValue.int8)
        case .uint8Array(let a): return pick(a, NVValue.uint8)
        default: return nil
        }
    }
}

/// A path into nested nvlists: names separated by `.`, array indices in brackets, and names that contain
/// `.` or brackets quoted: `vdev_tree.children[1].phys_path`, `features_for_read["com.delphix:hole_birth"]`.
public struct NVPath: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// One step of a path.
    public enum Component: Sendable, Hashable {
        /// A pair name in a list.
        case key(String)
        /// An element of an array.
        case index(Int)
    }

    /// The steps, outermost first.
    public var components: [Component]

    /// Creates a path from its steps.
    public init(components: [Component]) { self.components = components }

    /// Parses a path written as `a.b[2].c` or `a["x.y"]`.
    ///
    /// - Throws: ``NVPathError`` when the text is not a path.
    public init(parsing text: String) throws(NVPathError) {
        var components: [Component] = []
        var chars = Array(text)
        var i = 0
        var name = ""
        var expectName = true
        func fail(_ why: String) -> NVPathError {
            NVPathError(path: NVPath(components: components), reason: "\(why) at character \(i) of '\(text)'")
        }
        func flush() {
            if !name.isEmpty { components.append(.key(name)); name = "" }
        }
        while i < chars.count {
            let c = chars[i]
            switch c {
            case ".":
                if name.isEmpty && expectName { throw fail("empty name") }
                flush()
                expectName = true
                i += 1
            case "[":
                flush()
                guard let close = chars[i...].firstIndex(of: "]") else { throw fail("unclosed '['") }
                let inside = String(chars[(i + 1)..<close])
                if inside.hasPrefix("\""), inside.hasSuffix("\""), inside.count >= 2 {
                    components.append(.key(String(inside.dropFirst().dropLast())))
                } else if let n = Int(inside), n >= 0 {
                    components.append(.index(n))
                } else {
                    throw fail("'[\(inside)]' is neither an index nor a quoted name")
                }
                expectName = false
                i = close + 1
            default:
                name.append(c)
                expectName = false
                i += 1
            }
        }
        if expectName && !components.isEmpty { throw fail("path ends with '.'") }
        flush()
        if components.isEmpty { throw fail("empty path") }
        chars.removeAll()
        self.components = components
    }

    /// Creates a path from a literal; the literal must be a valid path.
    public init(stringLiteral value: String) {
        do { try self.init(parsing: value) } catch { preconditionFailure("invalid NVPath literal: \(error)") }
    }

    public var description: String {
        var out = ""
        for c in components {
            switch c {
            case .key(let k) where k.contains(".") || k.contains("[") || k.contains("]"):
                out += "[\"\(k)\"]"
            case .key(let k):
                out += out.isEmpty ? k : ".\(k)"
            case .index(let n):
                out += "[\(n)]"
            }
        }
        return out
    }
}

/// A path that does not parse, or does not lead where a change needs it to.
public struct NVPathError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The path, or the part of it read before the problem.
    public var path: NVPath
    /// What is wrong.
    public var reason: String
    public var description: String { "nvlist path '\(path)': \(reason)" }
}

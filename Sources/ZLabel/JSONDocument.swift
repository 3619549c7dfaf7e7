// The envelope of every JSON document `zlabel` and `zlabel-ec2` print: one key style (snake_case) and a
// version, described key by key in docs/json-output.md.

import NVList

/// What every JSON document the command-line tools print has in common.
public enum JSONDocument {
    /// The key that carries the schema version, first in every document.
    public static let versionKey = "schema_version"

    /// The schema version. It goes up when a documented key is removed or renamed, or its type or meaning
    /// changes; adding a key does not change it (readers ignore keys they do not know).
    public static let version: UInt64 = 1

    /// `body` as a printed document: `"schema_version"` first, then `body`'s keys in their order. A body that is
    /// not an object becomes the value of `"result"`.
    public static func wrap(_ body: JSONValue) -> JSONValue {
        let head: [(String, JSONValue)] = [(versionKey, .uint(version))]
        if case .object(let members) = body { return .object(head + members) }
        return .object(head + [("result", body)])
    }
}

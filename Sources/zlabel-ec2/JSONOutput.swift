import Foundation
import ZLabel

/// Prints `value` as a versioned JSON document (docs/json-output.md): `"schema_version"` beside the value's own
/// keys, every key in snake_case, sorted, indented.
func printJSONDocument<Body: Encodable>(_ value: Body) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.keyEncodingStrategy = .custom { path in Key(stringValue: snakeCase(path.last?.stringValue ?? "")) }
    print(String(decoding: try encoder.encode(Versioned(body: value)), as: UTF8.self))
}

/// A Swift property name as a JSON key: `snapshotID` → `snapshot_id`, `volumeSizeGiB` → `volume_size_gib` (the
/// unit is one word, where `.convertToSnakeCase` would split it into `gi_b`).
func snakeCase(_ name: String) -> String {
    let characters = Array(name.replacingOccurrences(of: "GiB", with: "Gib"))
    var out = ""
    for (i, c) in characters.enumerated() {
        if c.isUppercase, i > 0 {
            let previous = characters[i - 1]
            let nextIsLower = i + 1 < characters.count && characters[i + 1].isLowercase
            if previous.isLowercase || previous.isNumber || (previous.isUppercase && nextIsLower) { out += "_" }
        }
        out += c.lowercased()
    }
    return out
}

/// A key by name.
private struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A value's keys and the schema version, in one object.
private struct Versioned<Body: Encodable>: Encodable {
    var body: Body

    func encode(to encoder: any Encoder) throws {
        try body.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(JSONDocument.version, forKey: Key(stringValue: JSONDocument.versionKey))
    }
}

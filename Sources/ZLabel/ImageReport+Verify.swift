// `zlabel verify`'s verdict on an image report, as the JSON document of docs/json-output.md.

public import NVList
public import ZFSImage

extension ImageReport {
    /// The `zlabel verify --json` object (without the schema version the command adds): `ok` when there is no
    /// problem, then the problems and the notes, one sentence each.
    public var verdictJSON: JSONValue {
        let problems = self.problems
        return .object([
            ("ok", .bool(problems.isEmpty)),
            ("problems", .array(problems.map(JSONValue.string))),
            ("notes", .array(notes.map(JSONValue.string))),
        ])
    }
}

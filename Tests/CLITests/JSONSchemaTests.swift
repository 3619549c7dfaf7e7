import Foundation
import Testing
import TestSupport

/// Every `zlabel … --json` document against docs/json-output.md: the keys it prints are the keys the page lists,
/// with their types, all snake_case, and `schema_version` 1 first.
@Suite("JSON output matches docs/json-output.md")
struct JSONSchemaTests {
    /// The documents this suite runs, by their heading in the page (the `zlabel ec2` ones are run against the
    /// EBS peer in EBSUploadTests).
    static let covered = [
        "zlabel boot-view --json", "zlabel doctor --json", "zlabel expect --json", "zlabel inspect --json",
        "zlabel inspect --mos --json", "zlabel repair-checksums --json", "zlabel restore --json",
        "zlabel set --dry-run --json", "zlabel set --json", "zlabel targets --json", "zlabel verify --json",
    ]

    /// Runs `arguments` and holds its standard output against the document `name`.
    func check(_ name: String, _ arguments: [String], status: Int32 = 0,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try ZLabelCLI.run(arguments)
        #expect(run.status == status, "\(run)", sourceLocation: sourceLocation)
        let output = try ExactJSON.parse(run.stdout)
        #expect(output.keys?.first == "schema_version", "\(name): schema_version is not the first key",
                sourceLocation: sourceLocation)
        let problems = try JSONSchemaDoc().mismatches(output, document: name)
        #expect(problems.isEmpty, "\(name):\n\(problems.joined(separator: "\n"))", sourceLocation: sourceLocation)
    }

    @Test func everyZlabelDocumentIsCovered() throws {
        let documents = try JSONSchemaDoc().documents.filter { !$0.hasPrefix("zlabel ec2 ") }
        #expect(documents == Self.covered)
    }

    @Test func theDocumentedKeysAreSnakeCase() throws {
        let doc = try JSONSchemaDoc()
        for name in doc.documents {
            for key in try doc.keys(of: name) {
                let components = key.path.replacingOccurrences(of: "[]", with: "").split(separator: ".").map(String.init)
                #expect(components.allSatisfy { $0 == "*" || JSONSchemaDoc.isSnakeCase($0) }, "\(name): \(key.path)")
            }
        }
    }

    /// The checker itself: a camelCase key, an undocumented key, a missing key and a wrong type are each caught.
    @Test func theCheckerFindsWhatIsWrong() throws {
        let doc = try JSONSchemaDoc()
        let good = #"{"schema_version":1,"ok":true,"problems":[],"notes":["n"]}"#
        #expect(try doc.mismatches(try ExactJSON.parse(good), document: "zlabel verify --json").isEmpty)
        let bad = #"{"schema_version":2,"ok":"yes","problems":[],"extraKey":1}"#
        let problems = try doc.mismatches(try ExactJSON.parse(bad), document: "zlabel verify --json")
        #expect(problems.contains { $0.contains("extraKey") && $0.contains("snake_case") })
        #expect(problems.contains { $0.contains("extraKey") && $0.contains("not in docs") })
        #expect(problems.contains { $0.hasPrefix("notes:") && $0.contains("missing") })
        #expect(problems.contains { $0.hasPrefix("ok:") })
        #expect(problems.contains { $0.contains("schema_version is 2") })
    }

    @Test func inspect() throws {
        try check("zlabel inspect --json", ["inspect", "--json", "--uberblocks", try Fixture.image("rpool-kvm.img").path])
        try check("zlabel inspect --json", ["inspect", "--json", try Fixture.image("disk-gpt.img").path])
    }

    @Test func inspectMOS() throws {
        try check("zlabel inspect --mos --json", ["inspect", "--mos", "--json", try Fixture.image("rpool-kvm.img").path])
    }

    @Test func verify() throws {
        try check("zlabel verify --json", ["verify", "--json", try Fixture.image("rpool-kvm.img").path])
    }

    @Test func setDryRun() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        try check("zlabel set --dry-run --json",
                  ["set", scratch.url.path, "--target", "ec2-xen-hvm", "--remove-hostid", "--dry-run", "--json"])
    }

    @Test func setAndRestore() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let backup = scratch.directory.file("backup").path
        try check("zlabel set --json", ["set", scratch.url.path, "--target", "ec2-xen-hvm", "--backup", backup, "--json"])
        try check("zlabel restore --json", ["restore", scratch.url.path, "--from", backup, "--json"])
    }

    @Test func repairChecksums() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        try check("zlabel repair-checksums --json", ["repair-checksums", scratch.url.path, "--dry-run", "--json"])
    }

    @Test func targets() throws {
        try check("zlabel targets --json", ["targets", "--json"])
    }

    @Test func doctor() throws {
        let image = try Fixture.image("rpool-kvm.img").path
        try check("zlabel doctor --json", ["doctor", "--json", image, "--target", "ec2-xen-hvm"], status: 1)
        try check("zlabel doctor --json", ["doctor", "--json", image])
    }

    @Test func bootView() throws {
        try check("zlabel boot-view --json", ["boot-view", "--json", try Fixture.image("rpool-kvm.img").path])
    }

    @Test func expect() throws {
        try check("zlabel expect --json", ["expect", "--json", try Fixture.image("rpool-kvm.img").path,
                                           "state=exported", "labels=4", "hostid=absent", "phys_pat=x", "bootfs=rpool/x"],
                  status: 1)
    }
}

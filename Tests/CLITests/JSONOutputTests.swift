import Foundation
import Testing
import TestSupport
import ZLabel

/// `--json` on the reporting commands that had only text: `targets`, `restore` and `repair-checksums`.
@Suite("--json on every reporting command")
struct JSONOutputTests {
    @Test func targets() throws {
        let run = try ZLabelCLI.run(["targets", "--json"])
        #expect(run.status == 0, "\(run)")
        let targets = try #require(try ExactJSON.parse(run.stdout)["targets"]?.array)
        #expect(targets.compactMap { $0["name"]?.string } == BootTarget.allCases.map(\.rawValue))
        for (json, target) in zip(targets, BootTarget.allCases) {
            #expect(json["summary"]?.string == target.info.summary)
            #expect(json["sets"]?.array?.compactMap(\.string) == target.info.sets)
            #expect(json["sources"]?.array?.compactMap(\.string) == target.info.sources)
            #expect(json["default_device"]?.string == target.defaultDevice.map { "\($0)" })
        }
    }

    @Test func restore() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        let backup = scratch.directory.file("kvm.backup")
        let set = try ZLabelCLI.run(["set", scratch.url.path, "--phys-path", "/xpvd/xdf@51712:a", "--backup", backup.path])
        #expect(set.status == 0, "\(set)")
        let first = try ZLabelCLI.run(["restore", scratch.url.path, "--from", backup.path, "--json"])
        #expect(first.status == 0, "\(first)")
        let doc = try ExactJSON.parse(first.stdout)
        #expect(doc["image"]?.string == scratch.url.path)
        #expect(doc["backup"]?.string == backup.path)
        #expect(doc["labels_restored"]?.int == 4)
        #expect(doc["already_original"]?.bool == false)
        // The image is byte for byte the fixture again, so a second restore writes nothing.
        let original = try Data(contentsOf: try Fixture.image("rpool-kvm.img"))
        #expect(try Data(contentsOf: scratch.url) == original)
        let again = try ExactJSON.parse(try ZLabelCLI.run(["restore", scratch.url.path, "--from", backup.path, "--json"]).stdout)
        #expect(again["labels_restored"]?.int == 0)
        #expect(again["already_original"]?.bool == true)
    }

    @Test func repairChecksums() throws {
        let scratch = try Fixture.scratchCopy("rpool-kvm.img")
        // A byte in the zero padding after label 1's packed nvlist: it still unpacks, its checksum fails.
        let damaged = UInt64(LabelLayout.labelSize + LabelLayout.configOffset + LabelLayout.configCapacity - 8)
        let handle = try FileHandle(forUpdating: scratch.url)
        try handle.seek(toOffset: damaged)
        try handle.write(contentsOf: Data([0x5A]))
        try handle.close()

        let dry = try ZLabelCLI.run(["repair-checksums", scratch.url.path, "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry)")
        let dryDoc = try ExactJSON.parse(dry.stdout)
        #expect(dryDoc["dry_run"]?.bool == true)
        #expect(dryDoc["repaired"]?.int == 0)
        #expect(dryDoc["labels"]?.array?.compactMap { $0["reason"]?.string }.filter { $0.contains("would") }.count == 1)

        let run = try ZLabelCLI.run(["repair-checksums", scratch.url.path, "--json"])
        #expect(run.status == 0, "\(run)")
        let doc = try ExactJSON.parse(run.stdout)
        #expect(doc["image"]?.string == scratch.url.path)
        #expect(doc["repaired"]?.int == 1)
        let labels = try #require(doc["labels"]?.array)
        #expect(labels.compactMap { $0["label"]?.int } == [0, 1, 2, 3])
        #expect(labels.map { $0["repaired"]?.bool == true } == [false, true, false, false])
        #expect(labels[1]["offset"]?.uint64 == UInt64(LabelLayout.labelSize + LabelLayout.configOffset))
        #expect(try ZLabelCLI.run(["verify", scratch.url.path]).status == 0)

        // Nothing left to repair: exit 1, and the JSON says so.
        let none = try ZLabelCLI.run(["repair-checksums", scratch.url.path, "--json"])
        #expect(none.status == 1)
        #expect(try ExactJSON.parse(none.stdout)["repaired"]?.int == 0)
    }
}

@Suite("version and completions")
struct VersionTests {
    @Test func versionIsTheLibraryConstant() throws {
        let run = try ZLabelCLI.run(["--version"])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText == LibraryVersion.current + "\n")
        #expect(LibraryVersion.current.split(separator: ".").count == 3)
        #expect(LibraryVersion.current.split(separator: ".").allSatisfy { UInt($0) != nil })
    }

    @Test("completion scripts know the expect command", arguments: ["bash", "zsh", "fish"])
    func completions(_ shell: String) throws {
        let run = try ZLabelCLI.run(["--generate-completion-script", shell])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.contains("expect"))
    }
}

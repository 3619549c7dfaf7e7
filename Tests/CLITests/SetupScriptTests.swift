import Foundation
import Testing
import TestSupport

/// scripts/setup-test-env.sh adds contrib only for the suites no other apt source gives it, in any sources
/// form, so apt never warns that a source is "configured multiple times".
@Suite("setup-test-env.sh: apt contrib")
struct SetupScriptTests {
    static func missing(_ files: [String: String]) throws -> String {
        let dir = try TemporaryDirectory()
        let apt = dir.url.appending(path: "apt")
        try FileManager.default.createDirectory(at: apt.appending(path: "sources.list.d"), withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: apt.appending(path: name), atomically: true, encoding: .utf8) }
        let run = try Run.run("/bin/bash", [Repository.root.appending(path: "scripts/setup-test-env.sh").path, "--contrib-missing"],
                              environment: ["ZLABEL_APT_DIR": apt.path])
        #expect(run.status == 0, "\(run)")
        return run.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let debian = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        + "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"

    @Test("an existing contrib is recognised in every form; only the suites without it are added")
    func recognisesContrib() throws {
        #expect(try Self.missing(["sources.list.d/debian.sources": Self.debian + "Components: main\n"])
                == "bookworm bookworm-updates bookworm-backports")
        // Debian 12's own file with several components: only backports is left to add.
        #expect(try Self.missing(["sources.list.d/debian.sources": Self.debian + "Components: main contrib non-free-firmware\n"
                                  + "\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n"])
                == "bookworm-backports")
        // Lower-case field names, a continuation line, tabs.
        #expect(try Self.missing(["sources.list.d/x.sources": "types: deb deb-src\nuris: http://x\nsuites:\tbookworm bookworm-updates\n"
                                  + "  bookworm-backports\ncomponents: main\n contrib\n"]) == "")
        // One-line form with options, in sources.list and in a .list.
        #expect(try Self.missing(["sources.list": "deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main contrib\n"
                                  + "# deb http://deb.debian.org/debian bookworm-updates main contrib\n",
                                  "sources.list.d/bp.list": "deb http://deb.debian.org/debian bookworm-backports main contrib\n"])
                == "bookworm-updates")
        // A disabled stanza or a deb-src line does not count; our own file does not count either.
        #expect(try Self.missing(["sources.list.d/a.sources": Self.debian + "Components: contrib\nEnabled: no\n",
                                  "sources.list": "deb-src http://deb.debian.org/debian bookworm-backports contrib\n",
                                  "sources.list.d/zlabel-contrib.sources": "Types: deb\nURIs: http://x\nSuites: bookworm\nComponents: contrib\n"])
                == "bookworm bookworm-updates bookworm-backports")
    }
}

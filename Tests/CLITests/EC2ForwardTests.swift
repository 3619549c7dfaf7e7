import Foundation
import Testing
import TestSupport

/// `zlabel ec2 …` runs the separate `zlabel-ec2` executable, so that `zlabel` itself links no HTTP code.
@Suite("zlabel ec2 forwards to zlabel-ec2")
struct EC2ForwardTests {
    @Test("help and subcommands come from zlabel-ec2, with the arguments passed unchanged")
    func forwards() throws {
        let help = try ZLabelCLI.run(["ec2", "--help"])
        #expect(help.status == 0, "\(help)")
        #expect(help.stdoutText.contains("USAGE: zlabel ec2 <subcommand>"), "\(help)")
        #expect(help.stdoutText.contains("upload"))
        let upload = try ZLabelCLI.run(["ec2", "upload", "--help"])
        #expect(upload.status == 0 && upload.stdoutText.contains("--endpoint-url"), "\(upload)")
        // A usage error is zlabel-ec2's own: its message and status.
        let bad = try ZLabelCLI.run(["ec2", "upload"])
        #expect(bad.status == 64, "\(bad)")
        #expect(bad.stderrText.contains("Missing expected argument '<image>'"), "\(bad)")
    }

    @Test("the label executable links no HTTP, TLS or XML library, nor Foundation's ICU")
    func labelExecutableIsLean() throws {
        let exe = try ZLabelCLI.executable()
        let symbols = try Run.run("nm", ["--defined-only", exe.path], timeout: 120)
        #expect(symbols.succeeded, "\(symbols)")
        for module in ["AsyncHTTPClient", "NIOCore", "NIOSSL", "AWSCore", "EBSUpload"] {
            #expect(!symbols.stdoutText.contains(module), "\(module) is linked into \(exe.lastPathComponent)")
        }
        let libraries = try Run.run("ldd", [exe.path], timeout: 60)
        #expect(!libraries.stdoutText.contains("libxml2") && !libraries.stdoutText.contains("libcurl"), "\(libraries)")
        // FoundationEssentials only: the full Foundation brings ICU, several MB of start-up memory.
        #expect(!libraries.stdoutText.contains("libFoundation.so") && !libraries.stdoutText.contains("ICU"), "\(libraries)")
    }

    @Test("a missing zlabel-ec2 is named, with how to build it")
    func missing() throws {
        let dir = try TemporaryDirectory(prefix: "zlabel-forward")
        let lone = dir.file("zlabel")
        try FileManager.default.copyItem(at: try ZLabelCLI.executable(), to: lone)
        let run = try Run.run(lone.path, ["ec2", "upload", "x.img"], environment: ["PATH": dir.url.path, "ZLABEL_EC2": ""])
        #expect(run.status == 127, "\(run)")
        #expect(run.stderrText.contains("zlabel-ec2") && run.stderrText.contains("swift build --product zlabel-ec2"), "\(run)")
    }
}

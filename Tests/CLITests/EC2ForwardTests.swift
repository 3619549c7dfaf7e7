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

    @Test("library option errors are printed with zlabel ec2's flag names, from the library's one range")
    func flagNames() throws {
        let workers = try ZLabelCLI.run(["ec2", "upload", "x.img", "--workers", "1025"])
        #expect(workers.status == 64, "\(workers)")
        #expect(workers.stderrText.contains("--workers must be 1 to 1024, not 1025"), "\(workers)")
        let timeout = try ZLabelCLI.run(["ec2", "upload", "x.img", "--snapshot-timeout", "5"])
        #expect(timeout.status == 64 && timeout.stderrText.contains("--snapshot-timeout must be 10 to 4320"), "\(timeout)")
        let both = try ZLabelCLI.run(["ec2", "upload", "x.img", "--encrypted", "--parent-snapshot", "snap-1"])
        #expect(both.status == 64, "\(both)")
        #expect(both.stderrText.contains("--encrypted/--kms-key-id cannot be combined with --parent-snapshot"), "\(both)")
        // Checked by the library at run time, before any request: printed as one line with the flag's name.
        let env = [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        ]
        let pv = try ZLabelCLI.run(
            ["ec2", "register", "--snapshot", "snap-1", "--name", "omnios", "--virtualization", "paravirtual",
             "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"], environment: env)
        #expect(pv.status == 64, "\(pv)")
        #expect(pv.stderrText.contains("zlabel: invalid AMI request: a paravirtual image needs a PV-GRUB kernel: --kernel-id aki-"), "\(pv)")
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

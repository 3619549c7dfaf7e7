import ArgumentParser
import CLISupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `zlabel ec2 …`: runs `zlabel-ec2` with the same arguments.
///
/// The EC2 commands live in an executable of their own, so that this one links no HTTP, TLS or XML code and
/// starts about as fast as `zdb`. `zlabel-ec2` is looked for next to this executable, then on `PATH`
/// (`ZLABEL_EC2` names it explicitly).
struct EC2Forward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ec2",
        abstract: "Upload an image into an EBS snapshot and register it as an AMI (runs zlabel-ec2).",
        discussion: "`zlabel ec2 --help` lists the EC2 commands.")

    @Argument(parsing: .captureForPassthrough, help: "The EC2 command and its arguments.")
    var arguments: [String] = []

    func run() throws {
        let candidates = Self.candidates()
        for path in candidates where access(path, X_OK) == 0 {
            var argv: [UnsafeMutablePointer<CChar>?] = (["zlabel ec2"] + arguments).map { strdup($0) }
            argv.append(nil)
            execv(path, argv)
            let reason = String(cString: strerror(errno))
            printError("zlabel: cannot run \(path): \(reason)")
            throw ExitCode(127)
        }
        printError("zlabel: the EC2 commands are in zlabel-ec2, which is not next to this zlabel or on PATH (looked at: \(candidates.joined(separator: ", "))); build it with `swift build --product zlabel-ec2`")
        throw ExitCode(127)
    }

    /// Where `zlabel-ec2` may be: `$ZLABEL_EC2`, next to this executable, then each `PATH` entry.
    static func candidates() -> [String] {
        var out: [String] = []
        if let explicit = getenv("ZLABEL_EC2").map({ String(cString: $0) }), !explicit.isEmpty { out.append(explicit) }
        if let dir = executableDirectory() { out.append(dir + "/zlabel-ec2") }
        if let path = getenv("PATH").map({ String(cString: $0) }) {
            out += path.split(separator: ":").map { "\($0)/zlabel-ec2" }
        }
        return out
    }

    static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        #if os(Linux)
            let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
            guard n > 0 else { return nil }
            let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
            guard let first = CommandLine.arguments.first, let resolved = realpath(first, &buffer) else { return nil }
            let path = String(cString: resolved)
        #endif
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}

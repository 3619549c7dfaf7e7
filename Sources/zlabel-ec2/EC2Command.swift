import AWSCore
import ArgumentParser
import CLISupport
import EBSUpload
import EC2AMI
import EC2Publish
import Foundation
import ZLabel

/// `zlabel-ec2`, run as `zlabel ec2 …`: the EC2 side (upload an image into an EBS snapshot, register an AMI).
///
/// It is an executable of its own so that `zlabel`, which only reads and writes labels, links no HTTP, TLS or
/// XML code and starts as fast as `zdb`; `zlabel ec2` hands its arguments to this program.
@main
struct EC2Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zlabel ec2",
        abstract: "Upload an image into an EBS snapshot and register it as an AMI.",
        subcommands: [EC2Upload.self, EC2Register.self, EC2PublishCommand.self, EC2CleanupScript.self]
    )

    /// Runs the command. Errors with a place in README.md's exit-code table end the process with one line on
    /// stderr and that status; anything else goes to the argument parser's handling.
    static func main() async { await runAsyncCommandLine(Self.self, exitStatus: exitStatus(for:)) }
}

/// The label side's statuses, and for the EC2 side: a publish refused before uploading is 3 (like a refused
/// edit), an AMI request EC2 would refuse is 64 (bad usage), and an AWS failure 1, each printed as one
/// `zlabel: …` line. Anything else is left to the argument parser.
func exitStatus(for error: any Error) -> Int32? {
    switch error {
    case is PublishRefusal: CommandExitStatus.refused
    case let e as FlagNamedError: e.status
    case let e as AMIError:
        if case .invalidRequest = e { CommandExitStatus.usage } else { 1 }
    case is SnapshotUploadError, is UploadFailure, is AWSServiceError, is TransportError, is AWSConfigurationError,
         is AWSResponseError, is InvalidOptionError:
        1
    case let e as ImageError where e.code == .other: 1  // the journal or state files, not the image
    default: CommandExitStatus.forLabelError(error)
    }
}

extension OptionName {
    /// The flag that sets the option on the `zlabel ec2` command line.
    var flag: String {
        switch self {
        case .workers: "--workers"
        case .volumeSize: "--volume-size"
        case .snapshotTimeout: "--snapshot-timeout"
        case .encrypted: "--encrypted"
        case .kmsKey: "--kms-key-id"
        case .parentSnapshot: "--parent-snapshot"
        case .resume: "--no-resume"
        case .copyRegions: "--copy-to"
        case .kernelID: "--kernel-id"
        case .imageName: "--name"
        case .region: "--region"
        case .endpointURL: "--endpoint-url"
        case .partition: "--partition"
        }
    }
}

/// A library error whose message was spelt with this command line's flags; printed as it is, with the
/// original error's exit status.
struct FlagNamedError: Error, CustomStringConvertible {
    var description: String
    var status: Int32
}

/// Runs a library check from `validate()`: an error naming options becomes a usage error that names flags.
func withFlagNames(_ body: () throws -> Void) throws {
    do { try body() } catch let e as any OptionNamingError {
        throw ValidationError(e.message(spelling: \.flag))
    }
}

/// Runs a command's work: an error naming options is printed with flag names and keeps its exit status.
func withFlagNames(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let e as any OptionNamingError {
        throw FlagNamedError(description: e.message(spelling: \.flag), status: exitStatus(for: e) ?? 1)
    }
}

/// How an upload runs; shared by `upload` and `publish`.
struct UploadRunOptions: ParsableArguments {
    @Option(help: "Blocks uploaded concurrently.")
    var workers = 16

    @Option(help: "Directory for resume journals, block manifests and publish state (default: $XDG_STATE_HOME/zlabel).")
    var stateDir: String?

    @Flag(help: "No progress line, even on a terminal.")
    var noProgress = false

    @Option(help: "Seconds allowed for one HTTP attempt.")
    var attemptTimeout = 30.0

    @Option(help: ArgumentHelp(
        "Attempts per request before giving up (default: AWS_MAX_ATTEMPTS, else the profile's max_attempts, else 10, and 3 when the endpoint cannot be reached at all).",
        valueName: "n"))
    var maxAttempts: Int?

    func validate() throws {
        try withFlagNames { try UploadOptions.workerRange.check(workers, .workers) }
        if attemptTimeout <= 0 { throw ValidationError("--attempt-timeout must be positive") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1") }
    }

    /// Upload options with the state directory, the worker count and the retry limits set from these and from
    /// the AWS configuration's retry_mode and max_attempts.
    func uploadOptions(_ configuration: AWSConfiguration) throws -> UploadOptions {
        var options = UploadOptions(stateDirectory: stateDir ?? UploadOptions.defaultStateDirectory())
        options.workers = workers
        options.policy.attemptTimeout = .milliseconds(Int(attemptTimeout * 1000))
        options.policy = try retryPolicy(options.policy, configuration: configuration, maxAttempts: maxAttempts)
        return options
    }
}

/// `policy` with the AWS configuration's retry settings (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS, the profile's
/// retry_mode and max_attempts) applied, then `--max-attempts`, which wins over both.
func retryPolicy(_ policy: RetryPolicy, configuration: AWSConfiguration, maxAttempts: Int?) throws -> RetryPolicy {
    var p = policy
    p.apply(try configuration.retrySettings())
    if let maxAttempts {
        p.maxAttempts = maxAttempts
        p.connectionMaxAttempts = maxAttempts
    }
    return p
}

/// Where AWS settings come from; shared by every `zlabel ec2` subcommand.
struct EC2AWSOptions: ParsableArguments {
    @Option(help: "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile, instance metadata).")
    var region: String?

    @Option(help: "Profile in the shared config and credentials files (default: AWS_PROFILE, else default).")
    var profile: String?

    @Option(
        name: .customLong("endpoint-url"),
        help: "Endpoint for every service (default: AWS_ENDPOINT_URL_EBS/_EC2, AWS_ENDPOINT_URL, the profile).")
    var endpointURL: String?

    @Flag(name: .shortAndLong, help: "Log details (endpoints, credential source, each request decision).")
    var verbose = false

    var clientOptions: AWSClientOptions {
        AWSClientOptions(profile: profile, region: region, endpointURL: endpointURL)
    }
}

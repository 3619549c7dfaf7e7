import AWSCore
import ArgumentParser

/// `zlabel-ec2`, run as `zlabel ec2 …`: the EC2 side (upload an image into an EBS snapshot, register an AMI).
///
/// It is an executable of its own so that `zlabel`, which only reads and writes labels, links no HTTP, TLS or
/// XML code and starts as fast as `zdb`; `zlabel ec2` hands its arguments to this program.
@main
struct EC2Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zlabel ec2",
        abstract: "Upload an image into an EBS snapshot and register it as an AMI.",
        subcommands: [EC2Upload.self]
    )
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

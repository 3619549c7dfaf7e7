import AWSCore
import ArgumentParser

/// `zlabel ec2 …`: the EC2 side (upload an image into an EBS snapshot, register an AMI).
struct EC2Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ec2",
        abstract: "Upload an image into an EBS snapshot and register it as an AMI.",
        subcommands: [EC2Upload.self, EC2Register.self, EC2PublishCommand.self, EC2CleanupScript.self]
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

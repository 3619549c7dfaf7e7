import ArgumentParser

/// `zlabel ec2 …`: the EC2 side (upload an image into an EBS snapshot, register an AMI).
struct EC2Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ec2",
        abstract: "Upload an image into an EBS snapshot and register it as an AMI.",
        subcommands: []
    )
}

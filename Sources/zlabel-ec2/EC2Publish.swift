import AWSCore
import ArgumentParser
import CLISupport
import EBSUpload
import EC2AMI
import EC2Publish
import Foundation
import ZLabel

/// `zlabel ec2 publish IMAGE --name NAME --target TARGET`: the whole way from a raw image to an AMI.
struct EC2PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Verify the labels, upload the image with the target's labels overlaid, register the AMI.",
        discussion: """
            The image file is only read: the labels the target needs (as `zlabel set --target` would write \
            them) replace the image's own in the uploaded blocks. Then the snapshot is registered as an AMI, \
            waited for, copied and shared as with `zlabel ec2 register`. Prints the AMI id alone (one line \
            per region with --copy-to), or JSON. An interrupted publish continues when the same command is \
            run again: the upload resumes, a finished snapshot is not uploaded again, and an AMI already \
            registered under the name is used.
            """)

    @Argument(help: "The disk image: a raw file or block device, or a qcow2, VMDK, VHD or VHDX container (its virtual disk is uploaded), or a zstd-, xz- or gzip-compressed raw image (decompressed as it is read, never to disk).")
    var image: String

    @Option(help: "The boot target: \(BootTarget.allCases.map(\.rawValue).joined(separator: ", ")) (see `zlabel targets`).")
    var target: String

    @Option(help: "The partition or slice holding the vdev (p1, s0, …), when the image has several.")
    var partition: String?

    @Flag(name: .customLong("remove-hostid"), help: "Also remove the hostid from the labels.")
    var removeHostid = false

    @Option(help: "Set this devid instead of removing it (only when it is known to match the instance's disk).")
    var devid: String?

    @OptionGroup var aws: EC2AWSOptions

    @OptionGroup var ami: AMIOptions

    @OptionGroup var transfer: UploadRunOptions

    func run() async throws { try await withFlagNames(perform) }

    func perform() async throws {
        let bootTarget = try BootTarget(named: target)
        if let v = ami.virtualization, v != bootTarget.virtualization.rawValue {
            throw ValidationError("target \(target) boots \(bootTarget.virtualization.rawValue), not \(v)")
        }
        // The variant is decided from the image by the publisher; hd00 is a placeholder.
        var amiRequest = try ami.request(snapshotID: "snap-00000000", pvGrub: .hd00)
        if bootTarget == .ec2Nitro && !ami.ena { amiRequest.registration.enaSupport = true }
        let upload = try transfer.uploadOptions(AWSConfiguration(environment: .process, options: aws.clientOptions))
        var request = PublishRequest(imagePath: image, target: bootTarget, ami: amiRequest, upload: upload)
        request.selector = partition.map { RegionSelector.named($0) }
        request.removeHostid = removeHostid
        request.devid = devid

        let publishRequest = request
        let edit = try Publisher.planLabels(publishRequest)
        for note in edit.notes { printError("target: \(note)") }
        let console = EC2Console(verbose: aws.verbose, progress: !transfer.noProgress && !ami.json && EC2Console.stderrIsTerminal)
        let log = console.log
        let policy = upload.policy
        let result = try await EC2Setup.withRegistrar(aws: aws, log: log, policy: policy, connections: transfer.workers + 2) {
            session, registrar in
            let uploader = SnapshotUploader(
                ebs: EBSClient(client: try session.client(for: .ebs)), ec2: registrar.home.ec2, log: log)
            defer { console.finishProgress() }
            return try await Publisher(uploader: uploader, registrar: registrar)
                .publish(publishRequest, progress: console.progressHandler)
        }
        console.finishProgress()
        try ami.printResult(result, ids: result.ami.images.map(\.imageID))
    }
}

/// `zlabel ec2 cleanup-script`: the instance clean-up before making an AMI from a running OmniOS instance.
struct EC2CleanupScript: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup-script",
        abstract: "Print a POSIX sh script that cleans a running OmniOS instance before an AMI is made of it.",
        discussion: """
            Save it, read it, copy it to the instance and run `sh cleanup.sh` to see what it would remove, \
            then `sh cleanup.sh --yes` as root to remove it and power off. It removes the ssh host keys, \
            boot environments that are not active now or on reboot, system and SMF logs, the fault \
            manager's logs, users' ssh authorized keys and root's shell history.
            """)

    func run() {
        print(InstanceCleanupScript.text)
    }
}

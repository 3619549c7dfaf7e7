import AWSCore
import ArgumentParser
import EBSUpload
import Foundation

/// `zlabel ec2 upload IMAGE`: the image into a new EBS snapshot, through the EBS direct APIs.
struct EC2Upload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Upload a disk image into a new EBS snapshot (EBS direct APIs; no instance, no S3).",
        discussion: """
            Prints the snapshot id alone on standard output (or a JSON object with --json); everything else \
            goes to standard error. Holes of a sparse image are never read; all-zero blocks are not sent \
            unless the snapshot is encrypted. An interrupted upload continues into the same pending snapshot \
            when the same command is run again (even when it was killed before it learnt the snapshot id: the \
            snapshot carries the tag zlabel:client-token, which the rerun looks for). Run again after it \
            finished, the same command names the same snapshot, while it exists, without sending anything; \
            --no-resume starts a new one.
            """
    )

    @Argument(help: "The disk image: a raw file or block device, or a qcow2, VMDK, VHD or VHDX container (its virtual disk is uploaded), or a zstd-, xz- or gzip-compressed raw image (decompressed as it is read, never to disk).")
    var image: String

    @OptionGroup var aws: EC2AWSOptions

    @OptionGroup var transfer: UploadRunOptions

    @Option(help: "Snapshot description (default: the image file name).")
    var description: String?

    @Option(name: .customLong("tag"), help: "A snapshot tag KEY=VALUE (repeatable).")
    var tags: [String] = []

    @Option(help: "Volume size in GiB (default: the image size rounded up to whole GiB).")
    var volumeSize: Int?

    @Option(help: "Parent snapshot for an incremental upload: only blocks that differ are sent.")
    var parentSnapshot: String?

    @Flag(help: "Encrypt the snapshot (zero blocks are then uploaded too).")
    var encrypted = false

    @Option(help: "KMS key ARN for encryption (implies --encrypted).")
    var kmsKeyId: String?

    @Flag(help: "Wait until EC2 reports the snapshot completed.")
    var wait = false

    @Flag(help: "Print a JSON result object instead of the snapshot id.")
    var json = false

    @Flag(help: "Start a new snapshot even if an earlier run for this image could be continued or reused.")
    var noResume = false

    @Option(help: "Minutes after which AWS cancels a snapshot that was not completed (10-4320).")
    var snapshotTimeout = 60

    func validate() throws {
        for t in tags where !t.contains("=") || t.hasPrefix("=") {
            throw ValidationError("--tag takes KEY=VALUE, got \"\(t)\"")
        }
        try withFlagNames { try snapshotOptions(UploadOptions(stateDirectory: "")).validate() }
    }

    /// `options` with what this command says about the snapshot.
    func snapshotOptions(_ options: UploadOptions) -> UploadOptions {
        var options = options
        options.volumeSizeGiB = volumeSize
        options.parentSnapshotID = parentSnapshot
        options.encrypted = encrypted
        options.kmsKeyARN = kmsKeyId
        options.timeoutMinutes = snapshotTimeout
        options.workers = transfer.workers
        return options
    }

    func run() async throws { try await withFlagNames(perform) }

    func perform() async throws {
        let console = EC2Console(verbose: aws.verbose, progress: !transfer.noProgress && !json && EC2Console.stderrIsTerminal)
        let log = console.log
        let configuration = try AWSConfiguration(environment: .process, options: aws.clientOptions)
        var options = snapshotOptions(try transfer.uploadOptions(configuration))
        options.description = description ?? URL(fileURLWithPath: image).lastPathComponent
        options.tags = tags.map { t in
            let eq = t.firstIndex(of: "=")!
            return SnapshotTag(key: String(t[..<eq]), value: String(t[t.index(after: eq)...]))
        }
        options.wait = wait
        options.resume = !noResume

        let file = try UploadImage.open(path: image)
        // A thread per worker, and two for the calls that run beside the blocks (credentials, DescribeSnapshots).
        let transportConfig = SocketTransport.Configuration(
            maxThreads: transfer.workers + 2, maxIdleConnectionsPerHost: transfer.workers + 2,
            readTimeout: options.policy.attemptTimeout, caBundle: configuration.caBundle)
        let result = try await SocketTransport.withTransport(configuration: transportConfig) { transport in
            let session = try await AWSSession(configuration: configuration, transport: transport, log: log)
            if aws.verbose {
                let c = try await session.credentialChain.credentials()
                log.debug("credentials from \(c.source)")
            }
            let uploader = SnapshotUploader(
                ebs: EBSClient(client: try session.client(for: .ebs)),
                ec2: EC2Client(client: try session.client(for: .ec2), policy: options.policy), log: log)
            defer { console.finishProgress() }
            return try await uploader.upload(image: file, options: options, progress: console.progressHandler)
        }
        console.finishProgress()
        if json {
            try printJSONDocument(result)
        } else {
            print(result.snapshotID)
        }
    }
}

import AWSCore
import ArgumentParser
import EC2AMI
import Foundation

/// The AMI options shared by `zlabel ec2 register` and `zlabel ec2 publish`.
struct AMIOptions: ParsableArguments {
    @Option(help: "AMI name: 3-128 characters from letters, digits and ( ) [ ] space . / - ' @ _.")
    var name: String

    @Option(help: "AMI description.")
    var description: String?

    @Option(help: "Architecture: x86_64 or arm64 (always sent; the API would default to i386).")
    var arch: String = ImageArchitecture.x86_64.rawValue

    @Option(help: "hvm or paravirtual (always sent; the API would default to paravirtual).")
    var virtualization: String?

    @Option(name: .customLong("kernel-id"), help: "Paravirtual only: a PV-GRUB kernel aki-…, or auto to look up Amazon's.")
    var kernelID: String?

    @Option(help: "Root device name (default: /dev/xvda for HVM, /dev/sda for paravirtual).")
    var rootDevice: String?

    @Option(help: "Root volume type: standard, gp2 or gp3.")
    var volumeType: String = RootVolumeType.gp3.rawValue

    @Option(help: "Root volume size in GiB (default: the snapshot's size).")
    var volumeSize: Int?

    @Flag(help: "Mark the AMI as having an ENA driver (HVM; Nitro instances need it for networking).")
    var ena = false

    @Option(help: "HVM firmware: legacy-bios or uefi (default: EC2's choice).")
    var bootMode: String?

    @Flag(name: .customLong("imds-v2"), help: "Instances launched from the AMI require IMDSv2.")
    var imdsV2 = false

    @Option(name: .customLong("tag"), help: "An AMI tag KEY=VALUE (repeatable; copies get them too).")
    var tags: [String] = []

    @Option(name: .customLong("copy-to"), help: "Copy the AMI to this region (repeatable).")
    var copyTo: [String] = []

    @Option(name: .customLong("share"), help: "Let this 12-digit account launch the AMI and its copies (repeatable).")
    var share: [String] = []

    @Flag(help: "Wait until the AMI and its copies are available (--copy-to and --share wait for what they need).")
    var wait = false

    @Option(help: "Minutes to wait for an image before giving up.")
    var waitTimeout = 60

    @Flag(help: "Print a JSON result object instead of the AMI ids.")
    var json = false

    func validate() throws {
        if waitTimeout < 1 { throw ValidationError("--wait-timeout must be at least 1 minute") }
    }

    /// The request, with `snapshotID` as the root volume's snapshot; `pvGrub` is the variant `--kernel-id auto`
    /// looks up.
    func request(snapshotID: String, pvGrub: PVGrubVariant) throws -> AMIRequest {
        var r = ImageRegistration(name: name, snapshotID: snapshotID)
        r.description = description
        guard let a = ImageArchitecture(rawValue: arch) else { throw ValidationError("--arch is x86_64 or arm64") }
        r.architecture = a
        if let virtualization {
            guard let v = Virtualization(rawValue: virtualization) else {
                throw ValidationError("--virtualization is hvm or paravirtual")
            }
            r.virtualization = v
        }
        switch kernelID {
        case nil: r.kernel = .none
        case "auto"?: r.kernel = .automatic(pvGrub)
        case let id?: r.kernel = .id(id)
        }
        if virtualization == nil && r.kernel != .none { r.virtualization = .paravirtual }
        r.rootDeviceName = rootDevice
        guard let t = RootVolumeType(rawValue: volumeType) else { throw ValidationError("--volume-type is standard, gp2 or gp3") }
        r.volumeType = t
        r.volumeSizeGiB = volumeSize
        r.enaSupport = ena
        if let bootMode {
            guard let m = BootMode(rawValue: bootMode) else { throw ValidationError("--boot-mode is legacy-bios or uefi") }
            r.bootMode = m
        }
        r.imdsV2Only = imdsV2
        r.tags = try tags.map { try ImageTag(parsing: $0) }
        var request = AMIRequest(registration: r)
        request.copyRegions = copyTo
        request.shareWith = share
        request.wait = wait
        request.schedule.timeout = .seconds(waitTimeout * 60)
        request.snapshotWait.timeout = .seconds(waitTimeout * 60)
        return request
    }

    /// Prints the result: the AMI ids one per line, or JSON.
    func printResult<T: Encodable>(_ value: T, ids: [String]) throws {
        if json {
            try printJSONDocument(value)
        } else {
            for id in ids { print(id) }
        }
    }
}

/// Builds the AWS session and the AMI registrar for an `ec2` subcommand.
enum EC2Setup {
    static func withRegistrar<R: Sendable>(
        aws: EC2AWSOptions, log: AWSLog, policy: RetryPolicy, connections: Int = 4,
        _ body: @Sendable (AWSSession, AMIRegistrar) async throws -> R
    ) async throws -> R {
        let configuration = try AWSConfiguration(environment: .process, options: aws.clientOptions)
        let transportConfig = SocketTransport.Configuration(
            maxThreads: connections, maxIdleConnectionsPerHost: connections, readTimeout: policy.attemptTimeout,
            caBundle: configuration.caBundle)
        return try await SocketTransport.withTransport(configuration: transportConfig) { transport in
            let session = try await AWSSession(configuration: configuration, transport: transport, log: log)
            if aws.verbose {
                let c = try await session.credentialChain.credentials()
                log.debug("credentials from \(c.source)")
            }
            let home = AMIClient(ec2: EC2Client(client: try session.client(for: .ec2), policy: policy))
            let registrar = AMIRegistrar(home: home) { region in
                AMIClient(ec2: try session.ec2Client(region: region, policy: policy))
            }
            return try await body(session, registrar)
        }
    }
}

/// `zlabel ec2 register --snapshot ID --name NAME …`: an AMI from an EBS snapshot.
struct EC2Register: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register an AMI from an EBS snapshot; optionally wait, copy it to other regions and share it.",
        discussion: """
            Prints the AMI id alone on standard output, then the id of each copy (one line per region, in \
            --copy-to order), or a JSON object with --json. A pending snapshot is waited for first. Running \
            the same command again finds the AMI it registered (by name, backed by the same snapshot) instead \
            of registering a second one.
            """)

    @OptionGroup var aws: EC2AWSOptions

    @Option(help: "The EBS snapshot (snap-…) that becomes the root volume.")
    var snapshot: String

    @OptionGroup var ami: AMIOptions

    @Option(name: .customLong("pv-grub"), help: "With --kernel-id auto: hd0 (file system on the whole disk) or hd00 (partition 1).")
    var pvGrub: String = PVGrubVariant.hd00.rawValue

    @Option(help: ArgumentHelp(
        "Attempts per request before giving up (default: AWS_MAX_ATTEMPTS, else the profile's max_attempts, else 10, and 3 when the endpoint cannot be reached at all).",
        valueName: "n"))
    var maxAttempts: Int?

    func run() async throws { try await withFlagNames(perform) }

    func perform() async throws {
        guard let variant = PVGrubVariant(rawValue: pvGrub) else { throw ValidationError("--pv-grub is hd0 or hd00") }
        let request = try ami.request(snapshotID: snapshot, pvGrub: variant)
        let console = EC2Console(verbose: aws.verbose, progress: false)
        let policy = try retryPolicy(
            RetryPolicy(), configuration: AWSConfiguration(environment: .process, options: aws.clientOptions),
            maxAttempts: maxAttempts.map { max(1, $0) })
        let result = try await EC2Setup.withRegistrar(aws: aws, log: console.log, policy: policy) { _, registrar in
            try await registrar.run(request)
        }
        try ami.printResult(result, ids: result.images.map(\.imageID))
    }
}

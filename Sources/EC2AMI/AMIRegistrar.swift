// Register → wait → share → copy → wait → share, idempotently.
//
// RegisterImage has no client token, so a rerun (or a retry whose answer was lost) is recognised by the AMI
// name, which EC2 keeps unique per account and region: an image of that name backed by the same snapshot is
// the one we made and is used again; one backed by another snapshot is a conflict the user must resolve.
// CopyImage takes a client token, derived from the source image and the destination region, and a copy is
// also looked up by name in its region first.

public import AWSCore
import Crypto
import Foundation

/// What to register and where it goes afterwards.
public struct AMIRequest: Sendable {
    /// The RegisterImage fields.
    public var registration: ImageRegistration
    /// Regions to copy the AMI to (not the home region).
    public var copyRegions: [String] = []
    /// 12-digit accounts that may launch the AMI and its copies.
    public var shareWith: [String] = []
    /// Wait until the AMI (and its copies) are available. Copying and sharing wait for the images they act on
    /// whatever this says.
    public var wait = false
    /// Polling for images.
    public var schedule = WaitSchedule()
    /// Polling for a snapshot that is still pending when registration starts.
    public var snapshotWait = WaitSchedule(initialInterval: .seconds(2), maxInterval: .seconds(2))

    /// A request for `registration` with nothing else.
    public init(registration: ImageRegistration) { self.registration = registration }

    /// Checks the registration, the regions and the accounts.
    public func validate(homeRegion: String) throws(AMIError) {
        try registration.validate()
        var seen = Set<String>()
        for r in copyRegions {
            guard AWSConfiguration.isValidRegion(r) else { throw .invalidRequest("\"\(r)\" is not a region name") }
            guard r != homeRegion else { throw .invalidRequest("\(option: .copyRegions) \(r) is the region the AMI is registered in") }
            guard seen.insert(r).inserted else { throw .invalidRequest("\(option: .copyRegions) \(r) is given twice") }
        }
        for a in shareWith where !AMIClient.isAccountID(a) {
            throw .invalidRequest("\"\(a)\" is not a 12-digit AWS account id")
        }
    }
}

/// One AMI in one region.
public struct RegisteredImage: Sendable, Equatable, Codable {
    /// The region.
    public var region: String
    /// `ami-…`.
    public var imageID: String
    /// The state last seen (`available` after a wait).
    public var state: String
    /// True when an earlier run had made it and it was used again.
    public var reused: Bool
    /// Accounts it is shared with.
    public var sharedWith: [String]
}

/// What a registration did.
public struct AMIResult: Sendable, Equatable, Codable {
    /// The snapshot behind the AMI.
    public var snapshotID: String
    /// The AMI name.
    public var name: String
    /// The kernel of a paravirtual AMI.
    public var kernelID: String?
    /// Where the kernel id came from (`documented-table` when DescribeImages listed none and AWS's published
    /// table supplied it); `nil` for HVM.
    public var kernelSource: KernelSource?
    /// The AMI in its home region first, then each copy in `--copy-to` order.
    public var images: [RegisteredImage]

    /// Creates a result.
    public init(snapshotID: String, name: String, kernelID: String?, kernelSource: KernelSource? = nil,
                images: [RegisteredImage]) {
        self.snapshotID = snapshotID
        self.name = name
        self.kernelID = kernelID
        self.kernelSource = kernelSource
        self.images = images
    }
}

/// Registers an AMI, waits for it, shares it and copies it, reusing what an interrupted run already made.
public struct AMIRegistrar: Sendable {
    /// The client of the home region.
    public let home: AMIClient
    /// Makes a client for another region (same credentials and endpoint configuration).
    public let clientForRegion: @Sendable (String) throws -> AMIClient

    /// Creates a registrar.
    public init(home: AMIClient, clientForRegion: @escaping @Sendable (String) throws -> AMIClient) {
        self.home = home
        self.clientForRegion = clientForRegion
    }

    var log: AWSLog { home.log }

    /// Runs the request.
    ///
    /// - Throws: ``AMIError``, `SnapshotWaitError`, `AWSServiceError`, `AWSResponseError` or a transport
    ///   error. Everything made before the failure stays, and running the same request again continues.
    public func run(_ request: AMIRequest) async throws -> AMIResult {
        try request.validate(homeRegion: home.region)
        var reg = request.registration

        // The snapshot must exist and be completed.
        let snapshot = try await usableSnapshot(reg.snapshotID, schedule: request.snapshotWait)
        if let size = reg.volumeSizeGiB, let snapSize = snapshot.volumeSize, size < snapSize {
            throw AMIError.invalidRequest("\(option: .volumeSize) \(size) GiB is smaller than the snapshot (\(snapSize) GiB)")
        }

        // The kernel of a paravirtual image.
        var kernelID: String?
        var kernelSource: KernelSource?
        switch reg.kernel {
        case .none: break
        case .id(let id):
            kernelID = id
            kernelSource = .given
        case .automatic(let variant):
            do {
                kernelID = try await home.findPVGrubKernel(architecture: reg.architecture, variant: variant).imageID
                kernelSource = .describeImages
            } catch AMIError.kernelNotFound(let region, let arch, let v) {
                // DescribeImages lists no Amazon PV-GRUB here; AWS's published table may still name one.
                guard let entry = PVGrubTable.kernel(region: region, architecture: arch) else {
                    throw AMIError.kernelNotFound(region: region, architecture: arch, variant: v)
                }
                log.warning("DescribeImages lists no Amazon PV-GRUB kernel (pv-grub-\(v)_*, \(arch)) in \(region); using "
                    + "\(entry.imageID) (\(entry.name)) from AWS's published table (\(PVGrubTable.source))")
                kernelID = entry.imageID
                kernelSource = .documentedTable
            }
        }
        if let kernelID { reg.kernel = .id(kernelID) }

        // Register, or find what an earlier run registered.
        var (imageID, reused) = try await registerOnce(reg, kernelID: kernelID)
        var state = "pending"
        let needsAvailable = request.wait || !request.copyRegions.isEmpty || !request.shareWith.isEmpty
        if needsAvailable {
            state = try await home.waitUntilAvailable(imageID: imageID, schedule: request.schedule).state
        } else if reused {
            state = try await home.image(id: imageID).state
        }
        if !request.shareWith.isEmpty {
            try await home.addLaunchPermission(imageID: imageID, accounts: request.shareWith)
            log.info("\(imageID) in \(home.region): launch permission for \(request.shareWith.joined(separator: ", "))")
        }
        var images = [RegisteredImage(region: home.region, imageID: imageID, state: state, reused: reused,
                                      sharedWith: request.shareWith)]
        CrashPoint.reach(.registered)

        // Copies.
        for region in request.copyRegions {
            let dest = try clientForRegion(region)
            let existing = try await dest.ownImages(named: reg.name)
            if let found = existing.first {
                (imageID, reused) = (found.imageID, true)
                log.info("\(found.imageID) in \(region) is named \(reg.name) already: using it as the copy")
            } else {
                let token = Self.copyToken(source: images[0].imageID, region: region)
                imageID = try await dest.copyImage(
                    sourceImageID: images[0].imageID, sourceRegion: home.region, name: reg.name,
                    description: reg.description, tags: reg.tags, clientToken: token)
                CrashPoint.reach(.copyAnswered)
                reused = false
                log.info("copying \(images[0].imageID) to \(region) as \(imageID)")
            }
            images.append(RegisteredImage(region: region, imageID: imageID, state: "pending", reused: reused,
                                          sharedWith: request.shareWith))
        }
        for i in images.indices.dropFirst() {
            let dest = try clientForRegion(images[i].region)
            if request.wait || !request.shareWith.isEmpty {
                images[i].state = try await dest.waitUntilAvailable(imageID: images[i].imageID, schedule: request.schedule).state
            }
            if !request.shareWith.isEmpty {
                try await dest.addLaunchPermission(imageID: images[i].imageID, accounts: request.shareWith)
            }
        }
        return AMIResult(snapshotID: reg.snapshotID, name: reg.name, kernelID: kernelID, kernelSource: kernelSource,
                         images: images)
    }

    /// The snapshot, completed (waiting while it is pending).
    func usableSnapshot(_ id: String, schedule: WaitSchedule) async throws -> EC2Snapshot {
        let listed: [EC2Snapshot]
        do {
            listed = try await home.ec2.describeSnapshots(ids: [id])
        } catch let e as AWSServiceError where e.isNotFound {
            throw AMIError.snapshotUnusable(snapshotID: id, reason: "it does not exist in \(home.region) (\(e.code))")
        }
        guard let s = listed.first(where: { $0.snapshotID == id }) else {
            throw AMIError.snapshotUnusable(snapshotID: id, reason: "DescribeSnapshots in \(home.region) does not list it")
        }
        switch s.state {
        case "completed": return s
        case "pending":
            log.info("\(id) is pending; waiting until it is completed")
            do {
                return try await home.ec2.waitForSnapshot(id: id, interval: schedule.initialInterval, timeout: schedule.timeout)
            } catch let e as SnapshotWaitError {
                throw AMIError.snapshotUnusable(snapshotID: id, reason: e.message)
            }
        default:
            throw AMIError.snapshotUnusable(snapshotID: id, reason: "its state is \(s.state)" + (s.stateMessage.map { ": \($0)" } ?? ""))
        }
    }

    /// RegisterImage, unless an image of this name already exists; a duplicate-name answer (a retry of a
    /// request that had succeeded) is resolved the same way.
    func registerOnce(_ reg: ImageRegistration, kernelID: String?) async throws -> (imageID: String, reused: Bool) {
        if let id = try await existingImage(reg) {
            log.info("\(id) in \(home.region) is \(reg.name) on \(reg.snapshotID) already: using it")
            return (id, true)
        }
        do {
            let id = try await home.registerImage(reg, kernelID: kernelID)
            CrashPoint.reach(.registerAnswered)
            log.info("registered \(id) in \(home.region) (\(reg.virtualization.rawValue), \(reg.architecture.rawValue)"
                     + (kernelID.map { ", kernel \($0)" } ?? "") + ")")
            return (id, false)
        } catch let e as AWSServiceError where e.code == "InvalidAMIName.Duplicate" {
            guard let id = try await existingImage(reg) else { throw e }
            log.info("\(id) in \(home.region) was registered by an attempt whose answer was lost: using it")
            return (id, true)
        }
    }

    /// This account's image called `reg.name`, when it is backed by `reg.snapshotID`.
    ///
    /// - Throws: ``AMIError/nameTaken(name:imageID:snapshotID:)`` when the name belongs to another snapshot's AMI.
    func existingImage(_ reg: ImageRegistration) async throws -> String? {
        guard let found = try await home.ownImages(named: reg.name).first else { return nil }
        guard found.rootSnapshotID == reg.snapshotID else {
            throw AMIError.nameTaken(name: reg.name, imageID: found.imageID, snapshotID: found.rootSnapshotID)
        }
        return found.imageID
    }

    /// A CopyImage client token: the same for the same source and destination, at most 64 characters.
    static func copyToken(source: String, region: String) -> String {
        let digest = SHA256.hash(data: Array("\(source)>\(region)".utf8))
        return "zlabel-" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}

extension AWSSession {
    /// An EC2 client for `region` with this session's credentials, transport and endpoint configuration.
    public func ec2Client(region: String, policy: RetryPolicy = RetryPolicy()) throws -> EC2Client {
        guard AWSConfiguration.isValidRegion(region) else {
            throw AWSConfigurationError("region \"\(region)\" is not a valid region name")
        }
        let (endpoint, _) = try configuration.endpoint(for: .ec2, region: region)
        let chain = credentialChain
        let service = AWSServiceClient(
            service: .ec2, region: region, endpoint: endpoint, transport: transport,
            credentials: { try await chain.credentials() }, log: log)
        return EC2Client(client: service, policy: policy)
    }
}

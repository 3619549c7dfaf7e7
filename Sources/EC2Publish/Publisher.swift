// `zlabel ec2 publish`: image → edited labels (overlaid in flight) → snapshot → AMI → copies.
//
// Resuming: the upload journal continues an interrupted upload; once the snapshot exists its id is kept in a
// small state file (STATE/publish/KEY.json, KEY from the image's identity, the overlay, the AMI name and the
// region), so a rerun after a failed registration does not upload again; and the registrar finds an AMI it had
// already registered by name. The image file is only ever read.

import AWSCore
public import EBSUpload
public import EC2AMI
import Crypto
import Foundation
public import ZLabel

/// What to publish.
public struct PublishRequest: Sendable {
    /// The raw disk image.
    public var imagePath: String
    /// Which vdev, when the image holds several.
    public var selector: RegionSelector?
    /// The boot target whose label values the snapshot gets.
    public var target: BootTarget
    /// Also remove the hostid from the labels.
    public var removeHostid = false
    /// A devid to set instead of removing it.
    public var devid: String?
    /// The AMI: name, description, architecture, root device, volume, tags… The snapshot id, the
    /// virtualization type and an automatic kernel's variant are filled in by the publisher.
    public var ami: AMIRequest
    /// Upload settings (state directory, workers, retry policy…); `overlay` and `wait` are set by the publisher.
    public var upload: UploadOptions

    /// A request with the given parts.
    public init(imagePath: String, target: BootTarget, ami: AMIRequest, upload: UploadOptions) {
        self.imagePath = imagePath
        self.target = target
        self.ami = ami
        self.upload = upload
    }
}

/// What a publish did.
public struct PublishResult: Sendable, Codable, Equatable {
    /// The image.
    public var imagePath: String
    /// The boot target.
    public var target: String
    /// The label values the snapshot carries.
    public var physPath: String?
    /// The new `path`.
    public var path: String?
    /// Label config areas replaced in the upload.
    public var labelsOverlaid: Int
    /// The upload (nil when an earlier run's snapshot was used).
    public var upload: UploadResult?
    /// The registration.
    public var ami: AMIResult
}

/// Runs the whole publish.
public struct Publisher: Sendable {
    /// Uploads the snapshot.
    public let uploader: SnapshotUploader
    /// Registers, copies and shares.
    public let registrar: AMIRegistrar

    /// Creates a publisher.
    public init(uploader: SnapshotUploader, registrar: AMIRegistrar) {
        self.uploader = uploader
        self.registrar = registrar
    }

    var log: AWSLog { uploader.log }

    /// Plans the label edit, for showing before anything is sent.
    public static func planLabels(_ request: PublishRequest) throws -> PlannedLabelEdit {
        try PlannedLabelEdit.plan(
            imagePath: request.imagePath, selector: request.selector, target: request.target,
            rootDevice: request.ami.registration.rootDeviceName, devid: request.devid,
            removeHostid: request.removeHostid)
    }

    /// The AMI request with what the target and the image decide filled in.
    ///
    /// - Throws: `AMIError.invalidRequest` when the registration contradicts the target.
    public static func amiRequest(for request: PublishRequest, edit: PlannedLabelEdit, snapshotID: String) throws(AMIError) -> AMIRequest {
        var ami = request.ami
        let wanted = request.target.virtualization
        ami.registration.snapshotID = snapshotID
        ami.registration.virtualization = wanted
        if wanted == .paravirtual {
            if ami.registration.kernel == .none || ami.registration.kernel == .automatic(.hd0)
                || ami.registration.kernel == .automatic(.hd00)
            {
                ami.registration.kernel = .automatic(edit.pvGrubVariant)
            }
        } else if ami.registration.kernel != .none {
            throw .invalidRequest("target \(request.target.rawValue) boots HVM, which takes no kernel id")
        }
        if request.target == .ec2Nitro && ami.registration.rootDeviceName == nil {
            ami.registration.rootDeviceName = Virtualization.hvm.defaultRootDevice
        }
        return ami
    }

    /// Verifies, plans, uploads with the edited labels overlaid, registers, waits, shares and copies.
    ///
    /// - Parameters:
    ///   - request: the image, the target and the AMI to make.
    ///   - progress: upload progress.
    /// - Throws: ``PublishRefusal`` before anything is sent; the upload's and the registrar's errors after.
    ///   Running the same request again continues from where it stopped.
    public func publish(
        _ request: PublishRequest, progress: (@Sendable (UploadProgress) -> Void)? = nil
    ) async throws -> PublishResult {
        let edit = try Self.planLabels(request)
        for note in edit.notes { log.debug("target: \(note)") }
        // Check the AMI fields before the upload, with a placeholder snapshot id.
        let precheck = try Self.amiRequest(for: request, edit: edit, snapshotID: "snap-00000000")
        try precheck.validate(homeRegion: registrar.home.region)

        let file = try UploadImage.open(path: request.imagePath)
        let statePath = Self.statePath(request, identity: file.identity, overlay: edit.overlay, region: registrar.home.region)
        var upload: UploadResult?
        var snapshotID: String
        if let saved = PublishState.load(statePath), let id = try await reusableSnapshot(saved.snapshotID) {
            snapshotID = id
            log.info("using \(id), uploaded by an earlier run of this publish")
        } else {
            var options = request.upload
            options.overlay = edit.overlay
            options.wait = true
            if options.description == nil { options.description = request.ami.registration.name }
            let result = try await uploader.upload(image: file, options: options, progress: progress)
            upload = result
            snapshotID = result.snapshotID
            try PublishState(snapshotID: snapshotID).save(statePath)
            CrashPoint.reach(.publishStateSaved)
        }

        let ami = try Self.amiRequest(for: request, edit: edit, snapshotID: snapshotID)
        let registered = try await registrar.run(ami)
        CrashPoint.reach(.published)
        var phys: String?
        var path: String?
        if case .set(let v) = edit.targetPlan.physPath { phys = v }
        if case .set(let v) = edit.targetPlan.path { path = v }
        return PublishResult(
            imagePath: request.imagePath, target: request.target.rawValue, physPath: phys, path: path,
            labelsOverlaid: edit.overlay.patches.count, upload: upload, ami: registered)
    }

    /// The snapshot id when EC2 still has it pending or completed.
    func reusableSnapshot(_ id: String) async throws -> String? {
        do {
            let s = try await registrar.home.ec2.describeSnapshots(ids: [id]).first(where: { $0.snapshotID == id })
            if let s, s.state == "completed" || s.state == "pending" { return id }
            log.info("the earlier run's snapshot \(id) is \(s?.state ?? "gone"); uploading again")
        } catch let e as AWSServiceError where e.isNotFound {
            log.info("the earlier run's snapshot \(id) no longer exists; uploading again")
        }
        return nil
    }

    /// `STATE/publish/KEY.json`, KEY a digest of what makes two publishes the same.
    static func statePath(_ r: PublishRequest, identity: FileIdentity, overlay: ByteRangeOverlay, region: String) -> String {
        let parts = [
            r.imagePath, "\(identity.device)", "\(identity.inode)", "\(identity.size)", "\(identity.modifiedNanoseconds)",
            overlay.digest, r.ami.registration.name, region, r.upload.kmsKeyARN ?? "", "\(r.upload.encrypted)",
        ]
        let key = SHA256.hash(data: Array(parts.joined(separator: "\n").utf8)).prefix(16)
            .map { String(format: "%02x", $0) }.joined()
        return r.upload.stateDirectory + "/publish/" + key + ".json"
    }
}

/// What a publish remembers between runs.
struct PublishState: Codable {
    var snapshotID: String

    static func load(_ path: String) -> PublishState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(PublishState.self, from: data)
    }

    func save(_ path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try JSONEncoder().encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

// One `<item>` of DescribeImages' `<imagesSet>`, typed. Only imageId and imageState are required; every other
// field is optional because EC2 (and moto) leave out what does not apply.

public import AWSCore

/// An AMI or kernel image as DescribeImages reports it.
public struct EC2Image: Sendable, Equatable, Codable {
    /// One block device mapping.
    public struct Mapping: Sendable, Equatable, Codable {
        /// e.g. `/dev/xvda`.
        public var deviceName: String
        /// The snapshot of an EBS mapping.
        public var snapshotID: String?
        /// GiB.
        public var volumeSize: Int?
        /// e.g. `gp3`.
        public var volumeType: String?
    }

    /// `ami-…`, `aki-…`.
    public var imageID: String
    /// `pending`, `available`, `invalid`, `deregistered`, `transient`, `failed`, `error`, `disabled`.
    public var state: String
    /// The name.
    public var name: String?
    /// The description.
    public var description: String?
    /// The owning account, or `amazon` as an alias in some listings.
    public var ownerID: String?
    /// `x86_64`, `arm64`, `i386`.
    public var architecture: String?
    /// `machine` or `kernel`.
    public var imageType: String?
    /// `hvm` or `paravirtual`.
    public var virtualizationType: String?
    /// The kernel of a paravirtual image.
    public var kernelID: String?
    /// The root device.
    public var rootDeviceName: String?
    /// The mappings.
    public var mappings: [Mapping]
    /// ISO 8601 creation time.
    public var creationDate: String?
    /// Whether ENA is marked.
    public var enaSupport: Bool?
    /// `legacy-bios`, `uefi`, …
    public var bootMode: String?
    /// `v2.0` when IMDSv2 is required.
    public var imdsSupport: String?
    /// Why the image failed, when it did.
    public var stateReason: String?
    /// Tags.
    public var tags: [String: String]

    /// States an image does not leave by waiting.
    public static let terminalFailureStates: Set<String> = ["failed", "invalid", "deregistered", "error", "disabled"]

    /// The snapshot behind the root device, when the mapping names one.
    public var rootSnapshotID: String? {
        mappings.first(where: { $0.deviceName == rootDeviceName })?.snapshotID
    }

    /// Reads one item.
    ///
    /// - Throws: `AWSResponseError` when imageId or imageState is missing.
    public init(item: XMLTree) throws(AWSResponseError) {
        guard let id = item.string("imageId"), !id.isEmpty, let state = item.string("imageState") else {
            throw AWSResponseError(operation: "DescribeImages", "an image item without imageId or imageState")
        }
        imageID = id
        self.state = state
        name = item.string("name")
        description = item.string("description")
        ownerID = item.string("imageOwnerId")
        architecture = item.string("architecture")
        imageType = item.string("imageType")
        virtualizationType = item.string("virtualizationType")
        kernelID = item.string("kernelId")
        rootDeviceName = item.string("rootDeviceName")
        creationDate = item.string("creationDate")
        enaSupport = item.string("enaSupport").map { $0 == "true" }
        bootMode = item.string("bootMode")
        imdsSupport = item.string("imdsSupport")
        if let r = item.child("stateReason") {
            let parts = [r.string("code"), r.string("message")].compactMap { $0 }.filter { !$0.isEmpty }
            stateReason = parts.isEmpty ? nil : parts.joined(separator: ": ")
        }
        mappings = item.items("blockDeviceMapping").compactMap { m in
            guard let dev = m.string("deviceName") else { return nil }
            return Mapping(
                deviceName: dev, snapshotID: m.string("ebs", "snapshotId"),
                volumeSize: m.string("ebs", "volumeSize").flatMap { Int($0) }, volumeType: m.string("ebs", "volumeType"))
        }
        var tags: [String: String] = [:]
        for t in item.items("tagSet") {
            if let k = t.string("key") { tags[k] = t.string("value") ?? "" }
        }
        self.tags = tags
    }
}

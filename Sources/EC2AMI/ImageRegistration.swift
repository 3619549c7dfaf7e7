// What RegisterImage is asked for, checked against EC2's rules before anything is sent.
//
// Two API defaults bite (ec2-upload spec §2.4): VirtualizationType defaults to paravirtual and Architecture to
// i386, so both are always sent. A paravirtual image boots through an Amazon PV-GRUB kernel image (AKI) and
// takes no ENA, no UEFI and no ramdisk; an HVM image takes no kernel.

public import AWSCore

/// The CPU architecture of an AMI.
public enum ImageArchitecture: String, Sendable, CaseIterable, Codable {
    /// 64-bit x86 (the only architecture of PV-GRUB's 64-bit kernels and of OmniOS).
    case x86_64
    /// 64-bit Arm (Graviton; HVM with UEFI only).
    case arm64
}

/// How instances run the image.
public enum Virtualization: String, Sendable, CaseIterable, Codable {
    /// Hardware virtual machine: the disk's own boot loader runs (Xen HVM and Nitro).
    case hvm
    /// Xen paravirtual: Amazon's PV-GRUB kernel image reads `/boot/grub/menu.lst` from the disk.
    case paravirtual

    /// The root device name EC2 users conventionally register for this kind: `/dev/xvda` for HVM, `/dev/sda`
    /// for paravirtual (the first disk is then `/xpvd/xdf@2048`, as the `ec2-xen-pv` target assumes).
    public var defaultRootDevice: String { self == .hvm ? "/dev/xvda" : "/dev/sda" }
}

/// The firmware an HVM instance starts with.
public enum BootMode: String, Sendable, CaseIterable, Codable {
    /// BIOS: the MBR or the GPT's BIOS boot code runs.
    case legacyBIOS = "legacy-bios"
    /// UEFI: the loader in the EFI System Partition runs.
    case uefi
}

/// The EBS volume types a root volume may have that need no further settings (io1/io2 need IOPS; st1/sc1
/// cannot be boot volumes).
public enum RootVolumeType: String, Sendable, CaseIterable, Codable {
    /// Magnetic (previous generation), 1 to 1024 GiB.
    case standard
    /// General purpose SSD, burst credits, 1 to 16384 GiB.
    case gp2
    /// General purpose SSD, baseline performance, 1 to 16384 GiB.
    case gp3

    /// The sizes EBS accepts for this type, in GiB.
    public var sizeRange: ClosedRange<Int> { self == .standard ? 1...1024 : 1...16384 }
}

/// Which PV-GRUB kernel image reads the disk: `hd0` for a file system on the whole disk, `hd00` for one in
/// partition 1.
public enum PVGrubVariant: String, Sendable, CaseIterable, Codable {
    /// `pv-grub-hd0_*`: the disk holds a file system with no partition table.
    case hd0
    /// `pv-grub-hd00_*`: the file system is in partition 1.
    case hd00
}

/// The kernel image of a paravirtual AMI.
public enum KernelChoice: Sendable, Equatable {
    /// No kernel (HVM).
    case none
    /// This AKI.
    case id(String)
    /// Amazon's newest PV-GRUB AKI of the region and architecture, of this variant.
    case automatic(PVGrubVariant)
}

/// A tag key and value.
public struct ImageTag: Sendable, Equatable, Codable {
    /// The key (1–128 characters, not starting with `aws:`).
    public var key: String
    /// The value (at most 256 characters).
    public var value: String
    /// Creates a tag.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// Parses `KEY=VALUE` (the value may be empty and may contain `=`).
    public init(parsing text: String) throws(AMIError) {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw .invalidRequest("a tag is KEY=VALUE, got \"\(text)\"")
        }
        self.init(key: String(text[..<eq]), value: String(text[text.index(after: eq)...]))
    }
}

/// Everything RegisterImage needs for an EBS-backed AMI with one root volume.
public struct ImageRegistration: Sendable, Equatable {
    /// The AMI name: 3–128 characters from letters, digits and `()[] ./-'@_`; unique per account and region.
    public var name: String
    /// Free text, at most 255 characters.
    public var description: String?
    /// The EBS snapshot that becomes the root volume.
    public var snapshotID: String
    /// Always sent (the API would default to i386).
    public var architecture: ImageArchitecture = .x86_64
    /// Always sent (the API would default to paravirtual).
    public var virtualization: Virtualization = .hvm
    /// The kernel image; must be `.none` for HVM and not `.none` for paravirtual.
    public var kernel: KernelChoice = .none
    /// The root device name; nil for ``Virtualization/defaultRootDevice``.
    public var rootDeviceName: String?
    /// The root volume's type.
    public var volumeType: RootVolumeType = .gp3
    /// The root volume's size in GiB; nil for the snapshot's size.
    public var volumeSizeGiB: Int?
    /// Mark the AMI as having an ENA driver (HVM only; Nitro instances need it for networking).
    public var enaSupport = false
    /// The firmware; nil lets EC2 choose (HVM only; arm64 is UEFI only).
    public var bootMode: BootMode?
    /// Launch instances with IMDSv2 only.
    public var imdsV2Only = false
    /// Tags for the AMI (sent with RegisterImage, and with CopyImage for copies).
    public var tags: [ImageTag] = []

    /// A registration of `snapshotID` under `name` with the defaults above.
    public init(name: String, snapshotID: String) {
        self.name = name
        self.snapshotID = snapshotID
    }

    /// The root device name that will be sent.
    public var effectiveRootDevice: String { rootDeviceName ?? virtualization.defaultRootDevice }

    /// Characters EC2 allows in an AMI name besides letters and digits.
    static let nameExtras = Set("()[] ./-'@_")

    /// Checks `name` as EC2 does.
    public static func validateName(_ name: String) throws(AMIError) {
        guard (3...128).contains(name.count) else {
            throw .invalidRequest("the name must be 3 to 128 characters long, \"\(name)\" has \(name.count)")
        }
        if let bad = name.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber)) && !nameExtras.contains($0) }) {
            throw .invalidRequest("the name may hold letters, digits and ( ) [ ] space . / - ' @ _ only, not \"\(bad)\"")
        }
    }

    /// Checks every rule EC2 enforces on these fields, and the combinations that boot nothing.
    public func validate() throws(AMIError) {
        try Self.validateName(name)
        if let d = description, d.count > 255 { throw .invalidRequest("the description is over 255 characters") }
        guard snapshotID.hasPrefix("snap-"), snapshotID.count > 5 else {
            throw .invalidRequest("\"\(snapshotID)\" is not a snapshot id (snap-…)")
        }
        let root = effectiveRootDevice
        guard root.hasPrefix("/dev/"), root.count > 5, root.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw .invalidRequest("the root device name must look like /dev/xvda or /dev/sda1, got \"\(root)\"")
        }
        if let size = volumeSizeGiB, !volumeType.sizeRange.contains(size) {
            throw .invalidRequest(
                "a \(volumeType.rawValue) volume is \(volumeType.sizeRange.lowerBound) to \(volumeType.sizeRange.upperBound) GiB, not \(size)")
        }
        switch virtualization {
        case .hvm:
            if kernel != .none { throw .invalidRequest("an HVM image takes no kernel id (that is for paravirtual)") }
            if architecture == .arm64 && bootMode == .legacyBIOS {
                throw .invalidRequest("arm64 instances boot with UEFI only")
            }
        case .paravirtual:
            switch kernel {
            case .none:
                throw .invalidRequest("a paravirtual image needs a PV-GRUB kernel: \(option: .kernelID) aki-… or \(option: .kernelID) auto")
            case .id(let id):
                guard id.hasPrefix("aki-"), id.count > 4 else {
                    throw .invalidRequest("\"\(id)\" is not a kernel image id (aki-…)")
                }
            case .automatic: break
            }
            if architecture != .x86_64 { throw .invalidRequest("paravirtual images are x86_64 only") }
            if enaSupport { throw .invalidRequest("ENA is for HVM images; on a paravirtual image it can leave instances unreachable") }
            if bootMode != nil { throw .invalidRequest("the boot mode is for HVM images; PV-GRUB boots paravirtual ones") }
        }
        guard tags.count <= 50 else { throw .invalidRequest("at most 50 tags, got \(tags.count)") }
        for t in tags {
            guard (1...128).contains(t.key.count), !t.key.lowercased().hasPrefix("aws:") else {
                throw .invalidRequest("tag key \"\(t.key)\" must be 1 to 128 characters and not start with aws:")
            }
            guard t.value.count <= 256 else { throw .invalidRequest("the value of tag \(t.key) is over 256 characters") }
        }
        if Set(tags.map(\.key)).count != tags.count { throw .invalidRequest("a tag key is given twice") }
    }

    /// The RegisterImage parameters, with the kernel already resolved to an AKI id (or nil for HVM).
    public func parameters(kernelID: String?) -> EC2Parameters {
        var p = EC2Parameters()
        p.add("Name", name)
        if let description { p.add("Description", description) }
        p.add("Architecture", architecture.rawValue)
        p.add("VirtualizationType", virtualization.rawValue)
        p.add("RootDeviceName", effectiveRootDevice)
        p.add("BlockDeviceMapping.1.DeviceName", effectiveRootDevice)
        p.add("BlockDeviceMapping.1.Ebs.SnapshotId", snapshotID)
        p.add("BlockDeviceMapping.1.Ebs.VolumeType", volumeType.rawValue)
        if let volumeSizeGiB { p.add("BlockDeviceMapping.1.Ebs.VolumeSize", String(volumeSizeGiB)) }
        p.add("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true")
        if let kernelID { p.add("KernelId", kernelID) }
        if enaSupport { p.add("EnaSupport", "true") }
        if let bootMode { p.add("BootMode", bootMode.rawValue) }
        if imdsV2Only { p.add("ImdsSupport", "v2.0") }
        p.addTagSpecification(resourceType: "image", tags: tags)
        return p
    }
}

extension EC2Parameters {
    /// Appends `TagSpecification.1.ResourceType` and its tags (nothing when `tags` is empty).
    public mutating func addTagSpecification(resourceType: String, tags: [ImageTag]) {
        guard !tags.isEmpty else { return }
        add("TagSpecification.1.ResourceType", resourceType)
        for (i, t) in tags.enumerated() {
            add("TagSpecification.1.Tag.\(i + 1).Key", t.key)
            add("TagSpecification.1.Tag.\(i + 1).Value", t.value)
        }
    }
}

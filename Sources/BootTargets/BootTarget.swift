// EC2 boot targets: what an illumos root pool's vdev label must say so that the target's boot loader and kernel
// find the root disk. The facts and their sources are collected in the team's ec2-boot-devices notes; this file
// turns them into values. Three label fields matter:
//
//   phys_path  the /devices path of the leaf; legacy GRUB and pv-grub pass it as `bootpath`, the illumos loader
//              passes it too, and the kernel opens the root vdev by devid, then by this path.
//   path       the /dev/dsk name; only userland uses it, so it is set to what devfsadm will create.
//   devid      the driver's device id; a stale one can only fail, and pv-grub wants phys_path or devid, so it
//              is removed for every target.

/// Where the pool sits on its disk, which fixes the minor name (`:a`, `:b`…) and the slice (`s0`, `s1`…).
public enum PoolPlacement: Sendable, Hashable {
    /// A slice of an SMI (VTOC) label, 0–15.
    case vtocSlice(Int)
    /// A GPT partition, by its 1-based entry number (`p1` is illumos slice 0).
    case efiPartition(Int)

    /// Maps a partition map region to a placement: scheme `"vtoc"` with its slice, or `"gpt"` with the illumos
    /// slice (entry number − 1). Returns `nil` for other schemes (MBR partitions, bare images).
    public init?(regionScheme scheme: String, illumosSlice: Int) {
        switch scheme {
        case "vtoc": self = .vtocSlice(illumosSlice)
        case "gpt": self = .efiPartition(illumosSlice + 1)
        default: return nil
        }
    }

    /// The illumos slice number.
    public var slice: Int {
        switch self {
        case .vtocSlice(let slice): slice
        case .efiPartition(let number): number - 1
        }
    }

    /// The block minor name ZFS records after `:` in `phys_path`.
    ///
    /// cmlb `dk_minor_data`: slices 0–15 are `a`–`p`. cmlb `dk_minor_data_efi` (x86): `a`–`g` for slices 0–6,
    /// minor 7 is the whole disk (`wd`), `i`–`p` for slices 8–15.
    ///
    /// - Throws: ``BootTargetError/noMinorName(_:)`` for a slice outside those tables.
    public func minorName() throws(BootTargetError) -> String {
        let slice = self.slice
        switch self {
        case .vtocSlice:
            guard (0...15).contains(slice) else {
                throw .noMinorName("VTOC slice \(slice) does not exist (an SMI label has slices 0–15)")
            }
        case .efiPartition(let number):
            guard (0...15).contains(slice) else {
                throw .noMinorName(
                    "GPT partition \(number) has no illumos minor node (cmlb names EFI slices 0–15 only)")
            }
            guard slice != 7 else {
                throw .noMinorName(
                    "GPT partition 8 (EFI slice 7) has no minor node of its own: cmlb gives minor 7 to the whole "
                        + "disk (wd)")
            }
        }
        return String(UnicodeScalar(UInt8(ascii: "a") + UInt8(slice)))
    }
}

/// What to do with one label field.
public enum LabelChange: Sendable, Hashable, CustomStringConvertible {
    /// Set the field to this string.
    case set(String)
    /// Remove the field.
    case remove
    /// Leave the field as it is.
    case keep

    public var description: String {
        switch self {
        case .set(let value): "set to \(value)"
        case .remove: "removed"
        case .keep: "left as it is"
        }
    }
}

/// The label changes a target needs, with the reasons in plain words.
public struct BootTargetPlan: Sendable, Equatable {
    /// The target.
    public let target: BootTarget
    /// The device name the AMI registers (given or the target's default); `nil` for Nitro.
    public let device: XenDeviceName?
    /// The Xen vbd number the instance will see, when known.
    public let vbd: UInt32?
    /// `phys_path` of the leaf vdev.
    public let physPath: LabelChange
    /// `path` of the leaf vdev.
    public let path: LabelChange
    /// `devid` of the leaf vdev.
    public let devid: LabelChange
    /// Why, in plain words; the CLI prints these.
    public let notes: [String]
}

/// One entry of `zlabel targets`.
public struct BootTargetInfo: Sendable, Equatable {
    /// One line on what the target is.
    public let summary: String
    /// What the target sets, field by field.
    public let sets: [String]
    /// Why, in our words.
    public let reasons: [String]
    /// illumos source files the facts come from.
    public let sources: [String]
}

/// The EC2 boot targets whose device naming the illumos sources back.
public enum BootTarget: String, CaseIterable, Sendable, Hashable {
    /// A Xen paravirtual instance booted by pv-grub (older instance families).
    case ec2XenPV = "ec2-xen-pv"
    /// A Xen HVM instance with PV disk drivers (t2, m4, c4…), booted by the illumos loader.
    case ec2XenHVM = "ec2-xen-hvm"
    /// A Nitro instance (c5, m5, t3 and later) whose EBS volumes are NVMe namespaces.
    case ec2Nitro = "ec2-nitro"

    /// Looks a target up by its name.
    ///
    /// - Throws: ``BootTargetError/unknownTarget(_:)``.
    public init(named name: String) throws(BootTargetError) {
        guard let target = BootTarget(rawValue: name) else { throw .unknownTarget(name) }
        self = target
    }

    /// The root device name an AMI for this target registers by default, or `nil` (Nitro).
    public var defaultDevice: XenDeviceName? {
        switch self {
        case .ec2XenPV: XenDeviceName(family: .sd, disk: 0, partition: nil)
        case .ec2XenHVM: XenDeviceName(family: .xvd, disk: 0, partition: nil)
        case .ec2Nitro: nil
        }
    }

    /// Computes the label changes for this target.
    ///
    /// ```swift
    /// let plan = try BootTarget.ec2XenHVM.plan(placement: .efiPartition(2))
    /// // plan.physPath == .set("/xpvd/xdf@51712:b"), plan.path == .set("/dev/dsk/c1t0d0s1"), plan.devid == .remove
    /// ```
    ///
    /// - Parameters:
    ///   - device: The device name the AMI registers for the root volume; `nil` takes ``defaultDevice``.
    ///     On `ec2-xen-hvm` an `sdX` name is mapped to the `xvdX` number, as EC2 does.
    ///   - placement: The slice or GPT partition that holds the pool.
    ///   - controller: The `c#` of the `/dev/dsk` name; devfsadm picks it at boot, and every EC2 example shows 1.
    /// - Returns: What to set, keep and remove, with the reasons.
    /// - Throws: ``BootTargetError`` for a device name without a vbd number, a device given to `ec2-nitro`, or a
    ///   slice without a minor node.
    public func plan(device: XenDeviceName? = nil, placement: PoolPlacement, controller: Int = 1)
        throws(BootTargetError) -> BootTargetPlan
    {
        try check(device: device)
        switch self {
        case .ec2Nitro:
            if let device { throw .deviceNotAccepted(target: rawValue, device: device.description) }
            _ = try placement.minorName()
            return BootTargetPlan(
                target: self, device: nil, vbd: nil, physPath: .keep, path: .keep, devid: .remove,
                notes: Self.nitroNotes)
        case .ec2XenPV, .ec2XenHVM:
            let registered = device ?? defaultDevice ?? XenDeviceName(family: .xvd, disk: 0, partition: nil)
            var notes: [String] = []
            let seen: XenDeviceName
            if self == .ec2XenHVM, registered.family == .sd {
                seen = registered.renamed(to: .xvd)
                notes.append(
                    "On HVM instances EC2 presents \(registered) with the number of \(seen), so the disk is "
                        + "numbered as \(seen).")
            } else {
                seen = registered
            }
            let vbd = try seen.vbdNumber()
            let minor = try placement.minorName()
            guard let disk = xdfDiskName(vbd: vbd, controller: controller) else {
                throw .noVBDEncoding(seen.description, "devfsadm has no /dev/dsk name for vbd \(vbd)")
            }
            if registered.partition != nil {
                notes.append(
                    "The partition number in \(registered) becomes part of the vbd id (\(vbd)); illumos sees that "
                        + "vbd as a disk of its own. The EC2 examples in our sources register whole-disk names.")
            }
            notes += self == .ec2XenPV ? Self.pvNotes : Self.hvmNotes
            return BootTargetPlan(
                target: self, device: registered, vbd: vbd, physPath: .set("/xpvd/xdf@\(vbd):\(minor)"),
                path: .set("/dev/dsk/\(disk)s\(placement.slice)"), devid: .remove, notes: notes)
        }
    }

    /// The root device names the Xen targets take, as a usage message names them.
    public static let deviceForms =
        "/dev/sdX, /dev/sdXN, /dev/xvdX or /dev/xvdXN with X a–p and N 1–15 (e.g. /dev/xvda, /dev/sda1)"

    /// Checks a root device name against this target without looking at any image: ``plan(device:placement:controller:)``
    /// runs the same check, and a command line runs it before it opens a file.
    ///
    /// The Xen targets take disks a–p with partitions 1–15: the names whose vbd numbers the EC2 examples in our
    /// sources show (EC2 reserves /dev/sda1 and /dev/xvda for the root volume and recommends /dev/sd[f-p] for
    /// others). A disk past p needs Xen's extended numbering (`1 << 28 | disk << 8 | partition`), which no EC2
    /// example shows for a root volume, so a phys_path planned from it would be a guess.
    ///
    /// - Throws: ``BootTargetError/deviceNotAccepted(target:device:)`` for a device given to `ec2-nitro`,
    ///   ``BootTargetError/badDeviceName(_:_:)`` for a name outside ``deviceForms``.
    public func check(device: XenDeviceName?) throws(BootTargetError) {
        guard let device else { return }
        if self == .ec2Nitro { throw .deviceNotAccepted(target: rawValue, device: device.description) }
        guard device.disk < 16, (device.partition ?? 0) < 16 else {
            throw .badDeviceName(
                device.description,
                "\(rawValue) takes \(Self.deviceForms); a disk past p or a partition past 15 has no vbd number in "
                    + "any EC2 example")
        }
    }

    // MARK: - Explanations (facts from the illumos sources, in our words)

    static let devidNote =
        "The devid is removed. The one in the image was made by the build machine's disk driver, so on Xen it can "
        + "only fail the kernel's first lookup, and legacy GRUB and pv-grub need phys_path or devid, not both."

    static let pathNote =
        "path is set to the name devfsadm will give the disk, but only userland reads it; before root is mounted "
        + "the kernel goes by devid and phys_path."

    static let controllerNote =
        "The controller in path is c1, as kayak's zpool_patch.c writes it for EC2 and as every EC2 example shows; "
        + "devfsadm picks the number at boot (another image may show c2 after an import elsewhere), and only "
        + "userland reads path."

    static let pvNotes = [
        "pv-grub passes phys_path to the kernel as bootpath; if both phys_path and devid are empty it refuses to "
            + "boot, and it passes no pool or vdev guids, so phys_path must name the disk the instance sees.",
        devidNote, pathNote,
    ]

    static let hvmNotes = [
        "The illumos loader passes phys_path as bootpath. Kernels without illumos 7119 need it to be right; newer "
            + "kernels fall back to scanning every disk, so a right phys_path just avoids that scan.",
        devidNote, pathNote,
    ]

    static let nitroNotes = [
        "On Nitro the root volume is an NVMe namespace. Its devid contains the EBS volume id, and every instance "
            + "launched from the AMI gets a new volume, so the right devid cannot be known offline: it is removed.",
        "phys_path is left as it is: the NVMe controller's PCI slot and subsystem id are not known offline either.",
        "So the first open of the root disk is expected to fail, and booting relies on two illumos changes: the "
            + "loader passing the pool and vdev guids to the kernel (illumos 9955, zfs-bootpool/zfs-bootvdev) and "
            + "the kernel then scanning every disk for a label with those guids (illumos 7119, \"Performing full "
            + "ZFS device scan!\"). A loader or kernel without them will not find the root pool.",
        "9955 was integrated in illumos in November 2018 and 7119 in April 2020. Which OmniOS release first "
            + "carries both was not established from source; check the release you boot.",
        "After boot the kernel records the real phys_path and devid in the labels itself.",
    ]

    /// What the target sets and why, with the illumos sources, for `zlabel targets`.
    public var info: BootTargetInfo {
        let xenSources = [
            "uts/common/xen/os/xvdi.c (i_xvdi_enum_worker): the xdf unit address is the xenstore device/vbd id",
            "io/xpvd.c (xpvd_name_child): the unit address is printed in decimal, /xpvd/xdf@<vbd>",
            "cmd/devfsadm/disk_link.c (decode_xen_device, disk_callback_xvmd): vbd encodings, the c#t#d# name",
            "cmlb.c (dk_minor_data, dk_minor_data_efi): minor names a–p, wd on EFI labels",
            "vdev_disk.c (vdev_disk_read_rootlabel), spa.c: the root vdev is opened by devid, then by phys_path",
        ]
        switch self {
        case .ec2XenPV:
            return BootTargetInfo(
                summary: "Xen PV instance booted by pv-grub; root volume registered as /dev/sda by default",
                sets: [
                    "phys_path = /xpvd/xdf@<vbd>:<minor> (default /dev/sda: /xpvd/xdf@2048:a for s0)",
                    "path = /dev/dsk/c1t<target>d<lun>s<slice> (default c1t2048d0s0)", "devid removed",
                ],
                reasons: Self.pvNotes + [Self.controllerNote],
                sources: xenSources + [
                    "legacy GRUB fsys_zfs.c (vdev_get_bootpath), expand.c ($ZFS-BOOTFS): phys_path or devid is required"
                ])
        case .ec2XenHVM:
            return BootTargetInfo(
                summary: "Xen HVM instance with PV disks, illumos loader; root registered as /dev/xvda by default",
                sets: [
                    "phys_path = /xpvd/xdf@<vbd>:<minor> (default /dev/xvda: /xpvd/xdf@51712:a for s0, :b for s1)",
                    "path = /dev/dsk/c1t<disk>d<partition>s<slice> (default c1t0d0s0)", "devid removed",
                ],
                reasons: ["On HVM EC2 maps /dev/sdX names to the xvdX numbers (/dev/sdf → xdf@51792)."]
                    + Self.hvmNotes + [Self.controllerNote],
                sources: xenSources + [
                    "hvm_bootstrap.c (hvmboot_rootconf): xdf attaches under /xpvd before root is mounted (illumos 9024)",
                    "boot/lib/libstand/zfs/zfs.c (zfs_bootfs): the loader passes bootpath = phys_path of the booted vdev",
                ])
        case .ec2Nitro:
            return BootTargetInfo(
                summary: "Nitro instance, EBS volumes as NVMe namespaces; takes no device name",
                sets: ["phys_path left as it is", "path left as it is", "devid removed"],
                reasons: Self.nitroNotes,
                sources: [
                    "nvme.c (nvme_bd_devid, nvme_prepare_devid): the devid holds vendor, model and serial (the volume id)",
                    "blkdev.c (bd_attach_handle): the blkdev@<target>,<lun> unit address",
                    "boot/lib/libstand/zfs/zfs.c (zfs_bootfs): zfs-bootpool and zfs-bootvdev, illumos 9955",
                    "vdev_disk.c (vdev_disk_preroot_lookup), devcfg.c (preroot_walk_block_devices), zfs_vfsops.c: "
                        + "the full device scan, illumos 7119",
                ])
        }
    }

    /// The text `zlabel targets` prints: every target, what it sets, why, and the sources.
    public static func catalog() -> String {
        var text = ""
        for target in allCases {
            let info = target.info
            text += "\(target.rawValue)\n  \(info.summary)\n  sets:\n"
            text += info.sets.map { "    - \($0)\n" }.joined()
            text += "  why:\n" + info.reasons.map { "    - \($0)\n" }.joined()
            text += "  illumos sources:\n" + info.sources.map { "    - \($0)\n" }.joined()
            text += "\n"
        }
        return text
    }
}

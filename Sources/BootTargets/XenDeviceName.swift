// Linux-style block device names as EC2 takes them in a block device mapping, and the Xen virtual block device
// (vbd) number that the Xen toolstack derives from them. The vbd number is the directory name under xenstore
// `device/vbd/`; illumos prints it in decimal as the unit address of the `xdf` node (`/xpvd/xdf@<vbd>`).
//
// Encodings (illumos `usr/src/cmd/devfsadm/disk_link.c`, comment above `decode_xen_device`; the same numbers are
// in illumos `pv_cmdk.c`):
//     202 << 8 | disk << 4 | partition     xvd, disks 0-15, partitions 0-15
//       1 << 28 | disk << 8 | partition    xvd, disks 16 and up, partitions 0-255 ("extended")
//       8 << 8 | disk << 4 | partition     sd, disks 0-15, partitions 0-15

/// A device name of the form `/dev/sdX[N]` or `/dev/xvdX[N]`, with one or two letters (a…z, aa…zz).
public struct XenDeviceName: Sendable, Hashable, CustomStringConvertible {
    /// The Linux driver prefix.
    public enum Family: String, Sendable, Hashable {
        /// SCSI disk names, `/dev/sdX`.
        case sd
        /// Xen virtual disk names, `/dev/xvdX`.
        case xvd
    }

    /// The prefix.
    public let family: Family
    /// The disk index: a = 0, …, z = 25, aa = 26, …, zz = 701.
    public let disk: Int
    /// The partition number, or `nil` for the whole disk.
    public let partition: Int?

    /// Parses a device name strictly.
    ///
    /// Accepted: `/dev/`, then `sd` or `xvd`, one or two lower-case letters, then optionally a partition number
    /// 1–255 without leading zeros. Whether the number fits a given encoding is checked when the vbd is computed.
    ///
    /// - Parameter text: For example `/dev/sda`, `/dev/xvdf`, `/dev/sda1`.
    /// - Throws: ``BootTargetError/badDeviceName(_:_:)`` naming what is wrong.
    public init(parsing text: String) throws(BootTargetError) {
        let bytes = Array(text.utf8)
        let prefix = Array("/dev/".utf8)
        guard bytes.starts(with: prefix) else {
            throw .badDeviceName(text, "it must start with /dev/")
        }
        var rest = bytes[prefix.count...]
        if rest.starts(with: Array("xvd".utf8)) {
            family = .xvd
            rest = rest.dropFirst(3)
        } else if rest.starts(with: Array("sd".utf8)) {
            family = .sd
            rest = rest.dropFirst(2)
        } else {
            throw .badDeviceName(text, "only /dev/sdX[N] and /dev/xvdX[N] names are supported")
        }
        let letters = rest.prefix { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }
        let digits = rest.dropFirst(letters.count)
        guard (1...2).contains(letters.count) else {
            throw .badDeviceName(text, "the disk must be one or two letters a–z")
        }
        let values = letters.map { Int($0 - UInt8(ascii: "a")) }
        disk = values.count == 1 ? values[0] : (values[0] + 1) * 26 + values[1]
        if digits.isEmpty {
            partition = nil
        } else {
            guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw .badDeviceName(text, "only a partition number may follow the disk letters")
            }
            guard digits.first != UInt8(ascii: "0"), digits.count <= 3 else {
                throw .badDeviceName(text, "the partition number must be 1–255 without leading zeros")
            }
            let number = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard number <= 255 else {
                throw .badDeviceName(text, "the partition number must be 1–255")
            }
            partition = number
        }
    }

    /// The name with the same disk and partition under another family (`/dev/sdf` → `/dev/xvdf`).
    public func renamed(to family: Family) -> XenDeviceName {
        XenDeviceName(family: family, disk: disk, partition: partition)
    }

    init(family: Family, disk: Int, partition: Int?) {
        self.family = family
        self.disk = disk
        self.partition = partition
    }

    /// The disk letters (`a`, `f`, `aa`).
    public var letters: String {
        func letter(_ value: Int) -> String { String(UnicodeScalar(UInt8(ascii: "a") + UInt8(value))) }
        return disk < 26 ? letter(disk) : letter(disk / 26 - 1) + letter(disk % 26)
    }

    public var description: String {
        "/dev/\(family.rawValue)\(letters)\(partition.map(String.init) ?? "")"
    }

    /// The Xen vbd number for this exact name.
    ///
    /// - Throws: ``BootTargetError/noVBDEncoding(_:_:)`` for names the encodings above cannot express
    ///   (`sd` disks past `sdp`, partitions past 15 in the short forms).
    public func vbdNumber() throws(BootTargetError) -> UInt32 {
        let part = UInt32(partition ?? 0)
        switch family {
        case .sd:
            guard disk < 16 else {
                throw .noVBDEncoding(description, "sd names go up to /dev/sdp (disk 15) in the Xen sd encoding")
            }
            guard part < 16 else {
                throw .noVBDEncoding(description, "sd partitions go up to 15 in the Xen sd encoding")
            }
            return 8 << 8 | UInt32(disk) << 4 | part
        case .xvd:
            if disk < 16 {
                guard part < 16 else {
                    throw .noVBDEncoding(description, "xvd partitions of disks a–p go up to 15")
                }
                return 202 << 8 | UInt32(disk) << 4 | part
            }
            return 1 << 28 | UInt32(disk) << 8 | part  // disk ≤ 701 and part ≤ 255 fit their fields
        }
    }
}

/// The `/dev/dsk` name devfsadm gives an `xdf` disk: `c<controller>t<target>d<lun>`.
///
/// illumos `disk_link.c` `decode_xen_device`: for xvd numbers the target is the disk and the lun the partition
/// (51712 → `t0d0`, 51728 → `t1d0`); for sd numbers the target keeps the whole number without its low four bits
/// (2048 → `t2048d0`, 2049 → `t2048d1`); for extended numbers the target is the number without its low eight
/// bits and the lun those bits. The controller number is chosen by devfsadm at boot; every EC2 example shows 1.
public func xdfDiskName(vbd: UInt32, controller: Int = 1) -> String? {
    guard vbd >> 28 <= 1, vbd >= 3 << 8 else { return nil }
    let target: UInt32
    let lun: UInt32
    if vbd & (1 << 28) != 0 {
        target = vbd & ~0xFF
        lun = vbd & 0xFF
    } else {
        switch vbd >> 8 {
        case 202:
            target = (vbd >> 4) & 0xF
            lun = vbd & 0xF
        case 8:
            target = vbd & ~0xF
            lun = vbd & 0xF
        default:
            return nil
        }
    }
    return "c\(controller)t\(target)d\(lun)"
}

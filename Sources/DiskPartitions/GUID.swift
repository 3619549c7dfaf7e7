/// A 128-bit GUID as stored in a GPT: the first three fields little-endian, the last eight bytes as they are.
///
/// ``description`` gives the usual upper-case text form, for example `6A898CC3-1DD2-11B2-99A6-080020736631`.
public struct GUID: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes in on-disk order.
    public let bytes: [UInt8]

    /// Takes 16 bytes in on-disk (mixed-endian) order.
    ///
    /// - Returns: `nil` unless `onDisk` holds exactly 16 bytes.
    public init?<Bytes: Collection>(onDisk: Bytes) where Bytes.Element == UInt8 {
        guard onDisk.count == 16 else { return nil }
        bytes = Array(onDisk)
    }

    /// Parses the text form `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case).
    ///
    /// - Returns: `nil` when `text` is not in that form.
    public init?(_ text: String) {
        let groups = Array(text.utf8).split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        var big: [UInt8] = []
        for group in groups {
            let chars = Array(group)
            for pair in stride(from: 0, to: chars.count, by: 2) {
                guard let high = Self.nibble(chars[pair]), let low = Self.nibble(chars[pair + 1]) else {
                    return nil
                }
                big.append(high << 4 | low)
            }
        }
        // Text order is big-endian for every field; the first three fields are stored little-endian.
        bytes =
            [big[3], big[2], big[1], big[0], big[5], big[4], big[7], big[6]] + big[8..<16]
    }

    /// True when all 16 bytes are zero (an unused GPT entry).
    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    public var description: String {
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        var text = ""
        for index in order {
            if index < 0 {
                text += "-"
            } else {
                let digits = String(bytes[index], radix: 16, uppercase: true)
                text += digits.count == 1 ? "0" + digits : digits
            }
        }
        return text
    }

    private static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): char - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension GUID {
    private static func known(_ text: String) -> GUID {
        // Only called with the literal constants below, which are well formed.
        guard let guid = GUID(text) else { preconditionFailure("malformed GUID constant \(text)") }
        return guid
    }

    /// EFI System partition (`EFI_SYSTEM` in illumos `sys/efi_partition.h`); `zpool create -B` puts the loader here.
    public static let efiSystem = known("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    /// BIOS boot partition (GRUB 2 core image).
    public static let biosBoot = known("21686148-6449-6E6F-744E-656564454649")
    /// illumos `EFI_BOOT`.
    public static let illumosBoot = known("6A82CB45-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_ROOT`.
    public static let illumosRoot = known("6A85CF4D-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_SWAP`.
    public static let illumosSwap = known("6A87C46F-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_USR`, the type `zpool create` gives the ZFS data partition on illumos and Linux (gdisk calls
    /// it "Solaris /usr & Apple ZFS", code BF01).
    public static let illumosUsr = known("6A898CC3-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_BACKUP`.
    public static let illumosBackup = known("6A8B642B-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_VAR`.
    public static let illumosVar = known("6A8EF2E9-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_HOME`.
    public static let illumosHome = known("6A90BA39-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_ALTSCTR`.
    public static let illumosAlternateSector = known("6A9283A5-1DD2-11B2-99A6-080020736631")
    /// illumos `EFI_RESERVED`, the 8 MiB partition 9 that `zpool create` adds at the end of a whole disk.
    public static let illumosReserved = known("6A945A3B-1DD2-11B2-99A6-080020736631")
    /// FreeBSD `freebsd-zfs`.
    public static let freeBSDZFS = known("516E7CBA-6ECF-11D6-8FF8-00022D09712B")
    /// Linux filesystem data.
    public static let linuxFilesystem = known("0FC63DAF-8483-4772-8E79-3D69D8477DE4")

    /// A short name for well-known partition types, or `nil`.
    public var typeName: String? {
        switch self {
        case .efiSystem: "EFI System"
        case .biosBoot: "BIOS boot"
        case .illumosBoot: "illumos boot"
        case .illumosRoot: "illumos root"
        case .illumosSwap: "illumos swap"
        case .illumosUsr: "illumos usr (ZFS)"
        case .illumosBackup: "illumos backup"
        case .illumosVar: "illumos var"
        case .illumosHome: "illumos home"
        case .illumosAlternateSector: "illumos alternate sector"
        case .illumosReserved: "illumos reserved"
        case .freeBSDZFS: "FreeBSD ZFS"
        case .linuxFilesystem: "Linux filesystem"
        default: nil
        }
    }

    /// True for the types ZFS itself gives a data partition (`EFI_USR`, `freebsd-zfs`).
    public var isZFSDataType: Bool { self == .illumosUsr || self == .freeBSDZFS }
}

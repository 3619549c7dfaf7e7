// The exit statuses of the zlabel command line for the label side's errors (README.md, "Exit codes").
// Both executables, `zlabel` and `zlabel-ec2`, map these errors the same way, so the table lives here once.

import DiskPartitions
import ZFSImage
import ZFSLabel
import BootTargets
import ZFSMOS

/// Exit statuses of the `zlabel` command line, as README.md's "Exit codes" table lists them.
public enum CommandExitStatus {
    /// The image could not be read or written, or its partition table or MOS is broken.
    public static let unreadable: Int32 = 2
    /// An edit was refused before anything was written.
    public static let refused: Int32 = 3
    /// A write or its read-back check failed after writing began.
    public static let writeFailed: Int32 = 4
    /// Bad usage.
    public static let usage: Int32 = 64

    /// The status for an error of the label modules, or `nil` for any other error.
    public static func forLabelError(_ error: any Error) -> Int32? {
        switch error {
        case let image as ImageError where image.code == .container: refused
        case is ImageError, is PartitionTableError, is MOSError: unreadable
        case is LabelEditError: refused
        case is LabelWriteError: writeFailed
        case is BootTargetError: usage
        default: nil
        }
    }
}

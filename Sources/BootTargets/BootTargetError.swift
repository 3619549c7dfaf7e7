/// Why a target's settings cannot be computed.
public enum BootTargetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The target name is not the raw value of one of the ``BootTarget`` cases.
    case unknownTarget(String)
    /// The device name is not a strict `/dev/sdX[N]` or `/dev/xvdX[N]`; the second value says why.
    case badDeviceName(String, String)
    /// The device name parses but has no Xen vbd number in the encodings the sources give.
    case noVBDEncoding(String, String)
    /// The target takes no device name (`ec2-nitro`).
    case deviceNotAccepted(target: String, device: String)
    /// The pool's slice or partition has no illumos block minor node.
    case noMinorName(String)

    public var description: String {
        switch self {
        case .unknownTarget(let name):
            "unknown target \"\(name)\" (known: \(BootTarget.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .badDeviceName(let name, let why): "bad device name \"\(name)\": \(why)"
        case .noVBDEncoding(let name, let why): "no Xen vbd number for \(name): \(why)"
        case .deviceNotAccepted(let target, let device):
            "\(target) takes no device name (got \(device)): NVMe names are assigned inside the instance"
        case .noMinorName(let why): why
        }
    }
}

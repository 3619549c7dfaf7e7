// Errors of the AMI side, each carrying what the user needs to act on it. Service errors keep AWSCore's
// ``AWSServiceError`` (code, message, request id); these are the failures that are ours to name.

public import AWSCore

/// Why an AMI could not be registered, found, copied or shared.
public enum AMIError: OptionNamingError, Sendable, Equatable {
    /// The request breaks a rule EC2 enforces; nothing was sent.
    case invalidRequest(OptionText)
    /// The image reached a state it does not leave on its own (`failed`, `invalid`, `deregistered`, `error`).
    case imageFailed(imageID: String, region: String, state: String, reason: String?)
    /// The image was still not available when the wait's limit ran out.
    case waitTimedOut(imageID: String, region: String, state: String, limit: Duration)
    /// DescribeImages does not list an image it should know.
    case imageNotListed(imageID: String, region: String)
    /// No Amazon PV-GRUB kernel image matched.
    case kernelNotFound(region: String, architecture: String, variant: String)
    /// The snapshot cannot back an AMI (absent, or in state `error`).
    case snapshotUnusable(snapshotID: String, reason: String)
    /// An image with this name exists already and does not use the requested snapshot.
    case nameTaken(name: String, imageID: String, snapshotID: String?)

    public var description: String { message(spelling: \.words) }

    public func message(spelling spell: (OptionName) -> String) -> String {
        switch self {
        case .invalidRequest(let m): return "invalid AMI request: \(m.rendered(spell))"
        case .imageFailed(let id, let region, let state, let reason):
            return "\(id) in \(region) is \(state)" + (reason.map { ": \($0)" } ?? "")
        case .waitTimedOut(let id, let region, let state, let limit):
            return "\(id) in \(region) is still \(state) after \(limit); it may still become available, "
                + "run the same command again to keep waiting"
        case .imageNotListed(let id, let region): return "DescribeImages in \(region) does not list \(id)"
        case .kernelNotFound(let region, let arch, let variant):
            return "no Amazon PV-GRUB kernel image (pv-grub-\(variant)_*, \(arch)) in \(region), neither listed by "
                + "DescribeImages nor in AWS's published table; pass \(spell(.kernelID)) aki-…"
        case .snapshotUnusable(let id, let reason): return "snapshot \(id) cannot back an AMI: \(reason)"
        case .nameTaken(let name, let id, let snap):
            return "the AMI name \"\(name)\" is already used by \(id)"
                + (snap.map { " (backed by \($0))" } ?? "") + "; choose another \(spell(.imageName)) or deregister \(id)"
        }
    }
}

extension AWSServiceError {
    /// True for EC2's `…NotFound` error codes (`InvalidAMIID.NotFound`, `InvalidSnapshot.NotFound`).
    public var isNotFound: Bool { code.hasSuffix(".NotFound") || code.hasSuffix("NotFound") }
}

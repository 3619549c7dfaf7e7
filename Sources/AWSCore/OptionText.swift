// Errors of the EC2 tower name the option a caller got wrong, but a library knows no command line: it names the
// option by an `OptionName` and leaves the spelling to whoever prints the message. The library's own rendering
// uses plain words ("volume size"); `zlabel ec2` renders the same message with its flag names ("--volume-size").

/// A caller-facing setting of the EC2 tower, named without any command line's spelling.
public enum OptionName: String, Sendable, CaseIterable, Equatable {
    /// Blocks uploaded concurrently (`UploadOptions.workers`).
    case workers
    /// The snapshot's or the root volume's size in GiB.
    case volumeSize
    /// StartSnapshot's timeout in minutes.
    case snapshotTimeout
    /// Encrypting the snapshot.
    case encrypted
    /// The KMS key that encrypts the snapshot.
    case kmsKey
    /// The parent of an incremental upload.
    case parentSnapshot
    /// Continuing or reusing an earlier upload.
    case resume
    /// Regions an AMI is copied to.
    case copyRegions
    /// The PV-GRUB kernel of a paravirtual AMI.
    case kernelID
    /// The AMI's name.
    case imageName
    /// The AWS region.
    case region
    /// The endpoint URL for every service.
    case endpointURL
    /// Which partition (or slice) of a whole disk holds the vdev.
    case partition

    /// The words a library message uses for the option.
    public var words: String {
        switch self {
        case .workers: "workers"
        case .volumeSize: "volume size"
        case .snapshotTimeout: "snapshot timeout"
        case .encrypted: "encryption"
        case .kmsKey: "KMS key"
        case .parentSnapshot: "parent snapshot"
        case .resume: "resume"
        case .copyRegions: "copy region"
        case .kernelID: "kernel id"
        case .imageName: "AMI name"
        case .region: "region"
        case .endpointURL: "endpoint URL"
        case .partition: "a partition name"
        }
    }
}

/// A message that names options by ``OptionName``; written as a string literal with `\(option: .workers)`.
public struct OptionText: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// A piece of the message.
    public enum Part: Sendable, Equatable {
        /// Literal text.
        case text(String)
        /// An option, spelt by the renderer.
        case option(OptionName)
    }

    /// The pieces, in order.
    public var parts: [Part]

    /// The options the message names, in order of appearance.
    public var options: [OptionName] {
        parts.compactMap { if case .option(let o) = $0 { o } else { nil } }
    }

    /// The message with each option spelt by `spell`.
    public func rendered(_ spell: (OptionName) -> String) -> String {
        parts.map {
            switch $0 {
            case .text(let s): s
            case .option(let o): spell(o)
            }
        }.joined()
    }

    /// The library's rendering: options in words.
    public var description: String { rendered(\.words) }

    /// A message without options.
    public init(plain: String) { parts = [.text(plain)] }

    public init(stringLiteral value: String) { parts = [.text(value)] }

    public init(stringInterpolation: Interpolation) { parts = stringInterpolation.parts }

    /// Builds an ``OptionText`` from a string literal.
    public struct Interpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) {
            if !literal.isEmpty { parts.append(.text(literal)) }
        }

        /// An option, spelt when the message is rendered.
        public mutating func appendInterpolation(option: OptionName) { parts.append(.option(option)) }

        /// Any other value, as text.
        public mutating func appendInterpolation<T>(_ value: T) { parts.append(.text("\(value)")) }
    }
}

/// An error whose message names options by ``OptionName``; a command line prints
/// `message(spelling:)` with its flag names instead of `description`.
public protocol OptionNamingError: Error, CustomStringConvertible {
    /// The message with each option spelt by `spell`.
    func message(spelling spell: (OptionName) -> String) -> String
}

/// A setting out of its range, or settings that cannot go together; nothing was sent.
public struct InvalidOptionError: OptionNamingError, Sendable, Equatable {
    /// The option at fault (the first one the message names).
    public var option: OptionName
    /// What is wrong.
    public var text: OptionText

    /// Creates an error about `option`.
    public init(_ option: OptionName, _ text: OptionText) {
        self.option = option
        self.text = text
    }

    public func message(spelling spell: (OptionName) -> String) -> String { text.rendered(spell) }
    public var description: String { text.description }
}

extension ClosedRange where Bound == Int {
    /// Throws ``InvalidOptionError`` unless `value` is in the range.
    public func check(_ value: Int, _ option: OptionName, unit: String = "") throws(InvalidOptionError) {
        guard contains(value) else {
            throw InvalidOptionError(option, "\(option: option) must be \(lowerBound) to \(upperBound)\(unit), not \(value)")
        }
    }
}

// What an upload will do, decided before any request: the options checked, the parent's manifest, the volume
// size and the blocks to go through. A value, built from the options, the image's extents and (for an
// incremental upload) the parent's manifest; nothing here touches the network.

import Crypto
import Foundation
public import AWSCore

extension UploadOptions {
    /// Blocks in flight at most (each holds a 512 KiB buffer and an HTTP connection).
    public static let workerRange = 1...1024
    /// StartSnapshot's Timeout, in minutes, as the EBS direct APIs take it.
    public static let snapshotTimeoutRange = 10...4320
    /// Volume sizes an EBS snapshot can have, in GiB (64 TiB at most).
    public static let volumeSizeRange = 1...65536

    /// Checks the options that do not depend on the image; the one place that knows their ranges.
    ///
    /// - Throws: `InvalidOptionError` naming the option.
    public func validate() throws(InvalidOptionError) {
        try Self.workerRange.check(workers, .workers)
        try Self.snapshotTimeoutRange.check(timeoutMinutes, .snapshotTimeout, unit: " minutes")
        if let v = volumeSizeGiB { try Self.volumeSizeRange.check(v, .volumeSize, unit: " GiB") }
        if (encrypted || kmsKeyARN != nil) && parentSnapshotID != nil {
            throw InvalidOptionError(
                encrypted ? .encrypted : .kmsKey,
                "\(option: .encrypted)/\(option: .kmsKey) cannot be combined with \(option: .parentSnapshot)")
        }
    }

    /// The directory of block manifests.
    var manifestDirectory: String { stateDirectory + "/manifests" }
    /// The directory of journals.
    var uploadsDirectory: String { stateDirectory + "/uploads" }
}

/// An upload decided: the snapshot to create and the blocks to go through.
public struct UploadPlan: Sendable {
    /// The options it was made from.
    public let options: UploadOptions
    /// The volume size: the option, else the image's size in whole GiB (at least 1) or the parent's, if larger.
    public let volumeSizeGiB: Int
    /// Blocks of the volume.
    public let blockCount: UInt64
    /// Whether the snapshot is encrypted (asked for, or the parent is).
    public let encrypted: Bool
    /// The parent's manifest, for an incremental upload.
    public let parent: BlockManifest?
    /// Block index ranges to go through, sorted and disjoint: every block of an encrypted volume, else the blocks
    /// holding data or overlay patches and the parent's blocks.
    public let candidates: [Range<UInt64>]

    /// Number of candidate blocks.
    public var candidateCount: UInt64 { candidates.reduce(0) { $0 + UInt64($1.count) } }

    /// Plans an upload of the image `reader` reads.
    ///
    /// - Parameters:
    ///   - options: what to create; checked here.
    ///   - reader: the image's blocks (its size and data extents, and the overlay).
    ///   - parent: the manifest of `options.parentSnapshotID` (see ``loadParent(_:)``).
    /// - Throws: `InvalidOptionError` for options out of range or a volume smaller than the image;
    ///   `AWSConfigurationError` when the image needs more than 64 TiB or the parent's manifest is missing.
    public init(options: UploadOptions, reader: ImageBlockReader, parent: BlockManifest?) throws {
        try options.validate()
        if options.parentSnapshotID != nil && parent == nil {
            throw AWSConfigurationError("an incremental upload needs the parent snapshot's block manifest")
        }
        let gib: UInt64 = 1 << 30
        let needed = Int(max(1, (reader.source.size + gib - 1) / gib))
        var volume = options.volumeSizeGiB ?? needed
        if let p = parent, options.volumeSizeGiB == nil { volume = max(volume, p.header.volumeSizeGiB) }
        guard volume >= needed else {
            throw InvalidOptionError(
                .volumeSize, "\(option: .volumeSize) \(volume) GiB is smaller than the image (\(needed) GiB needed)")
        }
        guard Self.withinEBSLimit(volume) else {
            throw AWSConfigurationError("volume size \(volume) GiB is over the 64 TiB EBS limit")
        }
        let encrypted = options.encrypted || options.kmsKeyARN != nil || parent?.header.encrypted == true
        let blockCount = UInt64(volume) * (gib / UInt64(ebsBlockSize))
        self.options = options
        self.volumeSizeGiB = volume
        self.blockCount = blockCount
        self.encrypted = encrypted
        self.parent = parent
        // Unwritten blocks of an encrypted snapshot read back as garbage, so every block of the volume is
        // sent; holes are still not read (the reader fills them with zeros).
        self.candidates =
            encrypted
            ? [0..<blockCount]
            : reader.candidateRanges(blockLimit: blockCount, extra: parent?.blockRanges ?? [])
    }

    static func withinEBSLimit(_ volume: Int) -> Bool { volume <= UploadOptions.volumeSizeRange.upperBound }

    /// The manifest of the options' parent snapshot, from the state directory; nil without a parent.
    ///
    /// - Throws: `AWSConfigurationError` when there is none, ``ManifestError`` when it is malformed or names
    ///   another snapshot.
    public static func loadParent(_ options: UploadOptions) throws -> BlockManifest? {
        guard let p = options.parentSnapshotID else { return nil }
        let path = BlockManifest.path(directory: options.manifestDirectory, snapshotID: p)
        guard FileManager.default.fileExists(atPath: path) else {
            throw AWSConfigurationError(
                "no local block manifest for \(p) (looked for \(path)); an incremental upload needs the "
                    + "manifest that zlabel wrote when it uploaded \(p)")
        }
        let m = try BlockManifest(path: path)
        guard m.header.snapshotID == p else {
            throw ManifestError(path: path, offset: 12, "manifest is for \(m.header.snapshotID), not \(p)")
        }
        return m
    }

    /// What StartSnapshot is asked for (the client token and its tag come from the journal).
    func startInput(clientToken: String) -> StartSnapshotInput {
        StartSnapshotInput(
            volumeSizeGiB: volumeSizeGiB, clientToken: clientToken, description: options.description,
            tags: Self.startTags(options.tags, clientToken: clientToken),
            parentSnapshotID: options.parentSnapshotID, encrypted: encrypted,
            kmsKeyARN: options.kmsKeyARN, timeoutMinutes: options.timeoutMinutes)
    }

    /// A new journal header for this plan.
    func journalHeader(
        name: String, identity: FileIdentity, region: String, endpoint: String, clientToken: String
    ) -> UploadJournalHeader {
        UploadJournalHeader(
            imagePath: name, image: identity, overlayDigest: options.overlay.digest, optionsDigest: optionsDigest,
            volumeSizeGiB: volumeSizeGiB, region: region, endpoint: endpoint, clientToken: clientToken,
            timeoutMinutes: options.timeoutMinutes, state: .starting)
    }

    /// Digest of what the snapshot is made with (volume size, description, tags, parent, encryption, timeout):
    /// a journal with another digest cannot be continued.
    public var optionsDigest: String {
        let o = options
        var s = "v=\(volumeSizeGiB)\nd=\(o.description ?? "")\np=\(o.parentSnapshotID ?? "")\ne=\(encrypted)\n"
        s += "k=\(o.kmsKeyARN ?? "")\nt=\(o.timeoutMinutes)\n"
        for t in o.tags { s += "tag=\(t.key.utf8.count):\(t.key)=\(t.value)\n" }
        return SHA256.hash(data: Array(s.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The tag that names a snapshot's StartSnapshot client token.
    ///
    /// AWS answers a repeated StartSnapshot with the same token with the same snapshot, but only a service that
    /// remembers the token does (moto does not, and nothing documents how long AWS does). With the token also in
    /// a tag, a rerun finds the snapshot with DescribeSnapshots.
    public static let clientTokenTagKey = "zlabel:client-token"

    /// The user's tags and the client-token tag (unless the user set that key).
    static func startTags(_ tags: [SnapshotTag], clientToken: String) -> [SnapshotTag] {
        if tags.contains(where: { $0.key == clientTokenTagKey }) { return tags }
        return tags + [SnapshotTag(key: clientTokenTagKey, value: clientToken)]
    }
}

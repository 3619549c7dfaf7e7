// `zlabel repair-checksums` over an image: the repair of every vdev's labels, and the result as text and as
// the JSON document of docs/json-output.md.

import DiskPartitions
public import NVList
public import ZFSImage

/// The checksum repair of every vdev in an image (or the one a selector picks).
public struct ChecksumRepairReport: Sendable {
    /// One label's outcome, with the partition or slice its vdev is in (`nil` for a bare vdev).
    public struct Entry: Sendable, Hashable {
        /// The partition or slice, or `nil`.
        public var region: String?
        /// What happened to the label.
        public var outcome: ChecksumRepair.Outcome
    }

    /// The image path, as given.
    public var path: String
    /// Whether nothing was written.
    public var dryRun: Bool
    /// Every label of every vdev, in image order.
    public var entries: [Entry]

    /// Labels whose checksum was rewritten (with ``dryRun``: would be).
    public var repaired: Int { entries.filter(\.outcome.repaired).count }

    /// Runs `ChecksumRepair.run(image:region:dryRun:)` on every vdev found in `image`; in a VM disk container,
    /// only after a rehearsal showed that every repair can be written in place.
    ///
    /// - Throws: `ImageError` or `PartitionTableError` when the image cannot be read or written, or (code
    ///   `container`) when a repair could not be written in place; then nothing is written.
    public init(image: any ImageStorage, path: String, selector: RegionSelector?, dryRun: Bool) throws {
        var entries: [Entry] = []
        let regions = try image.findVdevs(selector).regions
        // Inside a VM disk container, every repair must be writable in place (dry run too): rehearsed first.
        try InPlaceRehearsal.check([image]) { images in
            for region in regions { _ = try ChecksumRepair.run(image: images[0], region: region) }
        }
        for region in regions {
            for outcome in try ChecksumRepair.run(image: image, region: region, dryRun: dryRun) {
                entries.append(Entry(region: region.name, outcome: outcome))
            }
        }
        self.path = path
        self.dryRun = dryRun
        self.entries = entries
    }

    /// One line per label: `PATH: label N at byte OFFSET: REASON`.
    public var lines: [String] {
        entries.map { "\(path): label \($0.outcome.label) at byte \($0.outcome.offset): \($0.outcome.reason)" }
    }

    /// The `zlabel repair-checksums --json` object (without the schema version the command adds).
    public var json: JSONValue {
        .object([
            ("image", .string(path)), ("dry_run", .bool(dryRun)), ("repaired", .uint(UInt64(repaired))),
            ("labels", .array(entries.map { e in
                .object([
                    ("region", e.region.map(JSONValue.string) ?? .null), ("label", .uint(UInt64(e.outcome.label))),
                    ("offset", .uint(e.outcome.offset)), ("repaired", .bool(e.outcome.repaired)),
                    ("reason", .string(e.outcome.reason)),
                ])
            })),
        ])
    }
}

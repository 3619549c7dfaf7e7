import DiskPartitions
import Foundation
import NVList
import Testing
import TestSupport
import ZFSChecksum
import ZFSImage
import ZFSLabel

// Shared by the label-edit suites of this target (LabelEditOracleTests, CrashSafetyTests, RefusalTests,
// RestoreTests, RepairChecksumsTests): where the labels are, what an image looked like before, how to edit
// through the library, and the oracle checks every edit has to pass.

/// Byte ranges of one leaf vdev's labels inside an image.
enum LeafRanges {
    /// The four 112 KiB config areas (label offset + 0x4000) of the leaf at `offset` of `size` bytes: the only
    /// bytes an edit of a healthy leaf may change.
    static func configAreas(offset: UInt64 = 0, size: UInt64) -> [Range<Int>] {
        (0..<LabelLayout.labelCount).map { i in
            let start = Int(offset + LabelLayout.labelOffset(i, vdevSize: size)) + LabelLayout.configOffset
            return start..<(start + LabelLayout.configSize)
        }
    }

    /// The four whole 256 KiB labels: what an edit that writes a damaged label afresh may change.
    static func wholeLabels(offset: UInt64 = 0, size: UInt64) -> [Range<Int>] {
        (0..<LabelLayout.labelCount).map { i in
            let start = Int(offset + LabelLayout.labelOffset(i, vdevSize: size))
            return start..<(start + LabelLayout.labelSize)
        }
    }
}


/// Edits through the library, the way `zlabel set` does.
enum LibraryEdit {
    /// Opens every image read-write as a whole-image leaf (or the partition found in it) and plans `edit`.
    static func targets(_ urls: [URL], selector: RegionSelector? = nil) throws -> [EditTarget] {
        try urls.map { url in
            let file = try ImageFile(path: url.path, mode: .readWrite)
            let regions = try file.findVdevs(selector).regions
            guard regions.count == 1 else { throw EditTestError("\(url.lastPathComponent): \(regions.count) vdevs") }
            return EditTarget(image: file, region: regions[0])
        }
    }

    /// Plans and applies `edit` on `urls`; the backup goes to `backup` (nil: none).
    @discardableResult
    static func apply(_ urls: [URL], _ edit: LeafEdit, force: Bool = false, backup: URL? = nil,
                      selector: RegionSelector? = nil) throws -> (plan: LabelEditPlan, report: LabelWriteReport) {
        let targets = try targets(urls, selector: selector)
        let plan = try LabelWriter.plan(targets, edit: edit, force: force)
        let report = try LabelWriter.apply(plan, to: targets, backupPath: backup?.path)
        return (plan, report)
    }

    /// The labels of the leaf in an image, read by our own code.
    static func labels(_ url: URL, selector: RegionSelector? = nil) throws -> VdevLabels {
        let file = try ImageFile(path: url.path)
        let region = try #require(try file.findVdevs(selector).regions.first)
        return try file.readLabels(in: region)
    }

    /// The leaf guids of the pool's top-level vdev, in tree order, read from the first image.
    static func leafGuids(_ url: URL) throws -> [UInt64] {
        try #require(try labels(url).config).vdevLeaves.map(\.guid)
    }
}

struct EditTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The checks every edit in these suites has to pass, each made by real ZFS or GRUB code.
enum EditProof {
    /// One expected value of the edited leaf: nil means the key must be absent.
    typealias Expected = [(key: String, value: String?)]

    /// The node with `guid` in a label config's `vdev_tree` (the tree itself for a single vdev).
    static func leafNode(_ config: ExactJSON, guid: UInt64) -> ExactJSON? {
        func walk(_ node: ExactJSON, depth: Int) -> ExactJSON? {
            guard depth < 16 else { return nil }
            if let children = node["children"]?.array, !children.isEmpty {
                for child in children { if let found = walk(child, depth: depth + 1) { return found } }
                return nil
            }
            return node["guid"]?.uint64 == guid ? node : nil
        }
        return config["vdev_tree"].flatMap { walk($0, depth: 0) }
    }

    /// `config` without its top-level `txg` pair (order of the other pairs kept).
    static func withoutTXG(_ config: ExactJSON) -> ExactJSON {
        guard case .object(let members) = config else { return config }
        return .object(members.filter { $0.key != "txg" })
    }

    /// libnvpair/libzpool (`zlabel-json.sh`): all four labels unpack, have valid checksums, are identical, are of
    /// the expected byte order, and the leaf with `guid` holds `expected`; `absentTopLevel` keys are gone.
    @discardableResult
    static func labelsHold(
        _ device: Oracle.Device, leaf guid: UInt64, _ expected: Expected, absentTopLevel: [String] = [],
        bigEndian: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Oracle.LabelDump {
        let dump = try Oracle.zlabelJSON(device)
        #expect(dump.labelsValid == 4, "not every label is valid by libzpool:\n\(dump.result)", sourceLocation: sourceLocation)
        let first = dump.labels[0].config
        for label in dump.labels {
            #expect(label.isValid, "label \(label.index) of \(device.url.lastPathComponent)", sourceLocation: sourceLocation)
            #expect(label.byteSwapped == bigEndian, "label \(label.index) byte order", sourceLocation: sourceLocation)
            #expect(label.config == first, "label \(label.index) differs from label 0", sourceLocation: sourceLocation)
            let config = try #require(label.config, sourceLocation: sourceLocation)
            let node = try #require(leafNode(config, guid: guid), "no leaf \(guid) in label \(label.index)",
                                    sourceLocation: sourceLocation)
            for (key, value) in expected {
                #expect(node[key]?.string == value, "label \(label.index): \(key)", sourceLocation: sourceLocation)
                if value == nil {
                    #expect(node[key] == nil, "label \(label.index): \(key) still present", sourceLocation: sourceLocation)
                }
            }
            for key in absentTopLevel {
                #expect(config[key] == nil, "label \(label.index): \(key) still present", sourceLocation: sourceLocation)
            }
        }
        return dump
    }

    /// `zdb-check.sh`: labels identical, userland import, with `full` also `zdb -bc` and each label alone.
    static func imports(
        _ devices: [Oracle.Device], expect: KeyValuePairs<String, String> = [:], full: Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let result = try Oracle.zdbCheck(devices, expect: expect, fast: !full, isolation: full)
        #expect(result.succeeded, "real ZFS rejects the edited pool:\n\(result)", sourceLocation: sourceLocation)
    }

    /// GRUB 2's own ZFS code reads the edited boot strings.
    static func grubReads(
        _ devices: [Oracle.Device], partition: String? = nil, bootpath: String, diskdevid: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let view = try Oracle.grubBootpath(devices, partition: partition)
        #expect(view.bootpath == bootpath, "\(view.result)", sourceLocation: sourceLocation)
        #expect(view.diskdevid == diskdevid, "\(view.result)", sourceLocation: sourceLocation)
    }

    /// OpenZFS 2.3 `zhack label repair -c` on a copy finds nothing to repair and leaves it byte-identical: every
    /// checksum we wrote is the one real ZFS computes. (It exits 1 when it repaired nothing. Little-endian
    /// labels only: on big-endian ones zhack 2.3 rewrites every label with a checksum libzpool rejects.)
    static func zhackFindsNothingToRepair(_ url: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try TemporaryDirectory(prefix: "zlabel-zhack")
        let copy = scratch.file(url.lastPathComponent)
        try Fixture.sparseCopy(from: url, to: copy)
        let before = try Data(contentsOf: copy)
        let result = try Oracle.zhackRepairChecksums(copy)
        let skipped = result.stdoutText.components(separatedBy: "checksum: skipped").count - 1
        #expect(skipped == 4 && !result.stdoutText.contains("checksum: repaired"), "\(result)", sourceLocation: sourceLocation)
        #expect(try Data(contentsOf: copy) == before, "zhack 2.3 changed checksums zlabel wrote", sourceLocation: sourceLocation)
    }

    /// Nothing outside `allowed` changed since `snapshot`.
    static func onlyChanged(_ allowed: [Range<Int>], since snapshot: ImageSnapshot, what: String = "the four config areas",
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let change = try snapshot.firstChange(outside: allowed)
        #expect(change == nil, "\(snapshot.url.lastPathComponent) changed at byte \(change ?? -1), outside \(what)",
                sourceLocation: sourceLocation)
    }
}

/// Crafts label configs for negative tests with our own encoder (never used to make a pool an oracle judges as
/// the product of an edit): re-encodes a changed config and seals its checksum, as ZFS would have written it.
enum CraftLabels {
    /// Rewrites the config area of `labels` of the bare vdev `url` with `transform` applied to the config.
    static func rewrite(_ url: URL, labels: [Int] = [0, 1, 2, 3], _ transform: (inout NVList) throws -> Void) throws {
        let file = try ImageFile(path: url.path, mode: .readWrite)
        let current = try file.readLabels(in: file.wholeImage)
        for index in labels {
            let label = current.labels[index]
            var config = try #require(label.config, "label \(index) has no config to change")
            try transform(&config)
            var area = config.encodeXDR(hostByteOrder: label.streamHeader?.hostByteOrder ?? .little)
            try #require(area.count <= LabelLayout.configCapacity, "crafted config too big: \(area.count)")
            area += [UInt8](repeating: 0, count: LabelLayout.configSize - area.count)
            let offset = label.offset + UInt64(LabelLayout.configOffset)
            EmbeddedChecksum.seal(&area, offset: offset, order: label.byteOrder ?? .little)
            try file.write(area, at: offset)
        }
        try file.synchronize()
    }
}

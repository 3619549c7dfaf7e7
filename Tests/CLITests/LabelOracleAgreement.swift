import Foundation
import Testing
import TestSupport

/// Shared pieces of the oracle suites in this target: running `zlabel inspect --json` on a vdev, comparing its
/// labels with what real ZFS (`zlabel-json.sh`) says about the same bytes, and reading or damaging image bytes.
enum LabelAgreement {
    static let labelSize: UInt64 = 256 * 1024
    static let configOffset: UInt64 = 0x4000
    /// Bytes a packed config may use: the 112 KiB area less its 40-byte embedded checksum.
    static let configCapacity = 112 * 1024 - 40
    static let ringOffset: UInt64 = 0x20000

    /// Where a vdev sits in an image file.
    struct Vdev: Sendable, CustomStringConvertible {
        var url: URL
        var offset: UInt64
        var size: UInt64

        init(_ url: URL, offset: UInt64 = 0, size: UInt64) {
            self.url = url
            self.offset = offset
            self.size = size
        }

        /// The pool of `fixture` inside the file at `url` (a copy of it, or the shared image).
        init(_ url: URL, fixture: Fixture) {
            self.init(url, offset: fixture.partition?.offset ?? 0, size: fixture.partition?.size ?? fixture.size)
        }

        var device: Oracle.Device { Oracle.Device(url, offset: offset == 0 ? nil : offset, size: offset == 0 ? nil : size) }
        var description: String { "\(url.lastPathComponent)@\(offset):\(size)" }

        /// Label `index`'s offset from the vdev start, from the size aligned down to 256 KiB (`vdev_label_offset`).
        func labelOffset(_ index: Int) -> UInt64 {
            let psize = size & ~(labelSize - 1)
            return index < 2 ? UInt64(index) * labelSize : psize - UInt64(4 - index) * labelSize
        }

        /// Absolute byte offset in the file of label `index`'s config area.
        func configArea(_ index: Int) -> UInt64 { offset + labelOffset(index) + configOffset }
    }

    // MARK: running zlabel

    /// `zlabel inspect --json [--uberblocks] ARGS…`, checked to exit 0 (or 2 when it says no label unpacks, as
    /// zdb -l does) and parsed.
    static func inspectJSON(_ arguments: [String], uberblocks: Bool = false,
                            sourceLocation: SourceLocation = #_sourceLocation) throws -> (ProcessResult, ExactJSON) {
        let run = try ZLabelCLI.run(["inspect", "--json"] + (uberblocks ? ["--uberblocks"] : []) + arguments)
        try #require(run.status == 0 || (run.status == 2 && run.stderrText.contains("no ZFS label found")), "\(run)",
                     sourceLocation: sourceLocation)
        let doc = try ExactJSON.parse(run.stdout)
        return (run, doc)
    }

    /// The one element of `vdevs` in an inspect document.
    static func onlyVdev(_ doc: ExactJSON, sourceLocation: SourceLocation = #_sourceLocation) throws -> ExactJSON {
        let vdevs = try #require(doc["vdevs"]?.array, "no vdevs array in \(doc)", sourceLocation: sourceLocation)
        try #require(vdevs.count == 1, "expected one vdev, got \(vdevs.count): \(doc)", sourceLocation: sourceLocation)
        return vdevs[0]
    }

    // MARK: comparing with the oracle

    /// The status zlabel must give a label, from libzpool's verdict, and for a label that does not unpack, from
    /// whether its config area is all zero (absent) or not (unreadable).
    static func expectedStatus(_ label: Oracle.LabelDump.Label, configAreaIsZero: Bool) -> String {
        if label.unpacked { return label.checksumValid ? "valid" : "checksum-mismatch" }
        return configAreaIsZero ? "absent" : "unreadable"
    }

    /// Every difference between two JSON values, as `path: ours ≠ theirs` (numbers compared by their exact
    /// digits, object members in order). Empty when they are equal.
    static func differences(_ ours: ExactJSON?, _ theirs: ExactJSON?, path: String = "config", limit: Int = 20) -> [String] {
        var out: [String] = []
        diff(ours, theirs, path, &out, limit)
        return out
    }

    private static func diff(_ a: ExactJSON?, _ b: ExactJSON?, _ path: String, _ out: inout [String], _ limit: Int) {
        guard out.count < limit else { return }
        switch (a, b) {
        case (nil, nil): return
        case (.object(let x)?, .object(let y)?):
            if x.map(\.key) != y.map(\.key) {
                out.append("\(path): keys \(x.map(\.key)) ≠ oracle's \(y.map(\.key))")
            }
            for member in x {
                guard let other = y.first(where: { $0.key == member.key }) else { continue }
                diff(member.value, other.value, path + "." + member.key, &out, limit)
            }
        case (.array(let x)?, .array(let y)?):
            if x.count != y.count { out.append("\(path): \(x.count) elements ≠ oracle's \(y.count)") }
            for i in 0..<min(x.count, y.count) { diff(x[i], y[i], "\(path)[\(i)]", &out, limit) }
        default:
            if a != b { out.append("\(path): \(a.map(\.description) ?? "missing") ≠ oracle's \(b.map(\.description) ?? "missing")") }
        }
    }

    /// Checks one label of an inspect document against the oracle's view of it: status, byte order, config.
    static func checkLabel(_ ours: ExactJSON, _ theirs: Oracle.LabelDump.Label, vdev: Vdev, context: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        let i = theirs.index
        #expect(ours["index"]?.int == i, "\(context): label order", sourceLocation: sourceLocation)
        #expect(ours["offset"]?.uint64 == theirs.offset, "\(context) L\(i): offset", sourceLocation: sourceLocation)
        #expect(theirs.offset == vdev.labelOffset(i), "\(context) L\(i): oracle offset", sourceLocation: sourceLocation)
        let area = try readBytes(vdev.url, at: vdev.configArea(i), count: Int(112 * 1024))
        let expected = expectedStatus(theirs, configAreaIsZero: area.allSatisfy { $0 == 0 })
        #expect(ours["status"]?.string == expected,
                "\(context) L\(i): status \(ours["status"]?.string ?? "nil"), oracle unpacked=\(theirs.unpacked) cksum_valid=\(theirs.checksumValid)",
                sourceLocation: sourceLocation)
        // libzpool learns the byte order from the checksum magic; we do too, or from the nvlist header
        if theirs.checksumValid || theirs.unpacked {
            #expect(ours["byte_order"]?.string == (theirs.byteSwapped ? "big" : "little"),
                    "\(context) L\(i): byteOrder \(ours["byte_order"].map(\.description) ?? "nil"), oracle byteswapped=\(theirs.byteSwapped)",
                    sourceLocation: sourceLocation)
        }
        if theirs.unpacked {
            let diffs = differences(ours["config"], theirs.config)
            #expect(diffs.isEmpty, "\(context) L\(i): config differs from libnvpair's:\n\(diffs.joined(separator: "\n"))",
                    sourceLocation: sourceLocation)
        } else {
            #expect(ours["config"] == nil, "\(context) L\(i): a config for a label libnvpair cannot unpack",
                    sourceLocation: sourceLocation)
        }
    }

    /// Checks `activeUberblock` of an inspect vdev against the uberblock the oracle says `vdev_uberblock_load`
    /// keeps on this device (checksum and magic, then txg, timestamp, MMP sequence; any version).
    static func checkActiveUberblock(_ vdev: ExactJSON, _ dump: Oracle.LabelDump, context: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) {
        let ours = vdev["active_uberblock"]
        guard let expected = dump.selected else {
            #expect(ours == .null, "\(context): an active uberblock where ZFS finds none", sourceLocation: sourceLocation)
            return
        }
        #expect(ours?["txg"]?.uint64 == expected.txg, "\(context): active txg", sourceLocation: sourceLocation)
        #expect(ours?["timestamp"]?.uint64 == expected.timestamp, "\(context): active timestamp",
                sourceLocation: sourceLocation)
        #expect(ours?["guid_sum"]?.uint64 == expected.guidSum, "\(context): active guid_sum",
                sourceLocation: sourceLocation)
        #expect(ours?["label"]?.int == expected.label, "\(context): active uberblock's label", sourceLocation: sourceLocation)
        #expect(ours?["slot"]?.int == expected.slot, "\(context): active uberblock's slot", sourceLocation: sourceLocation)
        #expect(ours?["mmp_sequence"]?.uint64 == expected.mmpSequence, "\(context): active MMP sequence",
                sourceLocation: sourceLocation)
        #expect(ours?["version"]?.uint64 == expected.version, "\(context): active version", sourceLocation: sourceLocation)
        #expect(ours?["version_supported"]?.bool == expected.versionSupported, "\(context): version supported",
                sourceLocation: sourceLocation)
    }

    /// Checks every uberblock slot of `inspect --json --uberblocks` against `zlabel-json.sh -a`.
    static func checkUberblockRings(_ vdev: ExactJSON, _ dump: Oracle.LabelDump, context: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        for theirs in dump.labels {
            let ours = vdev["labels"]?[theirs.index]?["uberblocks"]?.array ?? []
            #expect(ours.count == theirs.uberblocks.count,
                    "\(context) L\(theirs.index): \(ours.count) uberblocks ≠ oracle's \(theirs.uberblocks.count)",
                    sourceLocation: sourceLocation)
            for (a, b) in zip(ours, theirs.uberblocks) {
                let where_ = "\(context) L\(theirs.index) slot \(b.slot)"
                #expect(a["slot"]?.int == b.slot, "\(where_): slot", sourceLocation: sourceLocation)
                #expect(a["offset"]?.uint64 == b.offset, "\(where_): offset", sourceLocation: sourceLocation)
                #expect(a["checksum_valid"]?.bool == b.checksumValid, "\(where_): checksum verdict",
                        sourceLocation: sourceLocation)
                #expect(a["byte_order"]?.string == (b.byteSwapped ? "big" : "little"), "\(where_): byte order",
                        sourceLocation: sourceLocation)
                #expect(a["version"]?.uint64 == b.version, "\(where_): version", sourceLocation: sourceLocation)
                #expect(a["txg"]?.uint64 == b.txg, "\(where_): txg", sourceLocation: sourceLocation)
                #expect(a["guid_sum"]?.uint64 == b.guidSum, "\(where_): guid_sum", sourceLocation: sourceLocation)
                #expect(a["timestamp"]?.uint64 == b.timestamp, "\(where_): timestamp", sourceLocation: sourceLocation)
            }
        }
    }

    /// Runs inspect on `vdev` (bare: the file alone; otherwise with `--offset/--size`) and the oracle on the same
    /// bytes, and checks every label and the active uberblock. Returns both for further checks.
    @discardableResult
    static func checkAgainstOracle(_ vdev: Vdev, arguments: [String]? = nil, context: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws -> (ExactJSON, Oracle.LabelDump) {
        let dump = try Oracle.zlabelJSON(vdev.device)
        let args = arguments ?? (vdev.offset == 0 ? [vdev.url.path]
            : ["--offset", String(vdev.offset), "--size", String(vdev.size), vdev.url.path])
        let (_, doc) = try inspectJSON(args, sourceLocation: sourceLocation)
        let ours = try onlyVdev(doc, sourceLocation: sourceLocation)
        #expect(ours["offset"]?.uint64 == vdev.offset, "\(context): vdev offset", sourceLocation: sourceLocation)
        #expect(ours["size"]?.uint64 == vdev.size, "\(context): vdev size", sourceLocation: sourceLocation)
        let labels = try #require(ours["labels"]?.array, sourceLocation: sourceLocation)
        try #require(labels.count == 4, "\(context): \(labels.count) labels", sourceLocation: sourceLocation)
        for theirs in dump.labels {
            try checkLabel(labels[theirs.index], theirs, vdev: vdev, context: context, sourceLocation: sourceLocation)
        }
        checkActiveUberblock(ours, dump, context: context, sourceLocation: sourceLocation)
        return (ours, dump)
    }

    // MARK: bytes

    static func readBytes(_ url: URL, at offset: UInt64, count: Int) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let data = try handle.read(upToCount: count) ?? Data()
        return [UInt8](data)
    }

    static func writeBytes(_ bytes: [UInt8], to url: URL, at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: url)
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
    }

    /// XORs the byte at `offset` of the file with `mask`.
    static func xorByte(_ url: URL, at offset: UInt64, mask: UInt8) throws {
        let old = try readBytes(url, at: offset, count: 1)
        try #require(old.count == 1, "offset \(offset) is past the end of \(url.path)")
        try writeBytes([old[0] ^ mask], to: url, at: offset)
    }

    /// The first offset of `needle` in `haystack`.
    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }

    /// The offset in `line` text of a byte offset, written either in hex (`0x3f80000`) or in decimal.
    static func mentions(_ text: String, offset: UInt64) -> Bool {
        text.contains("0x" + String(offset, radix: 16)) || text.contains(String(offset))
    }
}

public import Foundation
import Testing

/// Real ZFS and real GRUB as test oracles: Swift front ends to the scripts in `Tests/Oracle/` (see its README).
///
/// Every call first checks that the oracle can run here (`Oracle.require`): in CI (`CI=true`) a missing oracle is
/// a test failure; elsewhere the test is skipped with a message saying what to install.
///
/// ```swift
/// @Test func labelsAgreeWithZFS() throws {
///     let image = try Fixture.image("rpool-kvm.img")
///     let dump = try Oracle.zlabelJSON(image)
///     #expect(dump.labelsValid == 4)
///     #expect(dump.labels[0].config?[path: "vdev_tree.phys_path"]?.string == "/pci@0,0/pci1af4,2@4/blkdev@0,0:a")
/// }
/// ```
public enum Oracle {
    /// A device argument: a whole file, or a byte range of one (a partition or slice, `IMAGE@OFFSET:SIZE`).
    public struct Device: Sendable, Hashable, ExpressibleByStringLiteral {
        public let url: URL
        public let offset: UInt64?
        public let size: UInt64?

        public init(_ url: URL, offset: UInt64? = nil, size: UInt64? = nil) {
            self.url = url
            self.offset = offset
            self.size = size
        }

        public init(stringLiteral path: String) { self.init(URL(fileURLWithPath: path)) }

        /// The pool partition of a whole-disk fixture (or the whole file for a bare vdev).
        public init(_ url: URL, fixture: Fixture) {
            self.init(url, offset: fixture.partition?.offset, size: fixture.partition?.size)
        }

        var argument: String {
            guard let offset else { return url.path }
            return "\(url.path)@\(offset)" + (size.map { ":\($0)" } ?? "")
        }
    }

    // MARK: zlabel-json.sh

    /// The four labels as libnvpair decodes them and libzpool's label checksum judges them.
    public struct LabelDump: Sendable {
        public let result: ProcessResult
        /// The whole JSON document.
        public let json: ExactJSON
        public let labels: [Label]
        /// Labels that unpack and whose nvlist checksum is valid (the script exits 0 only when this is 4).
        public let labelsValid: Int
        /// Labels with at least one uberblock whose checksum is valid.
        public let labelsWithValidUberblock: Int
        /// The vdev size after aligning down to 256 KiB, as ZFS computes the label offsets from it.
        public let alignedSize: UInt64
        /// The uberblock `vdev_uberblock_load` keeps over this device's four rings (libzpool's
        /// `uberblock_verify`, the label checksum, and the txg / timestamp / MMP-sequence order; no version
        /// filter), or nil when no slot qualifies.
        public let selected: Selected?

        public struct Selected: Sendable {
            public let label: Int, slot: Int
            public let offset: UInt64
            public let txg: UInt64, timestamp: UInt64, mmpSequence: UInt64, version: UInt64, guidSum: UInt64
            /// `SPA_VERSION_IS_SUPPORTED(version)` as libzpool defines it.
            public let versionSupported: Bool
        }

        public struct Label: Sendable {
            public let index: Int
            /// Byte offset of the label (relative to the device or partition start).
            public let offset: UInt64
            /// Byte offset of the 112 KiB nvlist area.
            public let nvlistOffset: UInt64?
            public let checksumValid: Bool
            /// The label is of the other byte order than this machine (big-endian on x86).
            public let byteSwapped: Bool
            public let unpacked: Bool
            public let readError: Bool
            /// The label config, as `nvlist_print_json` writes it; nil when it does not unpack.
            public let config: ExactJSON?
            /// The best uberblock of this label's ring (highest txg, then timestamp, valid checksum), or with
            /// `allUberblocks: true` every slot with the uberblock magic.
            public let uberblocks: [Uberblock]
            public let uberblocksWithMagic: Int
            public let uberblocksChecksumValid: Int
            public let uberblockSlotSize: Int?

            /// The oracle's verdict in zlabel's vocabulary: `valid`, `checksum-mismatch`, `unreadable` or `absent`.
            /// (A slot that holds no nvlist at all is reported as `unreadable` or `absent` by us; the oracle only
            /// says it did not unpack.)
            public var isValid: Bool { checksumValid && unpacked }
            public var bestUberblock: Uberblock? { uberblocks.first { $0.best } }
        }

        public struct Uberblock: Sendable {
            public let slot: Int
            public let offset: UInt64
            public let checksumValid: Bool
            public let byteSwapped: Bool
            public let best: Bool
            public let version: UInt64
            public let txg: UInt64
            public let guidSum: UInt64
            public let timestamp: UInt64
        }

        init(result: ProcessResult) throws {
            self.result = result
            let json = try ExactJSON.parse(result.stdout)
            self.json = json
            func u64(_ v: ExactJSON?, _ what: String) throws -> UInt64 {
                guard let n = v?.uint64 else { throw OracleError.badOutput(result, "no integer \(what)") }
                return n
            }
            var labels: [Label] = []
            for l in json["labels"]?.array ?? [] {
                var ubs: [Uberblock] = []
                for u in l["uberblocks"]?.array ?? [] {
                    ubs.append(Uberblock(
                        slot: Int(try u64(u["slot"], "slot")), offset: try u64(u["offset"], "uberblock offset"),
                        checksumValid: u["cksum_valid"]?.bool == true, byteSwapped: u["byteswapped"]?.bool == true,
                        best: u["best"]?.bool == true, version: try u64(u["version"], "version"),
                        txg: try u64(u["txg"], "txg"), guidSum: try u64(u["guid_sum"], "guid_sum"),
                        timestamp: try u64(u["timestamp"], "timestamp")))
                }
                labels.append(Label(
                    index: Int(try u64(l["index"], "index")), offset: try u64(l["offset"], "label offset"),
                    nvlistOffset: l["nvlist_offset"]?.uint64, checksumValid: l["cksum_valid"]?.bool == true,
                    byteSwapped: l["byteswapped"]?.bool == true, unpacked: l["unpacked"]?.bool == true,
                    readError: l["read_error"]?.bool == true, config: l["config"], uberblocks: ubs,
                    uberblocksWithMagic: l["uberblocks_with_magic"]?.int ?? 0,
                    uberblocksChecksumValid: l["uberblocks_cksum_valid"]?.int ?? 0,
                    uberblockSlotSize: l["uberblock_slot_size"]?.int))
            }
            guard labels.count == 4 else { throw OracleError.badOutput(result, "expected 4 labels") }
            self.labels = labels
            self.labelsValid = Int(try u64(json["labels_valid"], "labels_valid"))
            self.labelsWithValidUberblock = Int(try u64(json["labels_with_valid_uberblock"], "labels_with_valid_uberblock"))
            self.alignedSize = try u64(json["psize"], "psize")
            if let s = json["selected"], s != .null {
                self.selected = Selected(
                    label: Int(try u64(s["label"], "selected label")), slot: Int(try u64(s["slot"], "selected slot")),
                    offset: try u64(s["offset"], "selected offset"), txg: try u64(s["txg"], "selected txg"),
                    timestamp: try u64(s["timestamp"], "selected timestamp"),
                    mmpSequence: try u64(s["mmp_seq"], "selected mmp_seq"),
                    version: try u64(s["version"], "selected version"), guidSum: try u64(s["guid_sum"], "selected guid_sum"),
                    versionSupported: s["version_supported"]?.bool == true)
            } else {
                self.selected = nil
            }
        }
    }

    // MARK: zfs-ubload.sh

    /// What real ZFS's import does with a pool's uberblocks (`zfs-ubload.sh`).
    public struct UberblockLoad: Sendable {
        public let result: ProcessResult
        /// The txg of the uberblock `vdev_uberblock_load` chose, from its own debug message; nil if it found none.
        public let bestTxg: UInt64?
        /// Whether the import got as far as loading the pool (then `uberblock` is zdb -u's dump of it).
        public let imported: Bool
        /// What `spa_load` said when it failed (e.g. "version 999 is not supported").
        public let failure: String?
        /// The loaded pool's uberblock as `zdb -u` prints it.
        public let txg: UInt64?, timestamp: UInt64?, version: UInt64?, guidSum: UInt64?
    }

    /// Runs `zfs-ubload.sh` on all the leaf images of one pool (read-only).
    public static func zfsUberblockLoad(_ urls: [URL]) throws -> UberblockLoad {
        try require(.zdbCheck)
        let result = try script("zfs-ubload.sh", urls.map(\.path), timeout: 120)
        guard result.status == 0, !result.timedOut else { throw OracleError.failed(result) }
        let json = try ExactJSON.parse(result.stdout)
        let ub = json["uberblock"]
        return UberblockLoad(
            result: result, bestTxg: json["best_txg"]?.uint64, imported: json["imported"]?.bool == true,
            failure: json["failure"]?.string, txg: ub?["txg"]?.uint64, timestamp: ub?["timestamp"]?.uint64,
            version: ub?["version"]?.uint64, guidSum: ub?["guid_sum"]?.uint64)
    }

    /// Runs `zlabel-json.sh` on `device` (exit 0 only if all four labels are valid; other statuses are returned,
    /// not thrown, so tests can look at damaged images).
    public static func zlabelJSON(_ device: Device, allUberblocks: Bool = false) throws -> LabelDump {
        try require(.zlabelJSON)
        var args: [String] = []
        if let offset = device.offset { args += ["-o", String(offset)] }
        if let size = device.size { args += ["-s", String(size)] }
        if allUberblocks { args.append("-a") }
        let result = try script("zlabel-json.sh", args + [device.url.path])
        guard result.status == 0 || result.status == 1, !result.timedOut else {
            throw OracleError.failed(result)
        }
        return try LabelDump(result: result)
    }

    public static func zlabelJSON(_ url: URL, offset: UInt64? = nil, size: UInt64? = nil,
                                  allUberblocks: Bool = false) throws -> LabelDump {
        try zlabelJSON(Device(url, offset: offset, size: size), allUberblocks: allUberblocks)
    }

    // MARK: zdb

    /// `zdb -l DEVICE` of Debian's zdb 2.1.11 (does not check label checksums; see `zdb23Label`).
    public static func zdbLabel(_ url: URL, extraArguments: [String] = []) throws -> ProcessResult {
        try require(.zdb)
        return try Run.run("zdb", ["-l"] + extraArguments + [url.path], timeout: 120)
    }

    /// `zdb-check.sh`: is the pool on `devices` (give every member) still a good pool by real ZFS? Labels
    /// identical and readable, userland import, metadata checksums (unless `fast`), and each label alone enough to
    /// import (unless `isolation: false`). `expect` asserts label values (`phys_path` → `/xpvd/...`).
    /// Check `result.succeeded`; `result.stdout` names every failed check with ZFS's reason.
    public static func zdbCheck(_ devices: [Device], expect: KeyValuePairs<String, String> = [:],
                                fast: Bool = false, isolation: Bool = true, quiet: Bool = true) throws -> ProcessResult {
        try require(.zdbCheck)
        var args: [String] = []
        if quiet { args.append("-q") }
        if fast { args.append("-f") }
        if !isolation { args.append("-i") }
        for (key, value) in expect { args += ["-e", "\(key)=\(value)"] }
        return try script("zdb-check.sh", args + devices.map(\.argument))
    }

    // MARK: GRUB

    /// What GRUB 2's own ZFS code computes for a pool.
    public struct GrubView: Sendable {
        public let result: ProcessResult
        /// `zfs-bootfs=POOL/OBJ,bootpath="…",diskdevid="…"`, as GRUB passes it to an illumos kernel.
        public let bootfs: String
        public let pool: String
        public let mdnobj: String
        /// Empty when GRUB dropped it (it needs both phys_path and devid).
        public let bootpath: String
        public let diskdevid: String
        /// The text after `---- cat …` when `cat:` was given.
        public let catOutput: String?
    }

    /// Runs `grub-bootpath.sh`: GRUB 2.06 (grub-emu) reads the pool from `images` ((hd0), (hd1), …).
    /// - Parameters:
    ///   - partition: GRUB partition of hd0 holding the pool (`gpt1`, `gpt2`); nil = the whole image.
    ///   - dataset: dataset for zfs-bootfs relative to the pool (`ROOT/omnios`).
    ///   - cat: a file to read through GRUB (`/ROOT/omnios@/etc/motd`).
    /// Throws `OracleError.failed` when GRUB computed no zfs-bootfs string.
    public static func grubBootpath(_ images: [Device], partition: String? = nil, dataset: String? = nil,
                                    cat: String? = nil) throws -> GrubView {
        try require(.grub)
        var args: [String] = []
        if let partition { args += ["-p", partition] }
        if let dataset { args += ["-D", dataset] }
        if let cat { args += ["-c", cat] }
        let result = try script("grub-bootpath.sh", args + images.map(\.argument), timeout: 120)
        let text = result.stdoutText
        var fields: [String: String] = [:]
        var catLines: [String]? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if catLines != nil {
                catLines?.append(line)
            } else if line.hasPrefix("---- cat ") {
                catLines = []
            } else if line.hasPrefix("zfs-bootfs=") {
                fields["zfs-bootfs"] = line
            } else if let eq = line.firstIndex(of: "=") {
                fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
        }
        guard result.status == 0 || (cat != nil && fields["zfs-bootfs"] != nil), let bootfs = fields["zfs-bootfs"]
        else { throw OracleError.failed(result) }
        return GrubView(
            result: result, bootfs: bootfs, pool: fields["pool"] ?? "", mdnobj: fields["mdnobj"] ?? "",
            bootpath: fields["bootpath"] ?? "", diskdevid: fields["diskdevid"] ?? "",
            catOutput: catLines?.joined(separator: "\n"))
    }

    // MARK: OpenZFS 2.3 (zfs23.sh)

    /// `zdb`/`zhack` from OpenZFS 2.3 (unpacked, not installed): `zfs23(["zdb", "-l", path])`.
    public static func zfs23(_ arguments: [String]) throws -> ProcessResult {
        try require(.zfs23)
        return try script("zfs23.sh", arguments, timeout: 120)
    }

    /// `zhack label repair -c DEVICE` (2.3): recomputes every label nvlist checksum with real ZFS code, in place.
    ///
    /// Only a checksum oracle for **little-endian** labels: on a big-endian (SPARC) label, zhack 2.3 writes the
    /// checksum trailer in the host's byte order and leaves a label that no ZFS accepts any more (the pool no longer
    /// imports). `OracleHarnessTests` pins both behaviours. Exit status 0 when it repaired something, 1 when every
    /// checksum was already right.
    public static func zhackRepairChecksums(_ url: URL) throws -> ProcessResult {
        try zfs23(["zhack", "label", "repair", "-c", url.path])
    }

    /// `zdb -lll DEVICE` of zdb 2.3: every label printed on its own, with `(Bad label cksum)` after the header of
    /// a label whose nvlist checksum is wrong. (Plain `-l` groups labels with identical content and flags only the
    /// first label of a group.)
    public static func zdb23Label(_ url: URL) throws -> ProcessResult {
        try zfs23(["zdb", "-lll", url.path])
    }

    /// The labels zdb 2.3 flags with `(Bad label cksum)`, from `zdb -lll`.
    public static func zdb23BadChecksumLabels(_ url: URL) throws -> [Int] {
        let result = try zdb23Label(url)
        guard !result.timedOut, result.stdoutText.contains("LABEL ") else { throw OracleError.failed(result) }
        return result.stdoutText.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("LABEL "), line.contains("(Bad label cksum)") else { return nil }
            return Int(line.dropFirst("LABEL ".count).prefix { $0.isNumber })
        }
    }

    // MARK: import with real ZFS

    /// `reimport-pool.sh`: imports the pool on `images` with real ZFS. `readOnly` (the default) is a pure import
    /// check and writes nothing; otherwise ZFS syncs and exports, rewriting every label itself. `presentAs` maps
    /// an image to the /dev path ZFS should see it under (e.g. `/dev/dsk/c1t0d0s0`). `extra`: more options
    /// (`-x 0:phys_path=…`, `-H omnios`, `-h 0x0badc0de`).
    public static func reimport(_ images: [URL], presentAs: [URL: String] = [:], readOnly: Bool = true,
                                extra: [String] = []) throws -> ProcessResult {
        try require(.reimport)
        let args = (readOnly ? ["-r"] : []) + extra
            + images.map { url in presentAs[url].map { "\(url.path)=\($0)" } ?? url.path }
        return try script("reimport-pool.sh", args, timeout: 300)
    }

    // MARK: helpers that are not oracles

    /// `label-tool.py ARGS…` (verify, flip, fixlabel, replace, replace-u64): crafts damaged or edited copies.
    public static func labelTool(_ arguments: [String]) throws -> ProcessResult {
        try require(.labelTool)
        return try Run.run("python3", [Repository.oracle.appending(path: "label-tool.py").path] + arguments, timeout: 120)
    }

    /// Flips one byte (xor 0xff) at `label` start + `offset` (0x5000 = the unused nvlist tail: only the
    /// checksum breaks). Throws when the tool fails.
    public static func flipByte(in url: URL, label: Int, at offset: Int) throws {
        let result = try labelTool(["flip", url.path, String(label), "0x" + String(offset, radix: 16)])
        guard result.succeeded else { throw OracleError.failed(result) }
    }

    /// `make-real-pool.sh ARGS…`: a new pool made by real ZFS (root only; ~2 s).
    public static func makeRealPool(_ arguments: [String]) throws -> ProcessResult {
        try require(.makeRealPool)
        return try script("make-real-pool.sh", arguments, timeout: 300)
    }

    /// `make-disk-image.py ARGS…`: wraps a pool into a whole-disk image (prints JSON).
    public static func makeDiskImage(_ arguments: [String]) throws -> ProcessResult {
        try require(.makeDiskImage)
        return try Run.run("python3", [Repository.oracle.appending(path: "make-disk-image.py").path] + arguments)
    }

    /// Runs a script of `Tests/Oracle/` with bash.
    public static func script(_ name: String, _ arguments: [String], timeout: TimeInterval = 300) throws -> ProcessResult {
        try Run.run("bash", [Repository.oracle.appending(path: name).path] + arguments, timeout: timeout)
    }
}

public enum OracleError: Error, CustomStringConvertible {
    /// The oracle cannot run on this machine.
    case missing(Oracle.Tool, String)
    /// The oracle ran and failed in a way the caller did not allow.
    case failed(ProcessResult)
    /// The oracle's output could not be understood.
    case badOutput(ProcessResult, String)

    public var description: String {
        switch self {
        case .missing(let tool, let reason):
            "oracle \(tool.rawValue) unavailable: \(reason)"
        case .failed(let result):
            "oracle failed:\n\(result)"
        case .badOutput(let result, let reason):
            "oracle output not understood (\(reason)):\n\(result)"
        }
    }
}

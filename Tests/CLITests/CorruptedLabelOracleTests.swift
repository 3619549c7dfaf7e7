import Foundation
import Testing
import TestSupport

/// Damaged copies of real pools, made at test time: zlabel's per-label verdict must be libzpool's
/// (`zlabel-json.sh`: checksum valid, unpacks), and `zlabel verify` must fail naming the file, the label and the
/// byte offset. Intact fixtures must verify.
@Suite("damaged labels: zlabel agrees with libzpool, verify names the damage")
struct CorruptedLabelOracleTests {
    /// A way of damaging a copy.
    enum Damage: String, CaseIterable, Sendable, CustomStringConvertible {
        /// One byte flipped in L0's config area after the packed nvlist: content intact, checksum wrong.
        case unusedTail
        /// L1's pool name changed by one letter's case inside the nvlist: still unpacks, checksum wrong.
        case nvlistText
        /// L2 all zero: no label.
        case zeroL2
        /// The first 512 bytes of L3's nvlist replaced by 0xA5: does not unpack, checksum wrong.
        case garbageL3
        /// As `garbageL3`, then the checksum recomputed (label-tool.py fixlabel): checksum valid, does not unpack.
        case garbageL3Rechecksummed
        /// The newest uberblock of L0's ring has a bad checksum (a byte after the structure flipped).
        case uberblockL0
        /// The newest uberblock of every ring has a bad checksum: ZFS falls back to an older transaction group.
        case uberblockAll

        var description: String { rawValue }

        /// The label whose config area this damages, with the status zlabel (and libzpool) must then give it.
        var damagedLabel: (index: Int, status: String)? {
            switch self {
            case .unusedTail: (0, "checksum-mismatch")
            case .nvlistText: (1, "checksum-mismatch")
            case .zeroL2: (2, "absent")
            case .garbageL3, .garbageL3Rechecksummed: (3, "unreadable")
            case .uberblockL0, .uberblockAll: nil
            }
        }

        /// Needs label-tool.py, which handles bare vdevs only.
        var needsLabelTool: Bool { self == .garbageL3Rechecksummed }
    }

    /// Little-endian, big-endian (SPARC) and a pool inside a GPT disk.
    static let bases = ["rpool-kvm.img", "zfs-pool-v15.dat", "disk-gpt.img"]
    static let cases: [(String, Damage)] = bases.flatMap { base in
        Damage.allCases.filter { !($0.needsLabelTool && base.hasPrefix("disk-")) }.map { (base, $0) }
    }

    @Test("per-label verdict equals libzpool's; verify exits 1 naming file, label and offset",
          .oracle(.zlabelJSON, .labelTool), arguments: cases)
    func damaged(_ base: String, _ damage: Damage) throws {
        let fixture = try Fixture.named(base)
        let copy = try Fixture.scratchCopy(base)
        let vdev = LabelAgreement.Vdev(copy.url, fixture: fixture)
        let before = try Oracle.zlabelJSON(vdev.device, allUberblocks: false)
        try #require(before.labelsValid == 4, "\(before.result)")
        let context = "\(base) \(damage)"

        var expectedName = fixture.poolName
        var damagedOffsets: [(label: Int, offset: UInt64)] = []
        switch damage {
        case .unusedTail:
            let area = try LabelAgreement.readBytes(vdev.url, at: vdev.configArea(0), count: LabelAgreement.configCapacity)
            let end = try #require(area.lastIndex { $0 != 0 }, "L0 config area is empty")
            let at = end + 64
            try #require(at < LabelAgreement.configCapacity)
            try LabelAgreement.xorByte(vdev.url, at: vdev.configArea(0) + UInt64(at), mask: 0xff)
        case .nvlistText:
            try flipPoolNameCase(vdev, fixture: fixture, label: 1, mask: 0x20)
            expectedName = expectedName.prefix(1).uppercased() + expectedName.dropFirst()
        case .zeroL2:
            try LabelAgreement.writeBytes([UInt8](repeating: 0, count: Int(LabelAgreement.labelSize)),
                                          to: vdev.url, at: vdev.offset + vdev.labelOffset(2))
        case .garbageL3, .garbageL3Rechecksummed:
            try LabelAgreement.writeBytes([UInt8](repeating: 0xA5, count: 512), to: vdev.url, at: vdev.configArea(3))
            if damage == .garbageL3Rechecksummed { try fixChecksum(copy.url, label: 3) }
        case .uberblockL0, .uberblockAll:
            for label in damage == .uberblockL0 ? [0] : [0, 1, 2, 3] {
                let best = try #require(before.labels[label].bestUberblock)
                // past the 216-byte structure, before the 40-byte checksum at the end of the (≥ 1 KiB) slot
                try LabelAgreement.xorByte(vdev.url, at: vdev.offset + best.offset + 512, mask: 0xff)
                damagedOffsets.append((label, best.offset))
            }
        }

        // the oracle sees the damage we meant to make
        let after = try Oracle.zlabelJSON(vdev.device, allUberblocks: true)
        if let (index, _) = damage.damagedLabel {
            #expect(!after.labels[index].isValid, "\(context): libzpool still accepts L\(index)")
            #expect(after.labelsValid == 3, "\(after.result)")
        } else {
            #expect(after.labelsValid == 4, "\(after.result)")
            for d in damagedOffsets {
                let slot = after.labels[d.label].uberblocks.first { $0.offset == d.offset }
                #expect(slot?.checksumValid == false, "\(context): L\(d.label) slot at \(d.offset) still verifies")
            }
        }

        // zlabel agrees, label by label and on the active uberblock
        let (ours, _) = try LabelAgreement.checkAgainstOracle(vdev, arguments: [copy.url.path], context: context)
        if let (index, status) = damage.damagedLabel {
            #expect(ours["labels"]?[index]?["status"]?.string == status, "\(context)")
            let problemOffset = ours["labels"]?[index]?["problem_offset"]?.uint64
            #expect(problemOffset != nil, "\(context): no problemOffset for L\(index)")
        }
        if damage == .nvlistText {
            #expect(ours["labels"]?[1]?["config"]?["name"]?.string == expectedName)
        }
        let (_, ringDoc) = try LabelAgreement.inspectJSON([copy.url.path], uberblocks: true)
        LabelAgreement.checkUberblockRings(try LabelAgreement.onlyVdev(ringDoc), after, context: context)

        // verify names the file, the label and where it is
        let verify = try ZLabelCLI.run(["verify", copy.url.path])
        #expect(verify.status == 1, "\(context): \(verify)")
        let lines = verify.stdoutText.split(separator: "\n").map(String.init) + verify.stderrText.split(separator: "\n").map(String.init)
        if let (index, _) = damage.damagedLabel {
            let labelAt = vdev.offset + vdev.labelOffset(index)
            let line = lines.first { $0.contains("label \(index)") }
            #expect(line != nil, "\(context): verify does not name label \(index):\n\(verify)")
            if let line {
                #expect(line.contains(copy.url.path), "\(context): \(line)")
                #expect(LabelAgreement.mentions(line, offset: labelAt), "\(context): offset \(labelAt) not in: \(line)")
            }
            // only the damaged label is reported
            for other in (0..<4) where other != index {
                #expect(!lines.contains { $0.contains("label \(other) ") }, "\(context): \(verify)")
            }
        } else {
            for d in damagedOffsets {
                let line = lines.first { $0.contains("label \(d.label)") && LabelAgreement.mentions($0, offset: vdev.offset + d.offset) }
                #expect(line != nil, "\(context): verify does not name the bad uberblock of label \(d.label) at \(vdev.offset + d.offset):\n\(verify)")
                #expect(line?.contains(copy.url.path) ?? false, "\(context)")
            }
        }
    }

    @Test("verify exits 0 on every intact fixture, 1 on the one with a missing label and on the unsupported version",
          arguments: Fixture.all)
    func intact(_ fixture: Fixture) throws {
        let url = try fixture.url()
        let verify = try ZLabelCLI.run(["verify", url.path])
        let ok = fixture.validLabels == 4 && fixture.hasSupportedVersion
        if ok {
            #expect(verify.status == 0, "\(verify)")
            #expect(verify.stdoutText.contains(url.path), "\(verify)")
        } else if !fixture.hasSupportedVersion {
            // zfs-pool-v999.dat: four good labels, but an import would refuse version 999.
            #expect(verify.status == 1, "\(verify)")
            let lines = verify.stdoutText.split(separator: "\n").map(String.init)
            #expect(lines.contains { $0.hasPrefix(url.path) && $0.contains("pool version \(fixture.poolVersion)") && $0.contains("an import would refuse") },
                    "\(verify)")
        } else {
            #expect(verify.status == 1, "\(verify)")
            // zfs-broken-mirror1.dat: no label where label 2 belongs (from the 256 KiB-aligned size)
            let vdev = LabelAgreement.Vdev(url, fixture: fixture)
            let line = verify.stdoutText.split(separator: "\n").first { $0.contains("label 2") }.map(String.init)
            #expect(line?.contains(url.path) == true, "\(verify)")
            #expect(line.map { LabelAgreement.mentions($0, offset: vdev.labelOffset(2)) } == true, "\(verify)")
        }
        let json = try ZLabelCLI.run(["verify", "--json", url.path])
        #expect(json.status == verify.status, "\(json)")
        let doc = try ExactJSON.parse(json.stdout)
        #expect(doc["ok"]?.bool == ok)
    }

    // MARK: what libnvpair accepts and a strict decoder might not

    @Test("a pool name byte that is not UTF-8: libnvpair unpacks it", .oracle(.zlabelJSON, .labelTool),
          arguments: [false, true])
    func nonUTF8String(rechecksummed: Bool) throws {
        let fixture = try Fixture.named("rpool-kvm.img")
        let copy = try Fixture.scratchCopy(fixture.name)
        let vdev = LabelAgreement.Vdev(copy.url, fixture: fixture)
        try flipPoolNameCase(vdev, fixture: fixture, label: 1, mask: 0x80)  // 'r' becomes 0xf2: not UTF-8
        if rechecksummed { try fixChecksum(copy.url, label: 1) }
        // nvlist_print_json stops at the bad string, so the oracle's JSON is cut short: read its verdict as text
        try Oracle.require(.zlabelJSON)
        let oracle = try Oracle.script("zlabel-json.sh", [copy.url.path])
        let text = oracle.stdoutText
        let l1 = try #require(text.range(of: #"{"index":1,"#), "\(oracle)")
        let verdict = text[l1.upperBound...].prefix(200)
        #expect(verdict.contains(#""unpacked":true"#), "\(oracle)")
        #expect(verdict.contains(rechecksummed ? #""cksum_valid":true"# : #""cksum_valid":false"#), "\(oracle)")
        let expected = rechecksummed ? "valid" : "checksum-mismatch"

        let (_, doc) = try LabelAgreement.inspectJSON([copy.url.path])
        let label = try LabelAgreement.onlyVdev(doc)["labels"]?[1]
        #expect(label?["status"]?.string == expected, "\(doc)")
        // the name's exact bytes, in the JSON form of a string that is not UTF-8
        let name: [UInt8] = [0xf2] + Array(fixture.poolName.utf8.dropFirst())
        #expect(label?[path: "config.name"] == .object([ExactJSON.Member(key: "base64", value: .string(Data(name).base64EncodedString()))]),
                "\(String(describing: label))")
        let verify = try ZLabelCLI.run(["verify", copy.url.path])
        if !rechecksummed {
            #expect(verify.status == 1, "\(verify)")
            #expect(verify.stdoutText.contains("label 1"), "\(verify)")
        } else {
            #expect(verify.status == 0, "\(verify)")
        }
    }

    @Test("a wrong nvpair encoded size, checksum recomputed: libnvpair ignores it", .oracle(.zlabelJSON, .labelTool),
          arguments: ["past the buffer", "8 too many"])
    func wrongEncodedSize(_ how: String) throws {
        let fixture = try Fixture.named("rpool-kvm.img")
        let copy = try Fixture.scratchCopy(fixture.name)
        let vdev = LabelAgreement.Vdev(copy.url, fixture: fixture)
        // header (4) + nvl_version (4) + nvl_nvflag (4), then the first pair's encoded size, XDR big-endian
        let at = vdev.configArea(3) + 12
        let old = try LabelAgreement.readBytes(copy.url, at: at, count: 4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let new: UInt32 = how == "8 too many" ? old + 8 : 0x7fff_fff0
        try LabelAgreement.writeBytes(withUnsafeBytes(of: new.bigEndian) { Array($0) }, to: copy.url, at: at)
        try fixChecksum(copy.url, label: 3)

        let dump = try Oracle.zlabelJSON(vdev.device)
        #expect(dump.labels[3].isValid, "\(dump.result)")
        let (_, doc) = try LabelAgreement.inspectJSON([copy.url.path])
        let label = try LabelAgreement.onlyVdev(doc)["labels"]?[3]
        #expect(label?["status"]?.string == "valid")
        let diffs = LabelAgreement.differences(label?["config"], dump.labels[3].config)
        #expect(diffs.isEmpty, "\(diffs)")
    }

    @Test("a NUL inside the hostname, checksum recomputed: libnvpair reads the string up to it",
          .oracle(.zlabelJSON, .labelTool))
    func nulInsideAString() throws {
        let fixture = try Fixture.named("rpool-kvm.img")
        let copy = try Fixture.scratchCopy(fixture.name)
        let vdev = LabelAgreement.Vdev(copy.url, fixture: fixture)
        let area = try LabelAgreement.readBytes(copy.url, at: vdev.configArea(2), count: LabelAgreement.configCapacity)
        let at = try #require(LabelAgreement.find(Array("omnios".utf8), in: area), "hostname not in L2")
        // "om\0ios": strlen 2, so decode_size (align8(strlen + 1) = 8) still matches and libnvpair accepts it
        try LabelAgreement.writeBytes([0], to: copy.url, at: vdev.configArea(2) + UInt64(at) + 2)
        try fixChecksum(copy.url, label: 2)

        let dump = try Oracle.zlabelJSON(vdev.device)
        #expect(dump.labels[2].isValid, "\(dump.result)")
        #expect(dump.labels[2].config?["hostname"]?.string == "om", "\(dump.result)")
        let (_, doc) = try LabelAgreement.inspectJSON([copy.url.path])
        let label = try LabelAgreement.onlyVdev(doc)["labels"]?[2]
        #expect(label?["status"]?.string == "valid")
        let diffs = LabelAgreement.differences(label?["config"], dump.labels[2].config)
        #expect(diffs.isEmpty, "\(diffs)")
    }

    private func flipPoolNameCase(_ vdev: LabelAgreement.Vdev, fixture: Fixture, label: Int, mask: UInt8) throws {
        let area = try LabelAgreement.readBytes(vdev.url, at: vdev.configArea(label), count: LabelAgreement.configCapacity)
        let at = try #require(LabelAgreement.find(Array(fixture.poolName.utf8), in: area), "pool name not in L\(label)")
        try LabelAgreement.xorByte(vdev.url, at: vdev.configArea(label) + UInt64(at), mask: mask)
    }

    /// `label-tool.py fixlabel`: recompute label `label`'s nvlist checksum (output identical to `zhack label repair -c`).
    private func fixChecksum(_ url: URL, label: Int) throws {
        let result = try Oracle.labelTool(["fixlabel", url.path, String(label)])
        try #require(result.succeeded, "\(result)")
    }
}

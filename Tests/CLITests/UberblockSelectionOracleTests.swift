import Foundation
import Testing
import TestSupport

/// The active uberblock is the one real ZFS takes. Two oracles: `zlabel-json.sh` (libzpool's `uberblock_verify`,
/// the label checksum and `vdev_uberblock_compare`'s order over one device's rings: label, slot, timestamp, MMP
/// sequence), and `zfs-ubload.sh` (libzpool's own import, whose `vdev_uberblock_load` logs the txg it chose over
/// every leaf of the pool, before it looks at the version). Each pool costs one zdb import, 0.5-5 s; the pools
/// run in parallel.
@Suite("active uberblock: the one libzpool's vdev_uberblock_load takes")
struct UberblockSelectionOracleTests {
    /// One entry per pool among the bare fixtures: the images of all its leaves (the whole-disk fixtures hold
    /// rpool-kvm.img's bytes).
    static let pools: [[Fixture]] = {
        var seen = Set<String>()
        var out: [[Fixture]] = []
        for fixture in Fixture.all where fixture.isBareVdev && seen.insert(fixture.members.joined(separator: " ")).inserted {
            out.append(fixture.members.compactMap { name in Fixture.all.first { $0.name == name } })
        }
        return out
    }()

    @Test("every fixture pool", .oracle(.zlabelJSON, .zdbCheck), arguments: pools)
    func fixturePool(_ members: [Fixture]) throws {
        let urls = try members.map { try $0.url() }
        try Self.check(urls, context: members[0].poolName, versionSupported: members[0].hasSupportedVersion)
    }

    @Test("a pool with multihost on, left active while the MMP thread rewrote its last uberblock",
          .oracle(.zlabelJSON, .zdbCheck, .makeRealPool))
    func multihostPool() throws {
        let directory = try TemporaryDirectory(prefix: "zlabel-mmp")
        let image = directory.file("mmp.img")
        // 100 ms MMP writes for 3 s: several rewrites of the last txg share a timestamp and differ by sequence.
        let made = try Oracle.makeRealPool(["-n", "mmp", "-d", image.path, "--", "-o", "multihost=on",
                                            "-M", "100", "-S", "3", "-n"])
        try #require(made.status == 0, "\(made)")
        let dump = try Oracle.zlabelJSON(image, allUberblocks: true)
        let selected = try #require(dump.selected)
        #expect(selected.mmpSequence > 0, "the MMP thread wrote no sequenced uberblock: \(dump.result)")
        try Self.check([image], context: "mmp", versionSupported: true)
    }

    /// zlabel's active uberblock on each leaf equals the oracle's; over the leaves, the newest equals the txg
    /// (and, when the pool loads, the timestamp) of ZFS's own choice; an unsupported version is reported.
    static func check(_ urls: [URL], context: String, versionSupported: Bool,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let load = try Oracle.zfsUberblockLoad(urls)
        var newest: (txg: UInt64, timestamp: UInt64, seq: UInt64, version: UInt64)?
        for url in urls {
            let where_ = "\(context) \(url.lastPathComponent)"
            let (_, doc) = try LabelAgreement.inspectJSON([url.path], sourceLocation: sourceLocation)
            let vdev = try LabelAgreement.onlyVdev(doc, sourceLocation: sourceLocation)
            let dump = try Oracle.zlabelJSON(url)
            LabelAgreement.checkActiveUberblock(vdev, dump, context: where_, sourceLocation: sourceLocation)
            if let s = dump.selected, newest.map({ (s.txg, s.timestamp, s.mmpSequence) > ($0.txg, $0.timestamp, $0.seq) }) ?? true {
                newest = (s.txg, s.timestamp, s.mmpSequence, s.version)
            }
        }
        let best = try #require(newest, "\(context): no uberblock", sourceLocation: sourceLocation)
        #expect(load.bestTxg == best.txg, "\(context): ZFS chose txg \(load.bestTxg.map(String.init) ?? "none"): \(load.result)",
                sourceLocation: sourceLocation)
        if load.imported {
            #expect(load.txg == best.txg && load.timestamp == best.timestamp, "\(context): \(load.result)",
                    sourceLocation: sourceLocation)
        }
        #expect(load.imported == versionSupported, "\(context): \(load.result)", sourceLocation: sourceLocation)

        // verify: an unsupported version is a problem ("an import would refuse the pool"), and only then.
        for url in urls {
            let verify = try ZLabelCLI.run(["verify", "--json", url.path])
            let doc = try ExactJSON.parse(verify.stdout)
            let refusals = (doc["problems"]?.array ?? []).compactMap(\.string).filter { $0.contains("an import would refuse") }
            if versionSupported {
                #expect(refusals.isEmpty, "\(verify)", sourceLocation: sourceLocation)
            } else {
                #expect(verify.status == 1, "\(verify)", sourceLocation: sourceLocation)
                #expect(refusals.contains { $0.contains("txg \(best.txg)") && $0.contains("pool version \(best.version)") },
                        "\(verify)", sourceLocation: sourceLocation)
                #expect(load.failure?.contains("version \(best.version) is not supported") == true, "\(load.result)",
                        sourceLocation: sourceLocation)
            }
        }
    }
}

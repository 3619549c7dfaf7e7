import Foundation
import NVList
import Testing
import TestSupport
import ZFSChecksum
import ZFSLabel

/// Every label config that real ZFS wrote into a fixture (little- and big-endian, bare vdevs and whole disks)
/// decodes and re-encodes to the identical bytes, and the label model reads those bytes as real ZFS does.
@Suite("label configs of real pools")
struct LabelConfigRoundTripTests {
    /// The four labels of a fixture's pool, as raw bytes (nil for a label whose config area is all zero).
    static func labels(of fixture: Fixture) throws -> (offsets: [UInt64], bytes: [[UInt8]], size: UInt64) {
        let url = try fixture.url()
        let base = fixture.partition?.offset ?? 0
        let size = fixture.partition?.size ?? fixture.size
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var offsets: [UInt64] = []
        var bytes: [[UInt8]] = []
        for i in 0..<LabelLayout.labelCount {
            let offset = LabelLayout.labelOffset(i, vdevSize: size)
            try handle.seek(toOffset: base + offset)
            let data = try handle.read(upToCount: LabelLayout.labelSize) ?? Data()
            try #require(data.count == LabelLayout.labelSize, "\(fixture) L\(i): short read")
            offsets.append(offset)
            bytes.append([UInt8](data))
        }
        return (offsets, bytes, size)
    }

    @Test("decode then encodeXDR gives back the packed bytes exactly", arguments: Fixture.all)
    func roundTrip(_ fixture: Fixture) throws {
        let (_, labels, _) = try Self.labels(of: fixture)
        var decodedLabels = 0
        for (i, label) in labels.enumerated() {
            let area = Array(label[LabelLayout.configOffset..<(LabelLayout.configOffset + LabelLayout.configCapacity)])
            if area.allSatisfy({ $0 == 0 }) {
                // only zfs-broken-mirror1.dat has an empty label slot (L2, from its aligned size)
                #expect(fixture.validLabels < 4 && i == 2, "\(fixture) L\(i) is empty")
                continue
            }
            let decoded = try NVList.decode(xdr: area)
            let encoded = decoded.list.encodeXDR(hostByteOrder: decoded.header.hostByteOrder)
            #expect(encoded.count == decoded.byteCount, "\(fixture) L\(i)")
            let original = Array(area[..<min(decoded.byteCount, area.count)])
            let firstDifference = zip(encoded, original).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(encoded == original,
                    "\(fixture) L\(i): \(encoded.count) bytes re-encoded vs \(original.count) packed, first difference at \(firstDifference.map(String.init) ?? "the end")")
            // the sizes agree with the ones the list computes for itself (libnvpair's nvlist_size)
            #expect(decoded.list.encodedSize == decoded.byteCount, "\(fixture) L\(i)")
            // ZFS zero-fills the area behind the packed list
            #expect(area[decoded.byteCount...].allSatisfy { $0 == 0 }, "\(fixture) L\(i): bytes after the list")
            // the header records the writer's order: SPARC pools say big
            let expectedOrder: NVByteOrder = fixture.byteOrder == .big ? .big : .little
            #expect(decoded.header.hostByteOrder == expectedOrder, "\(fixture) L\(i)")
            decodedLabels += 1
        }
        #expect(decodedLabels == fixture.validLabels)
    }

    @Test("the label model: statuses, byte order and uberblocks as the catalogue records", arguments: Fixture.all)
    func model(_ fixture: Fixture) throws {
        let (offsets, bytes, size) = try Self.labels(of: fixture)
        let vdev = VdevLabels(labelBytes: bytes, vdevSize: size)
        #expect(vdev.labels.map(\.offset) == offsets)
        #expect(vdev.labels.filter { $0.status == .valid }.count == fixture.validLabels)
        let order: ByteOrder = fixture.byteOrder == .big ? .big : .little
        for label in vdev.labels where label.status == .valid {
            #expect(label.byteOrder == order, "\(fixture) L\(label.index)")
            #expect(label.config?.string("name") == NVString(fixture.poolName))
            #expect(label.config?.uint64("version") == fixture.poolVersion)
            let usable = label.uberblocks.filter(\.isUsable)
            #expect(!usable.isEmpty, "\(fixture) L\(label.index): no usable uberblock")
            #expect(usable.allSatisfy { $0.uberblock?.byteOrder == order })
        }
        let active = try #require(vdev.activeUberblock, "\(fixture): no active uberblock")
        #expect(active.uberblock.byteOrder == order)
        #expect(vdev.configLabel != nil)
    }

    @Test("the label model agrees with libzpool on every label and on the best uberblock",
          .oracle(.zlabelJSON), arguments: Fixture.all)
    func modelMatchesOracle(_ fixture: Fixture) throws {
        let (_, bytes, size) = try Self.labels(of: fixture)
        let vdev = VdevLabels(labelBytes: bytes, vdevSize: size)
        let dump = try Oracle.zlabelJSON(Oracle.Device(try fixture.url(), fixture: fixture))
        for (ours, theirs) in zip(vdev.labels, dump.labels) {
            #expect(ours.offset == theirs.offset)
            #expect((ours.status == .valid) == theirs.isValid, "\(fixture) L\(ours.index): \(ours.status)")
            #expect((ours.config != nil) == theirs.unpacked, "\(fixture) L\(ours.index)")
            if let config = ours.config, let theirConfig = theirs.config {
                let mine = try ExactJSON.parse(config.json.rendered())
                #expect(mine == theirConfig, "\(fixture) L\(ours.index): config differs from libnvpair's")
            }
            if theirs.isValid { #expect((ours.byteOrder == .big) == theirs.byteSwapped) }
            // this label's best uberblock
            let best = ours.uberblocks.filter(\.isUsable).max { a, b in b.uberblock!.isNewer(than: a.uberblock!) }
            #expect(best?.index == theirs.bestUberblock?.slot, "\(fixture) L\(ours.index)")
            #expect(best?.uberblock?.txg == theirs.bestUberblock?.txg)
            #expect(best?.uberblock?.timestamp == theirs.bestUberblock?.timestamp)
            #expect(best?.uberblock?.guidSum == theirs.bestUberblock?.guidSum)
        }
        let newest = dump.labels.compactMap(\.bestUberblock).max { ($0.txg, $0.timestamp) < ($1.txg, $1.timestamp) }
        #expect(vdev.activeUberblock?.uberblock.txg == newest?.txg)
        #expect(vdev.activeUberblock?.uberblock.timestamp == newest?.timestamp)
    }
}

import DiskContainers
import Foundation
import Testing
import TestSupport

/// The in-place write mapping against qemu-img's own containers: the file bytes it names for a virtual range
/// are qemu-img's virtual bytes of that range, and every range that is not stored plainly is refused with its reason.
@Suite("Writing in place in containers")
struct InPlaceWriteTests {
    static let writable: [Packing] = [
        .qcow2, .qcow2v2, .qcow2ExtendedL2, .vmdkSparse, .vmdkFlat, .vhdFixed, .vhdDynamic,
    ]

    /// The file behind `HostRange.file`: the container, or a flat descriptor's extent.
    static func hostFile(_ packed: URL, _ disk: any VirtualDisk, _ index: Int) throws -> URL {
        guard let flat = disk as? VMDKFlatDisk else { return packed }
        return packed.deletingLastPathComponent().appending(path: flat.descriptor.extents[index].fileName)
    }

    @Test("every data extent maps to file bytes that hold qemu-img's virtual bytes; holes are refused",
          .oracle(.qemuImg), arguments: writable)
    func mapsDataExtents(_ packing: Packing) throws {
        try Oracle.require(.qemuImg)
        let packed = try Converted.file("rpool-kvm.img", packing)
        let disk = try DiskContainer.writableInPlace(try openDisk(packed))
        // qemu-img's raw conversion is the oracle (a VHD may be rounded up past the fixture's size).
        let raw = try readAll(try Converted.rawBack("rpool-kvm.img", packing))
        var files: [Int: [UInt8]] = [:]
        let extents = try disk.dataExtents()
        #expect(!extents.isEmpty)
        for extent in extents {
            let ranges = try disk.hostRanges(forWriting: extent)
            // In order, contiguous, covering the extent exactly.
            #expect(ranges.first?.virtual.lowerBound == extent.lowerBound && ranges.last?.virtual.upperBound == extent.upperBound)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.virtual.upperBound == $1.virtual.lowerBound })
            for r in ranges {
                if files[r.file] == nil { files[r.file] = try readAll(try Self.hostFile(packed, disk, r.file)) }
                let file = files[r.file]!
                let end = Int(r.offset) + r.virtual.count
                let same = end <= file.count
                    && sameBytes(file[Int(r.offset)..<end], raw[Int(r.virtual.lowerBound)..<Int(r.virtual.upperBound)])
                #expect(same, "\(packing): virtual \(r.virtual) at file byte \(r.offset) does not hold the raw image's bytes")
            }
        }
        // The holes of a sparse format: not stored, so refused.
        var holes: [UInt64] = []
        var end: UInt64 = 0
        for extent in extents {
            if extent.lowerBound > end { holes.append(end) }
            end = extent.upperBound
        }
        if end < disk.virtualSize { holes.append(end) }
        let sparse = [Packing.vmdkFlat, .vhdFixed].contains(packing) == false
        #expect(holes.isEmpty == !sparse, "\(packing): \(holes.count) holes")
        for hole in holes.prefix(3) {
            let error = try #require(throws: InPlaceWriteRefusal.self) { try disk.hostRanges(forWriting: hole..<(hole + 1)) }
            #expect(error.reason == .notAllocated && error.virtualOffset == hole, "\(error)")
        }
    }

    @Test("compressed qcow2 clusters, streamOptimized VMDK and VHDX are refused", .oracle(.qemuImg))
    func refusedFormats() throws {
        try Oracle.require(.qemuImg)
        let compressed = try DiskContainer.writableInPlace(try openDisk(try Converted.file("rpool-kvm.img", .qcow2Compressed)))
        let first = try #require(try compressed.dataExtents().first)
        let error = try #require(throws: InPlaceWriteRefusal.self) { try compressed.hostRanges(forWriting: first) }
        #expect(error.reason == .compressed, "\(error)")
        for packing in [Packing.vmdkStream, .vhdxDynamic, .vhdxFixed] {
            let disk = try openDisk(try Converted.file("rpool-kvm.img", packing))
            let refusal = try #require(throws: InPlaceWriteRefusal.self) { try DiskContainer.writableInPlace(disk) }
            #expect(refusal.reason == .format, "\(packing): \(refusal)")
        }
    }

    /// A private copy of the fixture as a qcow2 v3, to change with qemu-img or by hand.
    static func qcow2Copy(_ name: String) throws -> (URL, TemporaryDirectory) {
        let d = try TemporaryDirectory(prefix: "zlabel-inplace")
        let url = d.file(name)
        try Data(contentsOf: try Converted.file("rpool-kvm.img", .qcow2)).write(to: url)
        return (url, d)
    }

    static func patch(_ url: URL, at offset: UInt64, _ change: (inout UInt8) -> Void) throws {
        var bytes = try readAll(url)
        change(&bytes[Int(offset)])
        try Data(bytes).write(to: url)
    }

    @Test("a qcow2 with an internal snapshot, or marked dirty, is refused; so is a cluster without COPIED",
          .oracle(.qemuImg))
    func refusedQcow2States() throws {
        try Oracle.require(.qemuImg)
        let (snap, d1) = try Self.qcow2Copy("snap.qcow2")
        let r = try Run.run("qemu-img", ["snapshot", "-c", "before", snap.path])
        #expect(r.succeeded, "\(r)")
        let shared = try #require(throws: InPlaceWriteRefusal.self) { try DiskContainer.writableInPlace(try openDisk(snap)) }
        #expect(shared.reason == .shared && shared.message.contains("1 internal snapshot"), "\(shared)")
        // With nb_snapshots zeroed by hand the snapshot's clusters are still shared: the L2 entries say so.
        for i in UInt64(60)..<64 { try Self.patch(snap, at: i) { $0 = 0 } }
        let hidden = try DiskContainer.writableInPlace(try openDisk(snap))
        let first = try #require(try hidden.dataExtents().first)
        let cluster = try #require(throws: InPlaceWriteRefusal.self) { try hidden.hostRanges(forWriting: first) }
        #expect(cluster.reason == .shared && cluster.message.contains("COPIED"), "\(cluster)")
        _ = d1

        let (dirty, d2) = try Self.qcow2Copy("dirty.qcow2")
        try Self.patch(dirty, at: 79) { $0 |= 1 }  // incompatible_features bit 0
        let state = try #require(throws: InPlaceWriteRefusal.self) { try DiskContainer.writableInPlace(try openDisk(dirty)) }
        #expect(state.reason == .state && state.message.contains("dirty"), "\(state)")
        _ = d2
    }

    @Test("a VHD sector its bitmap marks absent is refused", .oracle(.qemuImg))
    func vhdAbsentSector() throws {
        try Oracle.require(.qemuImg)
        let d = try TemporaryDirectory(prefix: "zlabel-inplace")
        let url = d.file("bitmap.vhd")
        try Data(contentsOf: try Converted.file("rpool-kvm.img", .vhdDynamic)).write(to: url)
        let disk = try #require(try openDisk(url) as? VHDDisk)
        let first = try #require(try disk.dataExtents().first)
        let ranges = try disk.hostRanges(forWriting: first.lowerBound..<(first.lowerBound + 512))
        // The block's bitmap sits just before its data: clear the bit of the extent's first sector.
        let sector = (first.lowerBound % disk.blockSize) / 512
        let bitmapBytes = (disk.blockSize / 512 + 4095) / 4096 * 512
        let bitmapStart = ranges[0].offset - (first.lowerBound % disk.blockSize) - bitmapBytes
        try Self.patch(url, at: bitmapStart + sector / 8) { $0 &= ~(0x80 >> UInt8(sector % 8)) }
        let reopened = try DiskContainer.writableInPlace(try openDisk(url))
        let error = try #require(throws: InPlaceWriteRefusal.self) {
            try reopened.hostRanges(forWriting: first.lowerBound..<(first.lowerBound + 1024))
        }
        #expect(error.reason == .notAllocated && error.virtualOffset == first.lowerBound, "\(error)")
        #expect(try reopened.hostRanges(forWriting: (first.lowerBound + 512)..<(first.lowerBound + 1024)).count == 1)
    }
}

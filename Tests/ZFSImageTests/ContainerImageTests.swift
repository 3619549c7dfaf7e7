import DiskContainers
import Foundation
import NVList
import Testing
import TestSupport
import ZFSImage

/// Labels read through a VM disk container (qemu-img's conversion of a fixture) equal those of the raw image.
@Suite("Images inside VM disk containers")
struct ContainerImageTests {
    static func convert(_ fixture: String, _ args: [String], _ ext: String) throws -> URL {
        let d = try TemporaryDirectory(prefix: "zlabel-container-image")
        let target = d.file(fixture + "." + ext)
        let r = try Run.run("qemu-img", ["convert", "-f", "raw", "-O"] + args + [try Fixture.image(fixture).path, target.path])
        guard r.succeeded else { throw OracleError.missing(.qemuImg, "qemu-img convert failed: \(r)") }
        return target
    }

    static func vdevs(_ report: ImageReport) -> JSONValue? {
        guard case .object(let members) = report.json(includeUberblocks: true) else { return nil }
        return members.first { $0.0 == "vdevs" }?.1
    }

    @Test("labels, partitions and uberblocks read through qcow2, VMDK, VHD and VHDX equal the raw image's",
          .oracle(.qemuImg),
          arguments: [
            ("rpool-kvm.img", ["qcow2", "-c"], "qcow2", "qcow2 (version 3)"),
            ("disk-gpt.img", ["vmdk", "-o", "subformat=streamOptimized"], "vmdk", "VMDK streamOptimized"),
            ("disk-vtoc.img", ["vpc", "-o", "subformat=dynamic"], "vhd", "VHD dynamic"),
            ("disk-gpt.img", ["vhdx"], "vhdx", "VHDX"),
            ("rpool-kvm.img", ["vmdk", "-o", "subformat=monolithicFlat"], "vmdk", "VMDK descriptor (monolithicFlat)"),
          ])
    func sameLabels(_ fixture: String, _ args: [String], _ ext: String, _ name: String) throws {
        try Oracle.require(.qemuImg)
        let packed = try Self.convert(fixture, args, ext)
        let raw = try ImageReport(image: try ImageFile(path: try Fixture.image(fixture).path))
        let image = try ImageFile.openForReading(path: packed.path)
        let report = try ImageReport(image: image)
        #expect(report.container == name)
        #expect(raw.container == nil)
        #expect(!report.vdevs.isEmpty)
        #expect(report.vdevs.map(\.region) == raw.vdevs.map(\.region))
        #expect(Self.vdevs(report) == Self.vdevs(raw))
        #expect(report.problems.map { $0.replacingOccurrences(of: packed.path, with: "IMG") }
                == raw.problems.map { $0.replacingOccurrences(of: raw.path, with: "IMG") })
        #expect(report.text().hasPrefix("\(packed.path): \(name) image, virtual disk of"))
        #expect(throws: ImageError.self) { try image.write([0], at: 0) }
    }

    @Test("a raw image opens as itself; a compressed raw image is read as its disk, and refused for editing",
          .oracle(.compressors))
    func rawAndCompressed() throws {
        try Oracle.require(.compressors)
        let raw = try Fixture.image("rpool-kvm.img")
        #expect(try ImageFile.openForReading(path: raw.path) is ImageFile)
        let d = try TemporaryDirectory(prefix: "zlabel-container-image")
        let zst = d.file("rpool.img.zst")
        let r = try Run.run("zstd", ["-q", "-o", zst.path, raw.path])
        #expect(r.succeeded, "\(r)")
        let image = try #require(try ImageFile.openForReading(path: zst.path) as? ContainerImage)
        #expect(image.container.description == "zstd-compressed raw")
        let rawBytes = try Data(contentsOf: raw)
        #expect(image.size == UInt64(rawBytes.count))
        #expect(Data(try image.read(at: 0, count: rawBytes.count)) == rawBytes)
        let error = try #require(throws: ImageError.self) { try ImageFile.openForEditing(path: zst.path, mode: .readWrite) }
        #expect(error.code == .container && error.message.contains("zstd-compressed raw image"), "\(error)")
    }
}

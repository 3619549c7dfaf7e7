import DiskContainers
import Testing
import TestSupport
import ZLabel
@testable import ZFSImage

/// What reading a compressed image costs the label side, in passes of its decoder: the labels of a bare vdev
/// and of a GPT whole disk (whose backup GPT is read before its labels) in one pass, the pool's MOS in at most
/// one more. The fixtures are xz files, sized from their indexes: nothing is decoded before the first read.
@Suite("label reads of compressed images")
struct CompressedImagePassesTests {
    @Test("labels in one pass, the MOS in at most one more", arguments: ["rpool-kvm.img.xz", "disk-gpt.img.xz"])
    func passes(_ name: String) throws {
        let path = Repository.root.appending(path: "Fixtures/" + name).path
        let image = try ImageFile.openForReading(path: path)
        let disk = try #require((image as? ContainerImage)?.disk as? StreamedDisk)
        #expect(!disk.isMeasured, "xz records its size")
        let report = try ImageReport(image: image, selector: nil)
        #expect(report.vdevs.count == 1 && report.problems.isEmpty, "\(report.problems)")
        #expect(disk.passes == 1, "labels")
        let pool = try PoolInspection(images: [(image, nil)])
        #expect(pool.reports.count == 1)
        #expect(disk.passes <= 2, "MOS: \(disk.passes) passes")
    }
}

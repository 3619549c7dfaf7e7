import Foundation
import NVList
import Testing
import TestSupport
import ZLabel

private func pool(_ names: [String]) throws -> PoolInspection {
    try PoolInspection(paths: try names.map { (try Fixture.image($0).path, nil) })
}

/// The labels of `pool`'s boot disk with `edit` applied to every label config.
private func editedLabels(_ pool: PoolInspection, _ edit: (inout NVList) throws -> Void) throws -> VdevLabels {
    var labels = try #require(pool.reports.first?.vdevs.first?.labels)
    for i in labels.labels.indices {
        guard var config = labels.labels[i].config else { continue }
        try edit(&config)
        labels.labels[i].config = config
    }
    return labels
}

@Suite struct BootViewTests {
    struct GrubCase: Sendable, CustomTestStringConvertible {
        let images: [String]
        let partition: String?
        var testDescription: String { images.joined(separator: "+") }
    }

    static let grubCases: [GrubCase] = [
        GrubCase(images: ["rpool-kvm.img"], partition: nil),
        GrubCase(images: ["rpool-kvm-to-xen.img"], partition: nil),
        GrubCase(images: ["rpool-mirror-0.img", "rpool-mirror-1.img"], partition: nil),
        GrubCase(images: ["rpool-mirror-1.img", "rpool-mirror-0.img"], partition: nil),
        GrubCase(images: ["rpool-mirror-1.img"], partition: nil),
        GrubCase(images: ["rpool-v28.img"], partition: nil),
        GrubCase(images: ["disk-gpt.img"], partition: "gpt1"),
        GrubCase(images: ["disk-gpt-esp.img"], partition: "gpt2"),
    ]

    @Test(.oracle(.grub), arguments: grubCases)
    func grub2EqualsGrubsOwnOutput(_ c: GrubCase) throws {
        let p = try pool(c.images)
        let view = p.bootView(loader: .grub2)
        let bootfs = try #require(view.bootfs)
        let dataset = String(bootfs.name.drop { $0 != "/" }.dropFirst())
        let grub = try Oracle.grubBootpath(try c.images.map { Oracle.Device(try Fixture.image($0)) },
                                           partition: c.partition, dataset: dataset)
        #expect(view.bootfsArgument == grub.bootfs)
        #expect(view.bootpath ?? "" == grub.bootpath)
        #expect(view.diskdevid ?? "" == grub.diskdevid)
        #expect(view.canBoot)
    }

    @Test func illumosLoaderPassesGuidsAndEachValueWhenPresent() throws {
        let p = try pool(["rpool-kvm.img"])
        let full = p.bootView(loader: .illumos)
        let leafGUID = try #require(p.reports[0].vdevs[0].labels.config?.uint64("guid"))
        #expect(full.poolGUID == p.poolGUID && full.vdevGUID == leafGUID)
        #expect(full.bootfsArgument == "zfs-bootfs=rpool/\(full.bootfs!.object),bootpath=\"/pci@0,0/pci1af4,2@4/blkdev@0,0:a\",diskdevid=\"id1,kdev@AQM00001___________/a\"")
        #expect(full.text.contains("zfs-bootvdev=\(leafGUID)\n"))

        let noDevid = BootView(loader: .illumos, labels: try editedLabels(p) { try $0.setValue(nil, at: "vdev_tree.devid") },
                               bootfs: p.mos.bootfs)
        #expect(noDevid.bootpath == "/pci@0,0/pci1af4,2@4/blkdev@0,0:a" && noDevid.diskdevid == nil)
        #expect(noDevid.bootfsArgument?.hasSuffix(":a\"") == true)
        #expect(noDevid.canBoot)

        let neither = BootView(loader: .illumos, labels: try editedLabels(p) {
            try $0.setValue(nil, at: "vdev_tree.devid")
            try $0.setValue(nil, at: "vdev_tree.phys_path")
        }, bootfs: p.mos.bootfs)
        #expect(neither.bootfsArgument == "zfs-bootfs=rpool/\(p.mos.bootfs!.object)")
        #expect(neither.canBoot)
        #expect(neither.notes.contains { $0.contains("scanning") })
    }

    @Test func pvGrubNeedsOneOfTheTwoAndTakesTheLabelsOwnLeaf() throws {
        let p = try pool(["rpool-kvm.img"])
        let noPhys = BootView(loader: .pvGrub, labels: try editedLabels(p) { try $0.setValue(nil, at: "vdev_tree.phys_path") },
                              bootfs: p.mos.bootfs)
        #expect(noPhys.bootpath == nil && noPhys.diskdevid == "id1,kdev@AQM00001___________/a")
        #expect(noPhys.bootfsArgument == "zfs-bootfs=rpool/\(p.mos.bootfs!.object),diskdevid=\"id1,kdev@AQM00001___________/a\"")
        #expect(noPhys.canBoot)

        let neither = BootView(loader: .pvGrub, labels: try editedLabels(p) {
            try $0.setValue(nil, at: "vdev_tree.devid")
            try $0.setValue(nil, at: "vdev_tree.phys_path")
        }, bootfs: p.mos.bootfs)
        #expect(neither.bootfsArgument == nil)
        #expect(!neither.canBoot)
        #expect(neither.problems.contains { $0.contains("ERR_NO_BOOTPATH") })

        // Booting from mirror side 1: legacy GRUB and the illumos loader take child 1, GRUB 2 child 0.
        let mirror = try pool(["rpool-mirror-1.img", "rpool-mirror-0.img"])
        #expect(mirror.bootView(loader: .pvGrub).bootpath == "/pci@0,0/pci1af4,2@5/blkdev@0,0:a")
        #expect(mirror.bootView(loader: .illumos).bootpath == "/pci@0,0/pci1af4,2@5/blkdev@0,0:a")
        #expect(mirror.bootView(loader: .grub2).bootpath == "/pci@0,0/pci1af4,2@4/blkdev@0,0:a")
    }

    @Test func grub2TakesBothOrNeitherAndTheFirstMirrorChildWithBoth() throws {
        let p = try pool(["rpool-kvm.img"])
        let noDevid = BootView(loader: .grub2, labels: try editedLabels(p) { try $0.setValue(nil, at: "vdev_tree.devid") },
                               bootfs: p.mos.bootfs)
        #expect(noDevid.bootpath == nil && noDevid.diskdevid == nil)
        #expect(noDevid.bootfsArgument == "zfs-bootfs=rpool/\(p.mos.bootfs!.object)")

        let mirror = try pool(["rpool-mirror-0.img", "rpool-mirror-1.img"])
        let child0NoDevid = BootView(loader: .grub2, labels: try editedLabels(mirror) {
            try $0.setValue(nil, at: "vdev_tree.children[0].devid")
        }, bootfs: mirror.mos.bootfs)
        #expect(child0NoDevid.bootpath == "/pci@0,0/pci1af4,2@5/blkdev@0,0:a")
        #expect(child0NoDevid.diskdevid == "id1,kdev@AQM00002___________/a")
    }

    @Test func aPoolWithoutBootfsCannotBoot() throws {
        let p = try pool(["tank-raidz-0.img", "tank-raidz-1.img", "tank-raidz-2.img"])
        for loader in BootLoader.allCases {
            let view = p.bootView(loader: loader)
            #expect(!view.canBoot)
            #expect(view.problems.contains { $0.contains("bootfs") }, "\(loader)")
        }
        // raidz: GRUB 2 gives no bootpath, legacy GRUB finds no disk leaf.
        #expect(p.bootView(loader: .grub2).bootpath == nil)
        #expect(p.bootView(loader: .pvGrub).problems.contains { $0.contains("no usable disk leaf") })
    }
}

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

/// `labels` as pv-grub could read them, like those of a pool written before feature flags and project quotas: no
/// `features_for_read`, and a 2048-byte MOS object set block in every uberblock. The real fixtures are written by
/// OpenZFS 2.1, which pv-grub cannot read (see `LoaderGoldenTests`); these exercise the rest of its rules.
private func asOldZFS(_ labels: VdevLabels) throws -> VdevLabels {
    var labels = labels
    for i in labels.labels.indices {
        if var config = labels.labels[i].config {
            try config.setValue(nil, at: "features_for_read")
            labels.labels[i].config = config
        }
        for j in labels.labels[i].uberblocks.indices {
            guard var ub = labels.labels[i].uberblocks[j].uberblock, ub.rootBlockPointer.count > 6 else { continue }
            ub.rootBlockPointer[6] = (ub.rootBlockPointer[6] & ~0xffff) | 3  // lsize (3 + 1) * 512
            labels.labels[i].uberblocks[j].uberblock = ub
        }
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
        let noPhys = BootView(loader: .pvGrub, labels: try asOldZFS(try editedLabels(p) { try $0.setValue(nil, at: "vdev_tree.phys_path") }),
                              bootfs: p.mos.bootfs)
        #expect(noPhys.bootpath == nil && noPhys.diskdevid == "id1,kdev@AQM00001___________/a")
        #expect(noPhys.bootfsArgument == "zfs-bootfs=rpool/\(p.mos.bootfs!.object),diskdevid=\"id1,kdev@AQM00001___________/a\"")
        #expect(noPhys.canBoot)

        let neither = BootView(loader: .pvGrub, labels: try asOldZFS(try editedLabels(p) {
            try $0.setValue(nil, at: "vdev_tree.devid")
            try $0.setValue(nil, at: "vdev_tree.phys_path")
        }), bootfs: p.mos.bootfs)
        #expect(neither.bootfsArgument == nil)
        #expect(!neither.canBoot)
        #expect(neither.problems.contains { $0.contains("ERR_NO_BOOTPATH") })

        // Booting from mirror side 1: legacy GRUB and the illumos loader take child 1, GRUB 2 child 0.
        let mirror = try pool(["rpool-mirror-1.img", "rpool-mirror-0.img"])
        let side1 = try #require(mirror.reports.first?.vdevs.first?.labels)
        #expect(BootView(loader: .pvGrub, labels: try asOldZFS(side1), bootfs: mirror.mos.bootfs).bootpath
            == "/pci@0,0/pci1af4,2@5/blkdev@0,0:a")
        #expect(mirror.bootView(loader: .illumos).bootpath == "/pci@0,0/pci1af4,2@5/blkdev@0,0:a")
        #expect(mirror.bootView(loader: .grub2).bootpath == "/pci@0,0/pci1af4,2@4/blkdev@0,0:a")
    }

    @Test func pvGrubRefusesPoolsItCannotReadAndNamesWhy() throws {
        // As pv-grub itself says (Tests/Oracle/loader-golden/pv-grub.json): an unknown read feature first, then
        // the 4096-byte MOS object set block.
        let p = try pool(["rpool-kvm.img"])
        let view = p.bootView(loader: .pvGrub)
        #expect(!view.canBoot && view.bootfsArgument == nil && view.bootpath == nil && view.label == nil)
        #expect(view.problems.contains { $0.contains("labels 0, 1, 2, 3") && $0.contains("com.delphix:hole_birth") }, "\(view.problems)")
        let labels = try #require(p.reports.first?.vdevs.first?.labels)
        var noFeatures = labels
        for i in noFeatures.labels.indices { try noFeatures.labels[i].config?.setValue(nil, at: "features_for_read") }
        let big = BootView(loader: .pvGrub, labels: noFeatures, bootfs: p.mos.bootfs)
        #expect(!big.canBoot)
        #expect(big.problems.contains { $0.contains("4096 bytes") && $0.contains("not enough memory allocated") }, "\(big.problems)")
        #expect(try asOldZFS(labels).labels.allSatisfy { BootView.pvGrubRefusal($0) == nil })
    }

    @Test func pvGrubReadsLabels2And3WhenLabels0And1AreGone() throws {
        let p = try pool(["rpool-kvm.img"])
        var labels = try asOldZFS(try #require(p.reports.first?.vdevs.first?.labels))
        labels.labels[0].config = nil
        labels.labels[1].config = nil
        let view = BootView(loader: .pvGrub, labels: labels, bootfs: p.mos.bootfs)
        #expect(view.label == 2)
        #expect(view.canBoot, "\(view.problems)")
        // Big-endian nvlists are refused whatever they hold (pv-grub checks the packing host's byte order).
        labels.labels[2].streamHeader = NVStreamHeader(hostByteOrder: .big)
        #expect(BootView(loader: .pvGrub, labels: labels, bootfs: p.mos.bootfs).label == 3)
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
        for loader in [BootLoader.grub2, .pvGrub] {
            let view = p.bootView(loader: loader)
            #expect(!view.canBoot)
            // pv-grub stops before it looks for a bootfs: it accepts no label of a raidz member.
            if loader != .pvGrub { #expect(view.problems.contains { $0.contains("bootfs") }, "\(loader)") }
        }
        // The illumos loader boots the root dataset instead (zfs_get_root), as it did for tank in
        // Tests/Oracle/loader-golden/illumos.json.
        let illumos = p.bootView(loader: .illumos)
        let root = try #require(p.mos.rootDataset)
        #expect(root.name == "tank" && root.object != 0)
        #expect(illumos.bootfsArgument?.hasPrefix("zfs-bootfs=tank/\(root.object),bootpath=") == true, "\(illumos)")
        #expect(illumos.notes.contains { $0.contains("root dataset") })
        // raidz: GRUB 2 gives no bootpath, legacy GRUB finds no disk leaf.
        #expect(p.bootView(loader: .grub2).bootpath == nil)
        #expect(p.bootView(loader: .pvGrub).problems.contains { $0.contains("no usable disk leaf") })
    }
}

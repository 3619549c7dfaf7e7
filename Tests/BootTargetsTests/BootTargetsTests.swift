import BootTargets
import Testing

@Suite struct XenDeviceNameTests {
    static let extended: UInt32 = 1 << 28
    static let vbdTable: [(String, UInt32)] = [
        ("/dev/sda", 2048), ("/dev/sdb", 2064), ("/dev/sdf", 2128), ("/dev/sdg", 2144), ("/dev/sda1", 2049),
        ("/dev/sdp15", 2303), ("/dev/xvda", 51712), ("/dev/xvdb", 51728), ("/dev/xvdc", 51744), ("/dev/xvdd", 51760),
        ("/dev/xvdf", 51792), ("/dev/xvda1", 51713), ("/dev/xvdp15", 51967), ("/dev/xvdq", extended | 16 << 8),
        ("/dev/xvdq1", extended | 16 << 8 | 1), ("/dev/xvdz", extended | 25 << 8), ("/dev/xvdaa", extended | 26 << 8),
        ("/dev/xvdzz200", extended | 701 << 8 | 200),
    ]

    @Test(arguments: vbdTable)
    func vbdNumbers(name: String, vbd: UInt32) throws {
        let device = try XenDeviceName(parsing: name)
        #expect(try device.vbdNumber() == vbd)
        #expect(device.description == name)
    }

    @Test(arguments: [
        "", "sda", "/dev/", "/dev/sd", "/dev/xvd", "/dev/hda", "/dev/nvme0n1", "/dev/sdA", "/dev/Sda", "/dev/sda0",
        "/dev/sda01", "/dev/sda256", "/dev/sda1000", "/dev/sdaaa", "/dev/xvda-1", "/dev/sda 1", "/dev//sda",
        "/dev/sdé", "/dev/sda1a", " /dev/sda", "/dev/sda\n", "dev/sda", "/dev/xvd1",
    ])
    func badNamesAreRejected(name: String) {
        #expect(throws: BootTargetError.self) { try XenDeviceName(parsing: name) }
    }

    @Test(arguments: ["/dev/sdq", "/dev/sdaa", "/dev/sda16", "/dev/xvda16", "/dev/xvdp200"])
    func namesWithoutAnEncodingAreRejected(name: String) throws {
        let device = try XenDeviceName(parsing: name)
        #expect {
            try device.vbdNumber()
        } throws: { error in
            guard case .noVBDEncoding = error as? BootTargetError else { return false }
            return true
        }
    }

    @Test func twoLetterDisks() throws {
        #expect(try XenDeviceName(parsing: "/dev/xvdaa").disk == 26)
        #expect(try XenDeviceName(parsing: "/dev/xvdba").disk == 52)
        #expect(try XenDeviceName(parsing: "/dev/xvdzz").disk == 701)
        #expect(try XenDeviceName(parsing: "/dev/sdf").renamed(to: .xvd).description == "/dev/xvdf")
    }

    static let devfsadmTable: [(UInt32, String)] = [
        (51712, "c1t0d0"), (51728, "c1t1d0"), (51792, "c1t5d0"), (51713, "c1t0d1"), (2048, "c1t2048d0"),
        (2049, "c1t2048d1"), (2128, "c1t2128d0"), (extended | 16 << 8 | 3, "c1t268439552d3"),
    ]

    @Test(arguments: devfsadmTable)
    func devfsadmNames(vbd: UInt32, name: String) {
        #expect(xdfDiskName(vbd: vbd) == name)
    }

    @Test func devfsadmHasNoNameForOtherNumbers() {
        #expect(xdfDiskName(vbd: 768) == nil)  // hd: not an EC2 name
        #expect(xdfDiskName(vbd: 5) == nil)  // legacy numbering
        #expect(xdfDiskName(vbd: 2 << 28) == nil)  // reserved
        #expect(xdfDiskName(vbd: 51712, controller: 3) == "c3t0d0")
    }
}

@Suite struct BootTargetPlanTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var target: BootTarget
        var device: String?
        var placement: PoolPlacement
        var physPath: String
        var path: String
        var testDescription: String { "\(target.rawValue) \(device ?? "default") \(placement)" }
    }

    static let rows: [Row] = [
        Row(
            target: .ec2XenPV, device: nil, placement: .vtocSlice(0), physPath: "/xpvd/xdf@2048:a",
            path: "/dev/dsk/c1t2048d0s0"),
        Row(
            target: .ec2XenPV, device: "/dev/sdf", placement: .vtocSlice(0), physPath: "/xpvd/xdf@2128:a",
            path: "/dev/dsk/c1t2128d0s0"),
        Row(
            target: .ec2XenPV, device: "/dev/sda", placement: .efiPartition(2), physPath: "/xpvd/xdf@2048:b",
            path: "/dev/dsk/c1t2048d0s1"),
        Row(
            target: .ec2XenPV, device: "/dev/xvda", placement: .efiPartition(1), physPath: "/xpvd/xdf@51712:a",
            path: "/dev/dsk/c1t0d0s0"),
        Row(
            target: .ec2XenPV, device: "/dev/sda1", placement: .vtocSlice(0), physPath: "/xpvd/xdf@2049:a",
            path: "/dev/dsk/c1t2048d1s0"),
        Row(
            target: .ec2XenHVM, device: nil, placement: .vtocSlice(0), physPath: "/xpvd/xdf@51712:a",
            path: "/dev/dsk/c1t0d0s0"),
        Row(
            target: .ec2XenHVM, device: nil, placement: .efiPartition(2), physPath: "/xpvd/xdf@51712:b",
            path: "/dev/dsk/c1t0d0s1"),
        Row(
            target: .ec2XenHVM, device: "/dev/sdf", placement: .vtocSlice(0), physPath: "/xpvd/xdf@51792:a",
            path: "/dev/dsk/c1t5d0s0"),
        Row(
            target: .ec2XenHVM, device: "/dev/xvdb", placement: .efiPartition(1), physPath: "/xpvd/xdf@51728:a",
            path: "/dev/dsk/c1t1d0s0"),
        Row(
            target: .ec2XenHVM, device: "/dev/xvda1", placement: .vtocSlice(0), physPath: "/xpvd/xdf@51713:a",
            path: "/dev/dsk/c1t0d1s0"),
        Row(
            target: .ec2XenHVM, device: "/dev/xvda", placement: .vtocSlice(8), physPath: "/xpvd/xdf@51712:i",
            path: "/dev/dsk/c1t0d0s8"),
        Row(
            target: .ec2XenHVM, device: "/dev/xvda", placement: .efiPartition(9), physPath: "/xpvd/xdf@51712:i",
            path: "/dev/dsk/c1t0d0s8"),
        Row(
            target: .ec2XenHVM, device: "/dev/xvda", placement: .vtocSlice(15), physPath: "/xpvd/xdf@51712:p",
            path: "/dev/dsk/c1t0d0s15"),
    ]

    @Test(arguments: rows)
    func xenPlans(row: Row) throws {
        let device = try row.device.map { name throws(BootTargetError) in try XenDeviceName(parsing: name) }
        let plan = try row.target.plan(device: device, placement: row.placement)
        #expect(plan.physPath == .set(row.physPath))
        #expect(plan.path == .set(row.path))
        #expect(plan.devid == .remove)
        #expect(plan.notes.contains { $0.contains("devid is removed") })
        #expect(plan.device == (device ?? row.target.defaultDevice))
    }

    @Test func hvmExplainsTheSdMapping() throws {
        let plan = try BootTarget.ec2XenHVM.plan(device: XenDeviceName(parsing: "/dev/sdf"), placement: .vtocSlice(0))
        #expect(plan.vbd == 51792)
        #expect(plan.notes.first?.contains("/dev/xvdf") == true)
        let pv = try BootTarget.ec2XenPV.plan(device: XenDeviceName(parsing: "/dev/sdf"), placement: .vtocSlice(0))
        #expect(pv.vbd == 2128)
        #expect(!pv.notes.contains { $0.contains("HVM") })
    }

    @Test func partitionNumbersAreExplained() throws {
        let plan = try BootTarget.ec2XenHVM.plan(device: XenDeviceName(parsing: "/dev/xvda1"), placement: .vtocSlice(0))
        #expect(plan.notes.contains { $0.contains("partition number") && $0.contains("51713") })
    }

    @Test("the Xen targets refuse disks past p and partitions past 15, naming the forms they take",
          arguments: ["/dev/sdq", "/dev/sdz9", "/dev/xvdq", "/dev/xvdaa", "/dev/xvda16"])
    func xenRefusesNamesPastP(_ name: String) throws {
        let device = try XenDeviceName(parsing: name)
        for target in [BootTarget.ec2XenHVM, .ec2XenPV] {
            #expect(throws: BootTargetError.badDeviceName(name, "\(target.rawValue) takes \(BootTarget.deviceForms); a disk past p or a partition past 15 has no vbd number in any EC2 example")) {
                try target.plan(device: device, placement: .vtocSlice(0))
            }
            #expect(throws: BootTargetError.self) { try target.check(device: device) }
        }
        #expect(throws: BootTargetError.self) { try BootTarget.ec2Nitro.check(device: device) }
    }

    @Test func pvRejectsSdNamesPastP() throws {
        #expect(throws: BootTargetError.self) {
            try BootTarget.ec2XenPV.plan(device: XenDeviceName(parsing: "/dev/sdq"), placement: .vtocSlice(0))
        }
    }

    @Test func controllerIsConfigurable() throws {
        let plan = try BootTarget.ec2XenHVM.plan(placement: .vtocSlice(0), controller: 2)
        #expect(plan.path == .set("/dev/dsk/c2t0d0s0"))
    }

    @Test func nitroRemovesOnlyTheDevid() throws {
        let plan = try BootTarget.ec2Nitro.plan(placement: .efiPartition(2))
        #expect(plan.physPath == .keep)
        #expect(plan.path == .keep)
        #expect(plan.devid == .remove)
        #expect(plan.vbd == nil && plan.device == nil)
        let text = plan.notes.joined(separator: " ")
        #expect(text.contains("9955") && text.contains("7119") && text.contains("volume id"))
        #expect(throws: BootTargetError.deviceNotAccepted(target: "ec2-nitro", device: "/dev/sda")) {
            try BootTarget.ec2Nitro.plan(device: XenDeviceName(parsing: "/dev/sda"), placement: .vtocSlice(0))
        }
    }

    @Test(arguments: [
        PoolPlacement.efiPartition(8), .efiPartition(17), .efiPartition(0), .vtocSlice(16), .vtocSlice(-1),
    ])
    func placementsWithoutAMinorAreRejected(placement: PoolPlacement) {
        for target in BootTarget.allCases {
            #expect(throws: BootTargetError.self) { try target.plan(placement: placement) }
        }
    }

    @Test func placementFromARegion() {
        #expect(PoolPlacement(regionScheme: "vtoc", illumosSlice: 0) == .vtocSlice(0))
        #expect(PoolPlacement(regionScheme: "gpt", illumosSlice: 1) == .efiPartition(2))
        #expect(PoolPlacement(regionScheme: "mbr", illumosSlice: 0) == nil)
        #expect(PoolPlacement.efiPartition(2).slice == 1)
    }

    @Test func targetNames() throws {
        #expect(BootTarget.allCases.map(\.rawValue) == ["ec2-xen-pv", "ec2-xen-hvm", "ec2-nitro"])
        #expect(try BootTarget(named: "ec2-nitro") == .ec2Nitro)
        #expect(throws: BootTargetError.unknownTarget("ec2-hvm")) { try BootTarget(named: "ec2-hvm") }
        #expect(BootTarget.ec2XenPV.defaultDevice?.description == "/dev/sda")
        #expect(BootTarget.ec2XenHVM.defaultDevice?.description == "/dev/xvda")
    }

    @Test func catalogListsEveryTargetWithSources() {
        let text = BootTarget.catalog()
        for target in BootTarget.allCases {
            #expect(text.contains(target.rawValue + "\n"))
            #expect(!target.info.sources.isEmpty && !target.info.sets.isEmpty && !target.info.reasons.isEmpty)
        }
        #expect(text.contains("disk_link.c"))
        #expect(text.contains("cmlb.c"))
        #expect(text.contains("/xpvd/xdf@2048:a"))
        #expect(text.contains("/xpvd/xdf@51712:a"))
    }
}

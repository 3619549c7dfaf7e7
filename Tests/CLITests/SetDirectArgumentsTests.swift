import ArgumentParser
import Testing
@testable import zlabel

/// `zlabel set`'s direct argument path: for the common command lines it must read exactly what the argument
/// parser reads, and for everything else it must step aside (return nil) so that the parser handles it.
@Suite("set: the direct argument path")
struct SetDirectArgumentsTests {
    /// Command lines the direct path takes (after the program name).
    static let direct: [[String]] = [
        ["set", "a.img", "--path", "/dev/dsk/c2t0d0s0"],
        ["set", "a.img", "--path", "/dev/dsk/c2t0d0s0", "--phys-path", "/xpvd/xdf@51712:a", "--backup", "b.bk"],
        ["set", "a.img", "--phys-path", "/xpvd/xdf@51712:a", "--devid", "id1,sd@n5000"],
        ["set", "--path", "/dev/x", "a.img"],
        ["set", "a.img", "b.img", "c.img", "--path", "/dev/x"],
        ["set", "a.img", "--path", "/dev/x", "b.img"],
        ["set", "a.img", "--remove-devid"],
        ["set", "a.img", "--remove-hostid", "--remove-hostname"],
        ["set", "a.img", "--path", "/dev/x", "--dry-run"],
        ["set", "a.img", "--path", "/dev/x", "--json"],
        ["set", "a.img", "--path", "/dev/x", "--force"],
        ["set", "a.img", "--path", "/dev/x", "--vdev", "1234567890"],
        ["set", "a.img", "--path", "/dev/x", "--vdev", "/dev/old"],
        ["set", "a.img", "--target", "ec2-xen-hvm"],
        ["set", "a.img", "--target", "ec2-xen-hvm", "--device", "/dev/sda1"],
        ["set", "a.img", "--target", "ec2-nitro", "--path", "/dev/y"],
        ["set", "a.img", "--path", "/dev/x", "--partition", "p1"],
        ["set", "a.img", "--path", "/dev/x", "--offset", "4096", "--size", "67108864"],
        ["set", "a.img@4096:67108864", "--path", "/dev/x"],
        ["set", "a.img@nonsense", "--path", "/dev/x"],
        ["set", "a.img", "--path", "dsk with spaces", "--devid", "ünïcode"],
        ["set", "a.img", "--phys-path", "/p", "--path", "/q", "--devid", "d", "--backup", "bk", "--json", "--force", "--dry-run"],
    ]

    /// Command lines the direct path leaves to the parser: help, unusual forms, repeats, and usage errors.
    static let fallback: [[String]] = [
        [],
        ["inspect", "a.img"],
        ["set"],
        ["set", "--help"],
        ["set", "-h"],
        ["set", "help"],
        ["set", "a.img", "--path=/dev/x"],
        ["set", "a.img", "--path"],
        ["set", "a.img", "--path", "-x"],
        ["set", "a.img", "--path", ""],
        ["set", "", "--path", "/dev/x"],
        ["set", "a.img", "--path", "/dev/x", "--path", "/dev/y"],
        ["set", "a.img", "--force", "--force", "--path", "/dev/x"],
        ["set", "a.img", "--bogus", "x"],
        ["set", "a.img", "--path", "/dev/x", "--"],
        ["set", "a.img", "-p", "/dev/x"],
        ["set", "a.img", "--devid", "d", "--remove-devid"],
        ["set", "a.img", "--offset", "4096", "--path", "/dev/x"],
        ["set", "a.img", "--offset", "0x1000", "--size", "4096", "--path", "/dev/x"],
        ["set", "a.img", "--partition", "p1", "--offset", "0", "--size", "4096", "--path", "/dev/x"],
        ["set", "a.img@4096:8192", "--partition", "p1", "--path", "/dev/x"],
        ["set", "a.img", "--target", "no-such-target"],
        ["set", "a.img", "--device", "/dev/sda1", "--path", "/dev/x"],
        ["set", "a.img", "--target", "ec2-nitro", "--device", "/dev/sda1"],
        ["set", "a.img", "--version"],
    ]

    @Test("the direct path reads what the argument parser reads", arguments: direct)
    func sameAsParser(_ arguments: [String]) throws {
        let direct = try #require(SetRequest(directArguments: arguments), "\(arguments) fell back to the parser")
        let parsed = try #require(try ZLabelCommand.parseAsRoot(arguments) as? SetLabels)
        #expect(parsed.request == direct)
    }

    @Test("everything else is left to the argument parser", arguments: fallback)
    func leavesTheRestToTheParser(_ arguments: [String]) {
        #expect(SetRequest(directArguments: arguments) == nil)
    }

    @Test("a usage error the direct path leaves behind is still the parser's error")
    func usageErrorsStayTheParsers() {
        for arguments in [["set", "a.img", "--devid", "d", "--remove-devid"], ["set", "a.img", "--target", "nope"]] {
            #expect(SetRequest(directArguments: arguments) == nil)
            #expect(throws: (any Error).self) { try ZLabelCommand.parseAsRoot(arguments) }
        }
    }
}

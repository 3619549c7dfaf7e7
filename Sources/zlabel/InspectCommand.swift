import ArgumentParser
import ZLabel

/// Options that pick the image and the vdev inside it.
struct ImageOptions: ParsableArguments {
    @Argument(help: "A disk image file or block device.")
    var image: String

    @Option(help: "Byte offset of the vdev inside the image (with --size).")
    var offset: UInt64?

    @Option(help: "Size in bytes of the vdev inside the image (with --offset).")
    var size: UInt64?

    func validate() throws {
        if (offset == nil) != (size == nil) {
            throw ValidationError("--offset and --size go together")
        }
    }

    var region: VdevRegion? {
        guard let offset, let size else { return nil }
        return VdevRegion(offset: offset, size: size)
    }

    func report() throws -> ImageReport {
        let file = try ImageFile(path: image)
        return try ImageReport(image: file, region: region)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the labels of the ZFS vdev in an image, like `zdb -l`, or as JSON.")

    @OptionGroup var options: ImageOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Include the uberblock rings.")
    var uberblocks = false

    func run() throws {
        let report = try options.report()
        if json {
            print(report.json(includeUberblocks: uberblocks).rendered())
        } else {
            print(report.text(includeUberblocks: uberblocks), terminator: "")
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every label's checksum and the active uberblock.",
        discussion: """
            Exits 0 when all four labels of the vdev are valid and an uberblock is usable, 1 when anything \
            is wrong (each problem is printed with the label and byte offset), 2 when the image cannot be read.
            """)

    @OptionGroup var options: ImageOptions

    @Flag(help: "Print the verdict as JSON.")
    var json = false

    func run() throws {
        let report = try options.report()
        let problems = report.problems
        if json {
            print(JSONValue.object([
                ("ok", .bool(problems.isEmpty)),
                ("problems", .array(problems.map(JSONValue.string))),
                ("notes", .array(report.notes.map(JSONValue.string))),
            ]).rendered())
        } else {
            for p in problems { print(p) }
            for n in report.notes { print("note: \(n)") }
            if problems.isEmpty {
                print("\(report.path): all 4 labels valid, active uberblock txg \(report.vdevs[0].labels.activeUberblock!.uberblock.txg)")
            }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

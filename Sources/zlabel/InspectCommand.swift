import ArgumentParser
import CLISupport
import ZLabel

/// Options that pick the vdev inside an image; shared by every command that reads labels.
struct RegionOptions: ParsableArguments {
    @Option(help: "The partition or slice holding the vdev (p1, s0, p1s0, …), when the image has several.")
    var partition: String?

    @Option(help: "Byte offset of the vdev inside the image (with --size); IMAGE@OFFSET:SIZE does the same.")
    var offset: UInt64?

    @Option(help: "Size in bytes of the vdev inside the image (with --offset).")
    var size: UInt64?

    func validate() throws { try Self.validate(partition: partition, offset: offset, size: size) }

    /// The checks of ``validate()`` on plain values (`zlabel set`'s direct argument path uses them too).
    static func validate(partition: String?, offset: UInt64?, size: UInt64?) throws {
        if (offset == nil) != (size == nil) { throw ValidationError("--offset and --size go together") }
        if partition != nil && offset != nil { throw ValidationError("give --partition or --offset/--size, not both") }
    }

    /// Splits `IMAGE@OFFSET:SIZE` and combines it with the options into a path and a selector.
    func resolve(_ argument: String) throws -> (path: String, selector: RegionSelector?) {
        try Self.resolve(argument, partition: partition, offset: offset, size: size)
    }

    /// ``resolve(_:)`` on plain values.
    static func resolve(_ argument: String, partition: String?, offset: UInt64?, size: UInt64?) throws
        -> (path: String, selector: RegionSelector?)
    {
        let path: String, range: RegionSelector?
        do { (path, range) = try RegionSelector.splitImageArgument(argument) } catch let error as PartitionTableError {
            throw ValidationError("\(argument): \(error.message)")  // a usage error, not a place in the image
        }
        if let range {
            guard partition == nil && offset == nil else {
                throw ValidationError("\(argument): give the range in the argument or with options, not both")
            }
            return (path, range)
        }
        if let partition { return (path, .named(partition)) }
        if let offset, let size { return (path, .range(offset: offset, size: size)) }
        return (path, nil)
    }
}

/// One image argument and the options that pick the vdev inside it.
struct ImageOptions: ParsableArguments {
    @Argument(help: "A disk image file or block device (IMAGE@OFFSET:SIZE picks a byte range).")
    var image: String

    @OptionGroup var region: RegionOptions

    func validate() throws { _ = try region.resolve(image) }

    func report() throws -> ImageReport {
        let (path, selector) = try region.resolve(image)
        return try ImageReport(image: try ImageFile.openForReading(path: path), selector: selector)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show the labels of the ZFS vdev in an image, like `zdb -l`, or as JSON.")

    @OptionGroup var options: ImageOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Include the uberblock rings.")
    var uberblocks = false

    @Flag(help: "Print the pool's own config from the MOS, like `zdb -e -C` (give every member image after IMAGE).")
    var mos = false

    @Argument(help: "With --mos: the images of the pool's other leaf vdevs (mirror or raidz members).")
    var members: [String] = []

    func run() throws {
        if !members.isEmpty && !mos { throw ValidationError("more than one image is only read with --mos") }
        if mos {
            let pool = try PoolInspection(paths: try ([options.image] + members).map { try options.region.resolve($0) })
            if json { printJSON(pool.json(includeUberblocks: uberblocks)) } else { print(pool.mos.zdbText, terminator: "") }
            return
        }
        let report = try options.report()
        if json {
            printJSON(report.json(includeUberblocks: uberblocks))
        } else {
            print(report.text(includeUberblocks: uberblocks), terminator: "")
        }
        if let none = report.noLabelFound {  // as `zdb -l`, which exits 2 when it finds no label
            printError("zlabel: \(none)")
            throw ExitCode(CommandExitStatus.unreadable)
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every label's checksum and the active uberblock.",
        discussion: """
            Exits 0 when all four labels of the vdev are valid and an uberblock is usable (of a pool version \
            OpenZFS imports), 1 when anything \
            is wrong (each problem is printed with the label and byte offset), 2 when the image cannot be read.
            """)

    @OptionGroup var options: ImageOptions

    @Flag(help: "Print the verdict as JSON.")
    var json = false

    func run() throws {
        let report = try options.report()
        let problems = report.problems
        if json {
            printJSON(report.verdictJSON)
        } else {
            for p in problems { print(p) }
            for n in report.notes { print("note: \(n)") }
            if problems.isEmpty {
                for vdev in report.vdevs {
                    let place = vdev.region.name.map { " (\($0))" } ?? ""
                    print("\(report.path)\(place): all 4 labels valid, active uberblock txg \(vdev.labels.activeUberblock!.uberblock.txg)")
                }
            }
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

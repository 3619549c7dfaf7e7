import ArgumentParser
import CLISupport
import ZLabel

/// What `zlabel set` was asked to do, as plain values: what `SetLabels` parses, and what the direct argument
/// path (``init(directArguments:)``) reads without the argument parser.
struct SetRequest: Equatable {
    var images: [String]
    var partition: String?
    var offset: UInt64?
    var size: UInt64?
    var vdev: String?
    var target: String?
    var device: String?
    var physPath: String?
    var path: String?
    var devid: String?
    var removeDevid = false
    var removeHostid = false
    var removeHostname = false
    var dryRun = false
    var backup: String?
    var force = false
    var json = false

    /// The checks the parser runs after parsing (the region options', then the command's).
    func validate() throws {
        try RegionOptions.validate(partition: partition, offset: offset, size: size)
        if devid != nil && removeDevid { throw ValidationError("--devid and --remove-devid exclude each other") }
        _ = try parseTarget(target, device: device)
        for argument in images { _ = try resolve(argument) }
    }

    func resolve(_ argument: String) throws -> (path: String, selector: RegionSelector?) {
        try RegionOptions.resolve(argument, partition: partition, offset: offset, size: size)
    }

    func run() throws {
        var edit = LeafEdit(leaf: selector())
        if let physPath { edit.physPath = .set(NVString(physPath)) }
        if let path { edit.path = .set(NVString(path)) }
        if let devid { edit.devid = .set(NVString(devid)) }
        if removeDevid { edit.devid = .remove }
        edit.removeHostid = removeHostid
        edit.removeHostname = removeHostname
        let session: LabelEditSession
        do {
            session = try LabelEditSession(images: try images.map { try resolve($0) }, edit: edit,
                                           target: try parseTarget(target, device: device), writable: !dryRun, force: force)
        } catch let e as VdevChoiceError {
            throw ValidationError(e.description + (e.found.isEmpty ? "" : " (--partition or IMAGE@OFFSET:SIZE)"))
        }
        if !json {
            for note in session.notes { printError("target: \(note)") }
            print(session.plan.summary, terminator: "")
        }
        if dryRun {
            // A dry run writes nothing, but refuses as the edit would inside a container (apply rehearses itself).
            try session.rehearse()
            if json { printJSON(session.plan.json) } else { print("dry run: nothing written") }
            return
        }
        let report = try session.apply(backupPath: backup)
        if json {
            printJSON(session.json(report))
        } else if let saved = report.backup {
            print("wrote \(report.writes.count) labels; read back and verified; original labels saved in \(saved)")
        }
    }

    private func selector() -> LeafSelector {
        guard let vdev else { return .automatic }
        if let guid = UInt64(vdev) { return .guid(guid) }
        return .path(vdev)
    }
}

extension SetRequest {
    /// The common form of `zlabel set`, read by hand: `set IMAGE… --path X --phys-path Y --backup FILE …`, each
    /// option at most once as its own word followed by its value, each flag at most once, and values that pass
    /// the command's validation. Building the argument parser's model of the command (its `Mirror`s, property
    /// wrappers, help names and conformance look-ups) costs a `set` process more than a fifth of its CPU; this
    /// path skips it.
    ///
    /// Anything else gives `nil`, and the caller hands the whole command line to the argument parser, so help,
    /// `--name=value`, repeated or unknown options, values that start with `-`, and every usage error behave
    /// and read exactly as before: the parser produces them. `arguments` excludes the program name.
    init?(directArguments arguments: some Collection<String>) {
        guard arguments.first == "set" else { return nil }
        var request = SetRequest(images: [])
        var seen: [String] = []  // an array: a Set<String> would cost its generic metadata at run time
        var rest = arguments.dropFirst()
        while let word = rest.popFirst() {
            guard !word.isEmpty else { return nil }
            guard word.hasPrefix("-") else {
                guard word != "help" else { return nil }  // the parser's own word; leave it to the parser
                request.images.append(word)
                continue
            }
            guard !seen.contains(word) else { return nil }
            seen.append(word)
            switch word {
            case "--remove-devid": request.removeDevid = true
            case "--remove-hostid": request.removeHostid = true
            case "--remove-hostname": request.removeHostname = true
            case "--dry-run": request.dryRun = true
            case "--force": request.force = true
            case "--json": request.json = true
            default:
                guard let value = rest.popFirst(), !value.isEmpty, !value.hasPrefix("-") else { return nil }
                switch word {
                case "--path": request.path = value
                case "--phys-path": request.physPath = value
                case "--devid": request.devid = value
                case "--backup": request.backup = value
                case "--vdev": request.vdev = value
                case "--target": request.target = value
                case "--device": request.device = value
                case "--partition": request.partition = value
                case "--offset", "--size":
                    guard value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let number = UInt64(value) else { return nil }
                    if word == "--offset" { request.offset = number } else { request.size = number }
                default: return nil
                }
            }
        }
        guard !request.images.isEmpty, (try? request.validate()) != nil else { return nil }
        self = request
    }
}

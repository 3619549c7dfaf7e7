import ArgumentParser
import CLISupport
import ZLabel

struct Targets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the EC2 boot targets, what each sets in the labels, and why.")

    @Flag(help: "Print the targets as one JSON object.")
    var json = false

    func run() {
        guard json else {
            print(BootTarget.catalog(), terminator: "")
            return
        }
        let strings = { (list: [String]) in JSONValue.array(list.map(JSONValue.string)) }
        printJSON(.object([("targets", .array(BootTarget.allCases.map { target in
            let info = target.info
            return .object([
                ("name", .string(target.rawValue)), ("summary", .string(info.summary)), ("sets", strings(info.sets)),
                ("reasons", strings(info.reasons)), ("sources", strings(info.sources)),
                ("default_device", target.defaultDevice.map { .string("\($0)") } ?? .null),
            ])
        }))]))
    }
}

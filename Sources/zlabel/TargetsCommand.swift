import ArgumentParser
import CLISupport
import ZLabel

struct Targets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "targets",
        abstract: "List the EC2 boot targets, what each sets in the labels, and why.")

    @Flag(help: "Print the targets as one JSON object.")
    var json = false

    func run() {
        guard json else {
            print(BootTarget.catalog(), terminator: "")
            return
        }
        printJSON(BootTarget.catalogJSON)
    }
}

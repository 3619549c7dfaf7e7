import AWSCore
import EBSUpload
import EC2AMI
import EC2Publish
import EC2TestSupport
import Foundation
import Testing

/// Library errors name options by `OptionName`; only a command line spells them as flags.
@Suite("Library errors name no command-line flag")
struct OptionNamingTests {
    /// Every option, in a message of each kind that names options.
    static func errors() -> [any OptionNamingError] {
        var all: [any OptionNamingError] = []
        for o in OptionName.allCases {
            all.append(InvalidOptionError(o, "\(option: o) is wrong"))
            all.append(AWSConfigurationError("set \(option: o)"))
            all.append(AMIError.invalidRequest("\(option: o) is wrong"))
            all.append(PublishRefusal(reasons: ["image.raw: 2 vdevs (p1, p2); choose one with \(option: o)"]))
        }
        all += [
            AMIError.imageFailed(imageID: "ami-1", region: "r", state: "failed", reason: "x"),
            AMIError.waitTimedOut(imageID: "ami-1", region: "r", state: "pending", limit: .seconds(1)),
            AMIError.imageNotListed(imageID: "ami-1", region: "r"),
            AMIError.kernelNotFound(region: "r", architecture: "x86_64", variant: "hd00"),
            AMIError.snapshotUnusable(snapshotID: "snap-1", reason: "x"),
            AMIError.nameTaken(name: "n", imageID: "ami-1", snapshotID: "snap-1"),
        ]
        return all
    }

    /// Errors the libraries throw for bad settings, produced by the libraries themselves.
    static func thrown() -> [any Error] {
        var out: [any Error] = []
        func collect(_ body: () throws -> Void) {
            do { try body() } catch { out.append(error) }
        }
        var o = UploadOptions(stateDirectory: "/x")
        o.workers = 0
        collect { try o.validate() }
        o.workers = 4096
        collect { try o.validate() }
        o = UploadOptions(stateDirectory: "/x")
        o.timeoutMinutes = 5
        collect { try o.validate() }
        o = UploadOptions(stateDirectory: "/x")
        o.volumeSizeGiB = 0
        collect { try o.validate() }
        o = UploadOptions(stateDirectory: "/x")
        o.kmsKeyARN = "k"
        o.parentSnapshotID = "snap-p"
        collect { try o.validate() }
        o = UploadOptions(stateDirectory: "/x")
        o.volumeSizeGiB = 1
        collect {
            _ = try UploadPlan(
                options: o, reader: try ImageBlockReader(source: SizedImage(size: 3 << 30, data: [])), parent: nil)
        }
        var copy = AMIRequest(registration: ImageRegistration(name: "omnios", snapshotID: "snap-1"))
        copy.copyRegions = ["us-east-1"]
        collect { try copy.validate(homeRegion: "us-east-1") }
        copy.copyRegions = ["us-west-2", "us-west-2"]
        collect { try copy.validate(homeRegion: "us-east-1") }
        var pv = ImageRegistration(name: "omnios", snapshotID: "snap-1")
        pv.virtualization = .paravirtual
        collect { try pv.validate() }
        return out
    }

    @Test("no library error message contains \"--\"; a command line can spell every option it names")
    func noFlags() {
        let errors = Self.errors()
        #expect(errors.count == 4 * OptionName.allCases.count + 6)
        for e in errors {
            #expect(!e.description.contains("--"), "\(e.description)")
            // Spelt by a renderer, every option appears as the renderer spells it.
            let spelt = e.message(spelling: { "<\($0.rawValue)>" })
            #expect(!spelt.contains("--"), "\(spelt)")
        }
        #expect(AMIError.kernelNotFound(region: "r", architecture: "a", variant: "v").message(spelling: { "--\($0.rawValue)" })
            .contains("--kernelID aki-"))
        #expect(AMIError.nameTaken(name: "n", imageID: "ami-1", snapshotID: nil).message(spelling: { "--\($0.rawValue)" })
            .contains("choose another --imageName"))
        let thrown = Self.thrown()
        #expect(thrown.count == 9, "\(thrown)")
        for e in thrown {
            #expect(!"\(e)".contains("--"), "\(e)")
            let named = e as? any OptionNamingError
            #expect(named != nil, "\(type(of: e)) names options by OptionName")
            #expect(named?.message(spelling: { "@\($0.rawValue)" }).contains("@") == true, "\(e)")
        }
    }
}

// The EC2 Query API calls an AMI needs, over AWSCore's signed, retrying EC2Client: RegisterImage,
// DescribeImages, CopyImage, ModifyImageAttribute (launch permissions) and CreateTags, plus the PV-GRUB kernel
// lookup and the wait for `available`. Every response is checked for the field the caller needs; a missing one
// is an ``AWSResponseError``, never a trap.

public import AWSCore

/// AMI calls in one region.
public struct AMIClient: Sendable {
    /// The signed, retrying EC2 client.
    public let ec2: EC2Client

    /// Creates a client.
    public init(ec2: EC2Client) { self.ec2 = ec2 }

    /// The region the client talks to.
    public var region: String { ec2.client.region }

    /// The log.
    public var log: AWSLog { ec2.client.log }

    /// RegisterImage.
    ///
    /// - Parameters:
    ///   - registration: the request; it is validated first.
    ///   - kernelID: the resolved AKI for a paravirtual image (``KernelChoice/automatic(_:)`` must be resolved
    ///     by the caller, see ``findPVGrubKernel(architecture:variant:)``).
    /// - Returns: the new image id.
    /// - Throws: ``AMIError/invalidRequest(_:)`` before sending; `AWSServiceError` (for example
    ///   `InvalidAMIName.Duplicate`, `InvalidSnapshot.NotFound`); `AWSResponseError` without an imageId.
    public func registerImage(_ registration: ImageRegistration, kernelID: String?) async throws -> String {
        try registration.validate()
        if registration.virtualization == .paravirtual && kernelID == nil {
            throw AMIError.invalidRequest("a paravirtual image needs its kernel id resolved before RegisterImage")
        }
        let doc = try await ec2.call("RegisterImage", registration.parameters(kernelID: kernelID))
        return try Self.imageID(doc, "RegisterImage")
    }

    /// DescribeImages, following `nextToken`.
    ///
    /// - Parameters:
    ///   - ids: image ids (empty for all that the other criteria select).
    ///   - owners: `self`, `amazon` or account ids.
    ///   - filters: EC2 filters such as `name`, `image-type`, `architecture`.
    public func describeImages(
        ids: [String] = [], owners: [String] = [], filters: [(name: String, values: [String])] = []
    ) async throws -> [EC2Image] {
        var out: [EC2Image] = []
        var token: String?
        repeat {
            var p = EC2Parameters()
            p.addList("ImageId", ids)
            p.addList("Owner", owners)
            p.addFilters(filters)
            if let token { p.add("NextToken", token) }
            let doc = try await ec2.call("DescribeImages", p)
            guard doc.name == "DescribeImagesResponse" || doc.child("imagesSet") != nil else {
                throw AWSResponseError(operation: "DescribeImages", "the document is <\(doc.name)>, not a DescribeImagesResponse")
            }
            for item in doc.items("imagesSet") { out.append(try EC2Image(item: item)) }
            token = doc.string("nextToken").flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return out
    }

    /// The image with this id.
    ///
    /// - Throws: ``AMIError/imageNotListed(imageID:region:)``, or `InvalidAMIID.NotFound` from EC2.
    public func image(id: String) async throws -> EC2Image {
        guard let image = try await describeImages(ids: [id]).first(where: { $0.imageID == id }) else {
            throw AMIError.imageNotListed(imageID: id, region: region)
        }
        return image
    }

    /// This account's images called exactly `name` (deregistered ones excluded).
    public func ownImages(named name: String) async throws -> [EC2Image] {
        try await describeImages(owners: ["self"], filters: [("name", [name])])
            .filter { $0.name == name && $0.state != "deregistered" }
    }

    /// CopyImage, sent to this client's region (the destination).
    ///
    /// - Parameters:
    ///   - sourceImageID: the image in `sourceRegion`.
    ///   - sourceRegion: the region the image is copied from.
    ///   - name: the copy's name.
    ///   - description: the copy's description, if any.
    ///   - tags: tags for the copy.
    ///   - clientToken: makes a retried copy return the first copy instead of a second one (at most 64 ASCII
    ///     characters).
    /// - Returns: the new image id in this region.
    public func copyImage(
        sourceImageID: String, sourceRegion: String, name: String, description: String?, tags: [ImageTag],
        clientToken: String
    ) async throws -> String {
        var p = EC2Parameters()
        p.add("SourceImageId", sourceImageID)
        p.add("SourceRegion", sourceRegion)
        p.add("Name", name)
        if let description { p.add("Description", description) }
        p.add("ClientToken", clientToken)
        p.addTagSpecification(resourceType: "image", tags: tags)
        let doc = try await ec2.call("CopyImage", p)
        return try Self.imageID(doc, "CopyImage")
    }

    /// ModifyImageAttribute: lets `accounts` (12-digit ids) launch the image.
    public func addLaunchPermission(imageID: String, accounts: [String]) async throws {
        guard !accounts.isEmpty else { return }
        for a in accounts where !Self.isAccountID(a) {
            throw AMIError.invalidRequest("\"\(a)\" is not a 12-digit AWS account id")
        }
        var p = EC2Parameters()
        p.add("ImageId", imageID)
        p.add("Attribute", "launchPermission")
        p.add("OperationType", "add")
        for (i, a) in accounts.enumerated() { p.add("LaunchPermission.Add.\(i + 1).UserId", a) }
        try Self.expectTrue(try await ec2.call("ModifyImageAttribute", p), "ModifyImageAttribute")
    }

    /// CreateTags on any resources.
    public func createTags(resourceIDs: [String], tags: [ImageTag]) async throws {
        guard !tags.isEmpty, !resourceIDs.isEmpty else { return }
        var p = EC2Parameters()
        p.addList("ResourceId", resourceIDs)
        for (i, t) in tags.enumerated() {
            p.add("Tag.\(i + 1).Key", t.key)
            p.add("Tag.\(i + 1).Value", t.value)
        }
        try Self.expectTrue(try await ec2.call("CreateTags", p), "CreateTags")
    }

    /// Amazon's newest PV-GRUB kernel image of this region for `architecture` and `variant`: DescribeImages
    /// with owner `amazon`, image type `kernel` and name `pv-grub-<variant>_*`; the highest version in the name
    /// wins (`pv-grub-hd0_1.05-x86_64.gz` over `…_1.04-…`), then the newest creation date.
    ///
    /// - Throws: ``AMIError/kernelNotFound(region:architecture:variant:)``.
    public func findPVGrubKernel(architecture: ImageArchitecture, variant: PVGrubVariant) async throws -> EC2Image {
        let pattern = "pv-grub-\(variant.rawValue)_*"
        let found = try await describeImages(
            owners: ["amazon"],
            filters: [("image-type", ["kernel"]), ("name", [pattern]), ("architecture", [architecture.rawValue])])
        let prefix = "pv-grub-\(variant.rawValue)_"
        let candidates = found.filter {
            $0.state == "available" && ($0.name ?? "").hasPrefix(prefix) && $0.imageID.hasPrefix("aki-")
                && ($0.architecture == nil || $0.architecture == architecture.rawValue)
        }
        let best = candidates.max { a, b in
            let va = Self.pvGrubVersion(a.name ?? "", prefix: prefix)
            let vb = Self.pvGrubVersion(b.name ?? "", prefix: prefix)
            if va != vb { return va.lexicographicallyPrecedes(vb) }
            return (a.creationDate ?? "") < (b.creationDate ?? "")
        }
        guard let best else {
            throw AMIError.kernelNotFound(region: region, architecture: architecture.rawValue, variant: variant.rawValue)
        }
        log.info("PV-GRUB kernel for \(architecture.rawValue) (\(variant.rawValue)) in \(region): \(best.imageID) \(best.name ?? "")")
        return best
    }

    /// Polls DescribeImages until the image is `available`.
    ///
    /// A `…NotFound` answer right after RegisterImage or CopyImage is taken as EC2 catching up and polled again,
    /// for at most the schedule's ``WaitSchedule/notListedGrace``.
    ///
    /// - Returns: the image as last described.
    /// - Throws: ``AMIError/imageFailed(imageID:region:state:reason:)`` on a terminal state,
    ///   ``AMIError/imageNotListed(imageID:region:)`` when EC2 still does not know the image after the grace
    ///   period, ``AMIError/waitTimedOut(imageID:region:state:limit:)`` when the schedule's limit passes.
    public func waitUntilAvailable(imageID: String, schedule: WaitSchedule = WaitSchedule()) async throws -> EC2Image {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + schedule.timeout
        var lastState = "not listed"
        var polls = 0
        while true {
            polls += 1
            var current: EC2Image?
            do {
                current = try await describeImages(ids: [imageID]).first(where: { $0.imageID == imageID })
            } catch let e as AWSServiceError where e.isNotFound {
                current = nil
            }
            if let image = current {
                if image.state != lastState { log.info("\(imageID) in \(region): \(image.state)") }
                lastState = image.state
                if image.state == "available" { return image }
                if EC2Image.terminalFailureStates.contains(image.state) {
                    throw AMIError.imageFailed(imageID: imageID, region: region, state: image.state, reason: image.stateReason)
                }
            } else {
                if clock.now - start > schedule.notListedGrace {
                    throw AMIError.imageNotListed(imageID: imageID, region: region)
                }
                log.debug("\(imageID) in \(region) not listed yet (poll \(polls))")
            }
            let delay = schedule.delay(afterPoll: polls)
            if clock.now + delay > deadline {
                throw AMIError.waitTimedOut(imageID: imageID, region: region, state: lastState, limit: schedule.timeout)
            }
            try await Task.sleep(for: delay)
        }
    }

    /// Whether `s` is a 12-digit account id.
    public static func isAccountID(_ s: String) -> Bool { s.count == 12 && s.allSatisfy { $0.isASCII && $0.isNumber } }

    static func imageID(_ doc: XMLTree, _ op: String) throws(AWSResponseError) -> String {
        guard let id = doc.string("imageId"), id.hasPrefix("ami-") else {
            throw AWSResponseError(operation: op, "no ami-… imageId in <\(doc.name)>")
        }
        return id
    }

    /// Checks a `<return>` answer: the document must be the action's response, and `<return>`, which EC2 sends
    /// as `true`, must not say otherwise (some EC2 look-alikes leave it out).
    static func expectTrue(_ doc: XMLTree, _ op: String) throws {
        guard doc.name == op + "Response" else {
            throw AWSResponseError(operation: op, "the document is <\(doc.name)>, not a \(op)Response")
        }
        if let r = doc.string("return"), r != "true" {
            throw AWSResponseError(operation: op, "EC2 answered return=\(r)")
        }
    }

    /// The numeric version in a PV-GRUB kernel name: `pv-grub-hd0_1.05-x86_64.gz` gives [1, 5].
    static func pvGrubVersion(_ name: String, prefix: String) -> [Int] {
        guard name.hasPrefix(prefix) else { return [] }
        let rest = name.dropFirst(prefix.count)
        let version = rest.prefix { $0 != "-" }
        return version.split(separator: ".").map { Int($0) ?? -1 }
    }
}

/// How often to poll while waiting: `initialInterval`, growing by `multiplier` up to `maxInterval`, for at
/// most `timeout` in all.
public struct WaitSchedule: Sendable, Equatable {
    /// The first delay.
    public var initialInterval: Duration
    /// The longest delay.
    public var maxInterval: Duration
    /// Growth per poll (at least 1).
    public var multiplier: Double
    /// The overall limit.
    public var timeout: Duration
    /// How long an image that EC2 does not list yet is polled for (EC2 is eventually consistent right after
    /// RegisterImage and CopyImage; an id it never knew should not be waited on for the whole timeout).
    public var notListedGrace: Duration

    /// Creates a schedule; the defaults suit AWS, where registration takes seconds to minutes and a
    /// cross-region copy can take much longer.
    public init(
        initialInterval: Duration = .seconds(2), maxInterval: Duration = .seconds(30), multiplier: Double = 1.5,
        timeout: Duration = .seconds(3600), notListedGrace: Duration = .seconds(60)
    ) {
        self.initialInterval = initialInterval
        self.maxInterval = maxInterval
        self.multiplier = max(1, multiplier)
        self.timeout = timeout
        self.notListedGrace = notListedGrace
    }

    /// The delay after poll `n` (1-based).
    public func delay(afterPoll n: Int) -> Duration {
        var d = initialInterval
        for _ in 1..<max(n, 1) {
            d = d * multiplier
            if d >= maxInterval { return maxInterval }
        }
        return min(d, maxInterval)
    }
}

public import NVList
public import ZFSLabel

/// What `zlabel inspect` and `zlabel verify` report about an image: every leaf vdev found, with its labels.
public struct ImageReport: Sendable {
    /// One leaf vdev in the image.
    public struct Vdev: Sendable {
        public var region: VdevRegion
        public var labels: VdevLabels
    }

    /// The image's path, as given.
    public var path: String
    /// The image's size in bytes.
    public var size: UInt64
    /// The leaf vdevs found, in image order.
    public var vdevs: [Vdev]

    /// Reads the labels of the leaf vdev in `region` (the whole image when `nil`).
    ///
    /// - Throws: ``ImageError`` when the region does not fit the image or a read fails.
    public init(image: any ImageStorage, region: VdevRegion? = nil) throws(ImageError) {
        path = image.path
        size = image.size
        let region = region ?? image.wholeImage
        vdevs = [Vdev(region: region, labels: try image.readLabels(in: region))]
    }

    /// The report as the `zlabel inspect --json` object: `{"vdevs":[…]}`.
    public func json(includeUberblocks: Bool = false) -> JSONValue {
        .object([("vdevs", .array(vdevs.map { $0.labels.json(offset: $0.region.offset, includeUberblocks: includeUberblocks) }))])
    }

    /// The report as text, in zdb's vocabulary.
    public func text(includeUberblocks: Bool = false) -> String {
        var out = ""
        for vdev in vdevs {
            let place = vdev.region.name.map { "\($0), " } ?? ""
            out += "\(path): vdev at \(place)offset \(vdev.region.offset), size \(vdev.region.size)\n"
            out += vdev.labels.zdbText(includeUberblocks: includeUberblocks)
            if let active = vdev.labels.activeUberblock {
                let ub = active.uberblock
                out += "active uberblock: txg \(ub.txg), timestamp \(ub.timestamp), guid_sum \(ub.guidSum) "
                out += "(label \(active.label), slot \(active.slot))\n"
            } else {
                out += "active uberblock: none usable\n"
            }
        }
        return out
    }

    /// Everything that keeps the image from verifying, one sentence each naming the file, the label and the
    /// byte offset in the image. Empty when every label of every vdev is valid and an uberblock is usable.
    public var problems: [String] {
        var out: [String] = []
        for vdev in vdevs {
            let base = vdev.region.offset
            let place = vdev.region.name.map { " (\($0))" } ?? ""
            for label in vdev.labels.labels where label.status != .valid {
                var s = "\(path)\(place): label \(label.index) at byte \(hex(base + label.offset)) is \(label.status.rawValue)"
                if let problem = label.problem { s += ": \(problem)" }
                if let at = label.problemOffset { s += " (byte \(hex(base + at)))" }
                out.append(s)
            }
            if vdev.labels.activeUberblock == nil {
                out.append("\(path)\(place): no usable uberblock in any of the four labels' rings")
            }
            let guids = Set(vdev.labels.labels.compactMap { l in l.config.map { [$0.uint64("pool_guid"), $0.uint64("guid")] } })
            if guids.count > 1 {
                out.append("\(path)\(place): labels disagree on pool_guid or guid")
            }
        }
        return out
    }

    /// Observations that are not failures (for instance labels holding different valid configs, as after an
    /// interrupted edit; ZFS takes the one with the highest txg, then L0).
    public var notes: [String] {
        var out: [String] = []
        for vdev in vdevs where vdev.labels.identicalGroups.count > 1 {
            let valid = vdev.labels.labels.filter { $0.status == .valid }
            if Set(valid.compactMap(\.config)).count > 1 {
                out.append("\(path): the valid labels hold different configs (groups \(vdev.labels.identicalGroups))")
            }
        }
        return out
    }
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

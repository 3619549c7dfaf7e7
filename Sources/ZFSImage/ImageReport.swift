public import DiskPartitions
public import NVList
public import ZFSLabel

/// What `zlabel inspect` and `zlabel verify` report about an image: every leaf vdev found, with its labels.
public struct ImageReport: Sendable {
    /// One leaf vdev in the image.
    public struct Vdev: Sendable {
        /// Where the leaf sits in the image.
        public var region: VdevRegion
        /// Its four labels.
        public var labels: VdevLabels
    }

    /// The image's path, as given.
    public var path: String
    /// The VM disk container the image was read through (`qcow2 (version 3)`, `VHDX`, …); nil for raw.
    public var container: String?
    /// The image's size in bytes.
    public var size: UInt64
    /// The leaf vdevs found, in image order.
    public var vdevs: [Vdev]
    /// The partition map, when the image has one.
    public var layout: DiskLayout?

    /// Reads the labels of the leaf vdev in `region`, taken as given.
    ///
    /// - Throws: `ImageError` when the region does not fit the image or a read fails.
    public init(image: any ImageStorage, region: VdevRegion) throws(ImageError) {
        path = image.path
        size = image.size
        vdevs = [Vdev(region: region, labels: try image.readLabels(in: region))]
    }

    /// Finds the vdevs in the image (every partition and slice with labels, or the one chosen) and reads
    /// their labels.
    ///
    /// - Throws: `ImageError` on a failed read, `PartitionTableError` on a broken partition table.
    public init(image: any ImageStorage, selector: RegionSelector? = nil) throws {
        path = image.path
        size = image.size
        container = (image as? ContainerImage)?.container.description
        let (layout, found) = try image.findVdevLabels(selector)
        self.layout = layout.schemes == [.none] ? nil : layout
        vdevs = found.map { Vdev(region: $0.region, labels: $0.labels) }
    }

    /// The report as the `zlabel inspect --json` object: `{"vdevs":[…]}`.
    public func json(includeUberblocks: Bool = false) -> JSONValue {
        let head: [(String, JSONValue)] = container.map { [("container", .string($0)), ("virtual_size", .uint(size))] } ?? []
        return .object(head + [("vdevs", .array(vdevs.map { vdev in
            var object = vdev.labels.json(offset: vdev.region.offset, includeUberblocks: includeUberblocks)
            if case .object(var members) = object, let p = vdev.region.partition {
                members.insert(("partition", .object([
                    ("name", .string(p.name)), ("scheme", .string(p.scheme.rawValue)),
                    ("start", .uint(p.start)), ("size", .uint(p.size)),
                ])), at: 2)
                object = .object(members)
            }
            return object
        }))])
    }

    /// The report as text, in zdb's vocabulary.
    public func text(includeUberblocks: Bool = false) -> String {
        var out = ""
        if let container { out += "\(path): \(container) image, virtual disk of \(size) bytes\n" }
        if let layout {
            out += "\(path): \(layout.schemes.map(\.rawValue).joined(separator: " + ")) partition map, \(layout.sectorSize)-byte sectors\n"
            for r in layout.regions {
                out += "    \(r.name)\t\(r.type)\tstart \(r.start)\tsize \(r.size)\(r.label.map { "\t'\($0)'" } ?? "")\n"
            }
            for w in layout.warnings { out += "    warning: \(w)\n" }
            if vdevs.isEmpty { out += "no ZFS labels in any partition or slice\n" }
        }
        for vdev in vdevs {
            let place = vdev.region.name.map { "\($0), " } ?? ""
            out += "\(path): vdev at \(place)offset \(vdev.region.offset), size \(vdev.region.size)\n"
            out += vdev.labels.zdbText(includeUberblocks: includeUberblocks)
            if let active = vdev.labels.activeUberblock {
                let ub = active.uberblock
                out += "active uberblock: txg \(ub.txg), timestamp \(ub.timestamp), guid_sum \(ub.guidSum), "
                out += "version \(ub.version)\(ub.hasSupportedVersion ? "" : " (unsupported: an import would refuse it)") "
                out += "(label \(active.label), slot \(active.slot))\n"
            } else {
                out += "active uberblock: none usable\n"
            }
        }
        return out
    }

    /// Why this image holds no ZFS vdev, as one sentence naming the file (and on a whole disk, the partitions and
    /// slices looked at); `nil` when some label of some vdev unpacks. `zlabel inspect` then exits non-zero, as
    /// `zdb -l` does when it finds no label.
    public var noLabelFound: String? {
        let looked = layout.map { layout in
            let names = layout.candidates.map(\.name)
            return names.isEmpty ? " (the \(layout.schemes.map(\.rawValue).joined(separator: " + ")) partition map has no partition or slice that could hold one)"
                : " (looked at \(names.joined(separator: ", ")))"
        } ?? ""
        if vdevs.isEmpty { return "\(path): no ZFS label found in any partition or slice\(looked)" }
        guard !vdevs.contains(where: { $0.labels.labels.contains { $0.config != nil } }) else { return nil }
        let place = vdevs.count == 1 ? (vdevs[0].region.name.map { " in \($0)" } ?? "") : " in \(vdevs.compactMap(\.region.name).joined(separator: ", "))"
        return "\(path): no ZFS label found\(place): none of the four labels unpacks, so this is not a ZFS vdev (or its "
            + "labels were overwritten)\(looked)"
    }

    /// Everything that keeps the image from verifying, one sentence each naming the file, the label and the
    /// byte offset in the image. Empty when every label of every vdev is valid, an uberblock is usable and no
    /// slot holding an uberblock fails its checksum.
    public var problems: [String] {
        var out: [String] = []
        if vdevs.isEmpty { out.append("\(path): no ZFS vdev found") }
        for vdev in vdevs {
            let base = vdev.region.offset
            let place = vdev.region.name.map { " (\($0))" } ?? ""
            for label in vdev.labels.labels where label.status != .valid {
                var s = "\(path)\(place): label \(label.index) at byte \(hex(base + label.offset)) is \(label.status.rawValue)"
                if let problem = label.problem { s += ": \(problem)" }
                if let at = label.problemOffset { s += " (byte \(hex(base + at)))" }
                out.append(s)
            }
            // A slot that carries the uberblock magic but fails its checksum is a damaged (or torn) uberblock;
            // ZFS skips it silently, which can roll the pool back to an older transaction group.
            for label in vdev.labels.labels {
                for slot in label.uberblocks where slot.uberblock != nil && !slot.checksum.isValid {
                    out.append("\(path)\(place): label \(label.index) uberblock slot \(slot.index) at byte \(hex(base + slot.offset)) fails its checksum (txg \(slot.uberblock!.txg))")
                }
            }
            if let active = vdev.labels.activeUberblock {
                // ZFS picks this uberblock whatever its version, then refuses to import (ENOTSUP); it never
                // falls back to an older uberblock with a version it knows.
                let ub = active.uberblock
                if !ub.hasSupportedVersion {
                    out.append("\(path)\(place): the active uberblock (txg \(ub.txg), label \(active.label) slot \(active.slot) at byte \(hex(base + active.offset))) has pool version \(ub.version), which OpenZFS does not support: an import would refuse the pool")
                }
            } else {
                out.append("\(path)\(place): no usable uberblock in any of the four labels' rings")
            }
            if let label = vdev.labels.configLabel, let version = label.config?.uint64("version"),
               !Uberblock.isSupportedVersion(version) {
                out.append("\(path)\(place): label \(label.index) at byte \(hex(base + label.offset)) gives pool version \(version), which OpenZFS does not support: an import would refuse the pool")
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

public import DiskPartitions
public import ZFSLabel

/// Where a leaf vdev sits inside an image: a byte range, and the name of the partition or slice when the
/// range came from a partition table.
public struct VdevRegion: Sendable, Equatable {
    /// Byte offset of the leaf's first byte in the image.
    public var offset: UInt64
    /// Length of the leaf in bytes.
    public var size: UInt64
    /// The partition or slice name (`p1`, `s0`), or `nil` for a bare vdev or an explicit range.
    public var name: String?
    /// The partition or slice the range came from, when a table described it.
    public var partition: DiskRegion?

    /// A region given by its byte range, with an optional name for messages.
    public init(offset: UInt64, size: UInt64, name: String? = nil) {
        self.offset = offset
        self.size = size
        self.name = name
    }

    /// The region of a partition or slice.
    public init(_ partition: DiskRegion) {
        self.init(offset: partition.start, size: partition.size, name: partition.scheme == .none ? nil : partition.name)
        self.partition = partition.scheme == .none ? nil : partition
    }
}

/// Reads an image through the partition parsers' input protocol.
struct StorageByteSource: ByteSource {
    let storage: any ImageStorage
    var size: UInt64 { storage.size }
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] { try storage.read(at: offset, count: count) }
}

extension ImageStorage {
    /// The image's partition map (MBR, GPT, SMI/VTOC), or a single `disk` region when it has none.
    ///
    /// - Throws: `ImageError` naming the image and the byte offset when the table is broken.
    public func partitionLayout() throws -> DiskLayout {
        do { return try DiskLayout.detect(in: StorageByteSource(storage: self)) } catch let error as PartitionTableError {
            throw ImageError(.partitionTable, path: path, offset: error.offset, message: error.message)
        }
    }

    /// Finds the leaf vdevs in the image: with a selector, that region; otherwise every partition or slice
    /// whose labels are not all absent, or the whole image when it has no partition table.
    ///
    /// - Returns: the layout and the regions, in image order.
    ///
    /// It decodes no label: a partition counts as a vdev when the config area of any of its labels is not all
    /// zero, which is exactly when ``findVdevLabels(_:)`` would find a label that is not absent.
    public func findVdevs(_ selector: RegionSelector? = nil) throws -> (layout: DiskLayout, regions: [VdevRegion]) {
        let layout = try partitionLayout()
        if let selector {
            let chosen: DiskRegion
            do { chosen = try layout.select(selector) } catch let error as PartitionTableError {
                throw ImageError(.partitionTable, path: path, offset: error.offset, message: error.message)
            }
            let region = VdevRegion(chosen)
            try validate(region)
            return (layout, [region])
        }
        if layout.schemes == [.none] {
            try validate(wholeImage)
            return (layout, [wholeImage])
        }
        var found: [VdevRegion] = []
        for candidate in layout.candidates {
            let region = VdevRegion(candidate)
            guard (try? validate(region)) != nil else { continue }
            if try hasLabelContent(in: region) { found.append(region) }
        }
        return (layout, found)
    }

    /// Whether the config area of any of the four labels of `region` holds a non-zero byte (a label that
    /// `Label` would not call absent).
    func hasLabelContent(in region: VdevRegion) throws(ImageError) -> Bool {
        for i in 0..<LabelLayout.labelCount {
            let offset = region.offset + LabelLayout.labelOffset(i, vdevSize: region.size) + UInt64(LabelLayout.configOffset)
            if try read(at: offset, count: LabelLayout.configSize).contains(where: { $0 != 0 }) { return true }
        }
        return false
    }

    /// ``findVdevs(_:)`` with the labels of each region, read once: the probe that finds a vdev in a
    /// partition already holds its labels.
    public func findVdevLabels(_ selector: RegionSelector? = nil) throws
        -> (layout: DiskLayout, vdevs: [(region: VdevRegion, labels: VdevLabels)])
    {
        let layout = try partitionLayout()
        if let selector {
            let chosen: DiskRegion
            do { chosen = try layout.select(selector) } catch let error as PartitionTableError {
                // A name the map does not hold is not at any byte of the image.
                let offset: UInt64? = if case .named = selector { nil } else { error.offset }
                throw ImageError(.partitionTable, path: path, offset: offset, message: error.message)
            }
            let region = VdevRegion(chosen)
            return (layout, [(region, try readLabels(in: region))])
        }
        if layout.schemes == [.none] { return (layout, [(wholeImage, try readLabels(in: wholeImage))]) }
        var found: [(region: VdevRegion, labels: VdevLabels)] = []
        for candidate in layout.candidates {
            let region = VdevRegion(candidate)
            guard (try? validate(region)) != nil else { continue }
            let labels = try readLabels(in: region)
            if labels.labels.contains(where: { $0.status != .absent }) { found.append((region, labels)) }
        }
        return (layout, found)
    }
}

extension ImageStorage {
    /// The whole image as one leaf vdev.
    public var wholeImage: VdevRegion { VdevRegion(offset: 0, size: size) }

    /// Checks that a region lies inside the image and can hold four labels.
    public func validate(_ region: VdevRegion) throws(ImageError) {
        let (end, overflow) = region.offset.addingReportingOverflow(region.size)
        guard !overflow, end <= size else {
            throw ImageError(.range, path: path, offset: region.offset,
                             message: "vdev of \(region.size) bytes runs past the end of the image (\(size) bytes)")
        }
        let minimum = UInt64(LabelLayout.labelCount * LabelLayout.labelSize)
        guard LabelLayout.alignedSize(region.size) >= minimum else {
            // For the whole image, "at byte 0" would only distract from its size.
            throw ImageError(.range, path: path, offset: region.offset == 0 && region.size == size ? nil : region.offset,
                             message: "a vdev of \(region.size) bytes cannot hold four 256 KiB labels (at least \(minimum) bytes, aligned to 256 KiB)")
        }
    }

    /// Reads the four labels of the leaf vdev in `region`: 1 MiB of I/O, wherever the labels are.
    ///
    /// - Throws: `ImageError` when the region does not fit or a read fails.
    public func readLabels(in region: VdevRegion) throws(ImageError) -> VdevLabels {
        try validate(region)
        var bytes: [[UInt8]?] = []
        for i in 0..<LabelLayout.labelCount {
            let offset = region.offset + LabelLayout.labelOffset(i, vdevSize: region.size)
            bytes.append(try read(at: offset, count: LabelLayout.labelSize))
        }
        return VdevLabels(labelBytes: bytes, vdevSize: region.size)
    }
}

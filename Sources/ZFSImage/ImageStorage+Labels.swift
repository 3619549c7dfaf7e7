public import ZFSLabel

/// Where a leaf vdev sits inside an image: a byte range, and the name of the partition or slice when the
/// range came from a partition table.
public struct VdevRegion: Sendable, Hashable {
    /// Byte offset of the leaf's first byte in the image.
    public var offset: UInt64
    /// Length of the leaf in bytes.
    public var size: UInt64
    /// The partition or slice name (`p1`, `s0`), or `nil` for a bare vdev or an explicit range.
    public var name: String?

    public init(offset: UInt64, size: UInt64, name: String? = nil) {
        self.offset = offset
        self.size = size
        self.name = name
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
            throw ImageError(.range, path: path, offset: region.offset,
                             message: "a vdev of \(region.size) bytes cannot hold four 256 KiB labels (at least \(minimum) bytes, aligned to 256 KiB)")
        }
    }

    /// Reads the four labels of the leaf vdev in `region`: 1 MiB of I/O, wherever the labels are.
    ///
    /// - Throws: ``ImageError`` when the region does not fit or a read fails.
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

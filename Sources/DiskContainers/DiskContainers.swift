// DiskContainers: virtual-machine disk containers presented as the plain disk they hold.
//
// What is read
//   raw               the file itself (block devices too: the caller's reader decides)
//   qcow2 v2, v3      L1/L2 tables of the active image (snapshots ignored); uncompressed clusters, deflate- and
//                     zstd-compressed clusters, v3 zero clusters, extended L2 entries (subcluster bitmaps);
//                     the L2 tables are the data map (allocated and compressed clusters; zero and unallocated
//                     clusters are holes)
//   VMDK              monolithicSparse (grain directory and tables, zeroed-grain entries), streamOptimized
//                     (deflate grains behind grain markers, the grain directory found through the footer when
//                     the header says GD_AT_END), and text descriptors (monolithicFlat, twoGbMaxExtentFlat,
//                     vmfs) whose FLAT/ZERO extents the caller opens: the descriptor parse is pure and names
//                     each extent's file (relative) and byte offset
//   VHD               fixed and dynamic (BAT and per-block sector bitmaps: a clear bit reads as zeros and is a
//                     hole in the data map); virtual size is the footer's Current Size
//   VHDX              fixed and dynamic: CRC-32C-checked headers and region tables, metadata (virtual size,
//                     block size, logical sector size), BAT with its interleaved sector-bitmap entries
//   zstd, xz, gzip    compressed raw, decompressed as one sequential stream (concatenated frames, streams and
//                     members are one image); `forEachNonZeroBlock` yields the blocks that are not all zeros,
//                     and `StreamedDisk` presents the stream as a random-access disk: measured in one pass
//                     (size, data map of non-zero 512 KiB blocks), a bounded chunk cache, and a new pass from the
//                     file's start only for a read behind the decoder and the cache
//
// What is refused, and why
//   backing files (qcow2 backing_file, VMDK parentCID/parentFileNameHint, differencing VHD/VHDX): the file
//     holds only differences, and reading it alone would give a wrong disk
//   encryption (qcow2 crypt_method), qcow2 external data files, qcow2 images QEMU marked corrupt, unknown
//     incompatible features or required VHDX regions/metadata: the bytes cannot be read correctly without them
//   a VHDX log that needs replay (non-zero LogGuid): the file's tables may not be the disk's last state
//   VMDK subformats other than the above (twoGbMaxExtentSparse, vmfsSparse, seSparse, unknown createType), and
//     compressed grains without markers
//
// Every offset and length from the file is bounds- and overflow-checked before use; a table that points into
// the header or into another table (the way a loop shows in these table-based formats) is `.loop`; every error
// names the structure and the byte offset in the container file, and the caller adds the file's name.
// Nothing here opens a file or writes anything: reads go through a `ContainerReader` the caller supplies.
//
// Writing in place (InPlaceWrite.swift)
//   For an edit of a few bytes (zlabel's label writes), `InPlaceWritable.hostRanges(forWriting:)` names the
//   file bytes that hold a virtual range, or throws an `InPlaceWriteRefusal` with a typed reason: qcow2
//   (allocated, uncompressed, refcount-1 clusters; no snapshots, not dirty), VMDK monolithicSparse
//   (allocated grains) and flat extents, VHD fixed and dynamic (allocated blocks, sectors present in the
//   bitmap). The caller overwrites exactly those bytes; no table or header ever needs to change, so nothing
//   here writes either. streamOptimized VMDK, VHDX and compressed streams are refused as formats.
//
// Why hand-written
//   No Swift package reads these formats. Debian bookworm does ship C libraries for them: libqcow-dev,
//   libvmdk-dev and libvhdi-dev (libyal; libvhdi covers VHD and VHDX). They are not used because: they are
//   versioned by snapshot date (bookworm: libqcow 20201213, libvmdk 20200926, libvhdi 20210425), not by a
//   versioned API; each opens files itself through libbfio (a caller-supplied reader needs a libbfio handle implemented in C callbacks), against this
//   module's rule that the caller owns all I/O; none of their public headers exposes the allocation map
//   (only open, read at offset, media size and metadata getters), which the uploader needs to skip holes
//   without reading them; and three more C libraries (with libbfio, libcdata, ... behind them) for table
//   formats of a few hundred lines each is a worse trade than parsers that fuzzers and qemu-img check.
//   Decompression does use the system libraries: zlib (deflate), libzstd and liblzma.

/// Which container a file is, as `inspect` names it.
public enum ContainerFormat: Sendable, Hashable, CustomStringConvertible {
    case raw
    case qcow2(version: UInt32)
    case vmdkMonolithicSparse
    case vmdkStreamOptimized
    /// A text descriptor; the subformat is its `createType`.
    case vmdkDescriptor(createType: String)
    case vhdFixed
    case vhdDynamic
    case vhdx
    case compressed(StreamCompression)

    public var description: String {
        switch self {
        case .raw: "raw"
        case .qcow2(let v): "qcow2 (version \(v))"
        case .vmdkMonolithicSparse: "VMDK monolithicSparse"
        case .vmdkStreamOptimized: "VMDK streamOptimized"
        case .vmdkDescriptor(let t): "VMDK descriptor (\(t))"
        case .vhdFixed: "VHD fixed"
        case .vhdDynamic: "VHD dynamic"
        case .vhdx: "VHDX"
        case .compressed(let c): "\(c)-compressed raw"
        }
    }
}

/// What a container file turned out to be, opened.
public enum OpenedContainer: Sendable {
    /// A random-access disk (raw included).
    case disk(any VirtualDisk)
    /// A VMDK text descriptor: open its extents' files and build a ``VMDKFlatDisk``.
    case vmdkDescriptor(VMDKDescriptor)
    /// A compressed raw image: read it front to back with ``CompressedRawStream``, or as a disk with
    /// ``StreamedDisk``.
    case stream(StreamCompression)
}

/// Detection by content and opening.
public enum DiskContainer {
    /// What kind of container the file is, by its magic numbers (never by its name).
    public enum Kind: String, Sendable, Hashable {
        case raw, qcow2, vmdkSparse, vmdkDescriptor, vhd, vhdx, zstd, xz, gzip
    }

    /// Detects the container by magic: the first bytes, and for a fixed VHD the footer in the last 512 bytes
    /// (with a matching checksum, so that a raw disk is not taken for one by accident).
    public static func detect(_ reader: any ContainerReader) throws(ContainerError) -> Kind {
        let head = try reader.bytes("file start", at: 0, count: Int(min(reader.size, 512)))
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0x51, 0x46, 0x49, 0xFB]) { return .qcow2 }
        if starts(Array("KDMV".utf8)) { return .vmdkSparse }
        if starts(Array("# Disk DescriptorFile".utf8)) { return .vmdkDescriptor }
        if starts(Array("vhdxfile".utf8)) { return .vhdx }
        if starts(Array("conectix".utf8)) { return .vhd }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return .zstd }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if starts([0x1F, 0x8B, 0x08]) { return .gzip }
        if reader.size >= 1024 {
            let tail = try reader.bytes("file end", at: reader.size - 512, count: 512)
            if Array(tail.prefix(8)) == Array("conectix".utf8), VHDDisk.checksum(tail, skipping: 64) == Fields(tail).be32(64) {
                return .vhd
            }
        }
        return .raw
    }

    /// Detects and opens the container.
    public static func open(_ reader: any ContainerReader) throws(ContainerError) -> OpenedContainer {
        switch try detect(reader) {
        case .raw: return .disk(RawDisk(reader))
        case .qcow2: return .disk(try QCOW2Disk(reader))
        case .vmdkSparse: return .disk(try VMDKSparseDisk(reader))
        case .vhd: return .disk(try VHDDisk(reader))
        case .vhdx: return .disk(try VHDXDisk(reader))
        case .vmdkDescriptor:
            guard reader.size <= 1 << 20 else {
                throw ContainerError(.malformed, "VMDK descriptor", at: 0, "a descriptor file of \(reader.size) bytes is too large")
            }
            let d = try VMDKDescriptor(try reader.bytes("VMDK descriptor", at: 0, count: Int(reader.size)))
            try VMDKFlatDisk.check(d)
            return .vmdkDescriptor(d)
        case .zstd: return .stream(.zstd)
        case .xz: return .stream(.xz)
        case .gzip: return .stream(.gzip)
        }
    }
}

/// A raw image: the file is the disk. Its data map is the whole file; the caller knows its own holes.
public struct RawDisk: VirtualDisk {
    public let reader: any ContainerReader
    public init(_ reader: any ContainerReader) { self.reader = reader }
    public var format: ContainerFormat { .raw }
    public var virtualSize: UInt64 { reader.size }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        try reader.fill(buffer, "raw image", at: offset)
    }
    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] { virtualSize == 0 ? [] : [0..<virtualSize] }
}

public import DiskContainers
public import RawIO
import Synchronization

/// An image inside a VM disk container (qcow2, VMDK, VHD, VHDX), read through the DiskContainers module: the
/// virtual disk's bytes. Labels are read from it exactly as from a raw image.
///
/// Opened for editing (`ImageFile.openForEditing(path:mode:)`) a qcow2, VMDK monolithicSparse or flat, or
/// VHD image is also written in place: a write changes only the 512-byte virtual sectors whose bytes differ,
/// and each of those must be stored plainly in the container's files (DiskContainers' `InPlaceWritable`);
/// no table, bitmap or header is ever changed. Offsets are virtual-disk offsets throughout, so the label
/// plan, the backup and the read-back are the raw image's.
public final class ContainerImage: ImageStorage {
    /// The container file's path.
    public let path: String
    /// The virtual disk's size.
    public var size: UInt64 { disk.virtualSize }
    /// Whether the image was opened for an in-place edit, read-write.
    public let isWritable: Bool
    /// Which container, e.g. `qcow2 (version 3)`.
    public var container: ContainerFormat { disk.format }
    let disk: any VirtualDisk
    /// The open files (container, and for a VMDK descriptor its extents), kept open for the disk's reads.
    let files: [ImageFile]
    /// Opened for editing: the disk's in-place mapping, and the file behind each `HostRange.file`.
    let inPlace: (disk: any InPlaceWritable, files: [Int: ImageFile])?

    init(path: String, disk: any VirtualDisk, files: [ImageFile],
         inPlace: (disk: any InPlaceWritable, files: [Int: ImageFile])? = nil, isWritable: Bool = false) {
        self.path = path
        self.disk = disk
        self.files = files
        self.inPlace = inPlace
        self.isWritable = isWritable && inPlace != nil
    }

    /// What to do instead of an in-place edit, for every refusal.
    static let howToProceed = "convert it (qemu-img convert -O raw) and edit the raw image, or give it to "
        + "`zlabel ec2 publish`, which writes the new labels into the snapshot and leaves this file unchanged"

    public func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        try checkRange(offset, count, "a read")
        do { return try disk.read(at: offset, count: count) } catch {
            throw ImageError(.read, path: path, message: "\(container) image: \(error.description)")
        }
    }

    /// Writes `bytes` at virtual `offset` in place: every changed sector is mapped to its file bytes first, and
    /// nothing is written unless all of them can be.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        guard isWritable else {
            throw ImageError(.write, path: path, offset: offset,
                             message: "is a \(container) image opened read-only")
        }
        try checkRange(offset, bytes.count, "a write")
        for (file, at, part) in try hostWrites(bytes, at: offset) { try file.write(part, at: at) }
    }

    public func synchronize() throws(ImageError) {
        guard let inPlace, isWritable else { return }
        var seen = Set<ObjectIdentifier>()
        for file in inPlace.files.values where seen.insert(ObjectIdentifier(file)).inserted { try file.synchronize() }
    }

    /// Throws an `ImageError` of code `ImageError.Code.container` unless `bytes` at virtual `offset` can be
    /// written in place; writes nothing.
    public func checkWritableInPlace(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        try checkRange(offset, bytes.count, "a write")
        _ = try hostWrites(bytes, at: offset)
    }

    /// The file writes that put `bytes` at virtual `offset`: the runs of 512-byte virtual sectors whose bytes
    /// change, each split at the container's cluster, grain or block boundaries.
    func hostWrites(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) -> [(ImageFile, UInt64, [UInt8])] {
        guard let inPlace else {
            throw ImageError(.container, path: path, message: "is a \(container) image opened for reading only")
        }
        let current = try read(at: offset, count: bytes.count)
        var out: [(ImageFile, UInt64, [UInt8])] = []
        for run in Self.changedSectors(from: current, to: bytes, at: offset) {
            let ranges: [HostRange]
            do { ranges = try inPlace.disk.hostRanges(forWriting: run) } catch { throw refusal(error) }
            for r in ranges {
                guard let file = inPlace.files[r.file] else {
                    throw ImageError(.container, path: path, message: "no open file for part \(r.file) of the \(container) image")
                }
                let lower = Int(r.virtual.lowerBound - offset)
                out.append((file, r.offset, Array(bytes[lower..<(lower + r.virtual.count)])))
            }
        }
        return out
    }

    /// The runs of virtual bytes, in whole 512-byte sectors clipped to the request, where `new` differs from `old`.
    static func changedSectors(from old: [UInt8], to new: [UInt8], at offset: UInt64) -> [Range<UInt64>] {
        var runs: [Range<UInt64>] = []
        var i = 0
        while i < new.count {
            let next = min(new.count, i + Int(512 - (offset + UInt64(i)) % 512))
            if old[i..<next] != new[i..<next] {
                let run = (offset + UInt64(i))..<(offset + UInt64(next))
                if let last = runs.last, last.upperBound == run.lowerBound {
                    runs[runs.count - 1] = last.lowerBound..<run.upperBound
                } else {
                    runs.append(run)
                }
            }
            i = next
        }
        return runs
    }

    func refusal(_ r: InPlaceWriteRefusal) -> ImageError {
        ImageError(.container, path: path,
                   message: "is a \(container) image that cannot be edited in place: \(r.description); \(Self.howToProceed)")
    }
}

/// Runs an edit on stand-ins that record its writes instead of making them, then checks that each write meant
/// for an image inside a container can be made in place. Called before the real edit (and before its
/// backup), so that a refusal leaves every file as it was.
public enum InPlaceRehearsal {
    /// Rehearses `edit` over `images` when any of them is a ``ContainerImage``; raw images and devices need no
    /// rehearsal and `edit` is not run for them.
    ///
    /// - Throws: what `edit` throws, or an `ImageError` of code `ImageError.Code.container` naming the
    ///   image and why a write cannot be made in place.
    public static func check(_ images: [any ImageStorage], _ edit: ([any ImageStorage]) throws -> Void) throws {
        guard images.contains(where: { $0 is ContainerImage }) else { return }
        let standIns = images.map { RecordingStorage(base: $0) }
        try edit(standIns)
        for (image, standIn) in zip(images, standIns) {
            guard let container = image as? ContainerImage else { continue }
            for w in standIn.writes.withLock({ $0 }) { try container.checkWritableInPlace(w.bytes, at: w.offset) }
        }
    }
}

/// Reads through to `base`, records writes instead of making them, and reads them back.
final class RecordingStorage: ImageStorage {
    let base: any ImageStorage
    let writes = Mutex<[(offset: UInt64, bytes: [UInt8])]>([])
    init(base: any ImageStorage) { self.base = base }
    var path: String { base.path }
    var size: UInt64 { base.size }
    var isWritable: Bool { true }

    func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        var out = try base.read(at: offset, count: count)
        let end = offset + UInt64(count)
        for w in writes.withLock({ $0 }) {
            let lower = max(offset, w.offset)
            let upper = min(end, w.offset + UInt64(w.bytes.count))
            guard lower < upper else { continue }
            out.replaceSubrange(Int(lower - offset)..<Int(upper - offset),
                                with: w.bytes[Int(lower - w.offset)..<Int(upper - w.offset)])
        }
        return out
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        try checkRange(offset, bytes.count, "a write")
        writes.withLock { $0.append((offset, bytes)) }
    }

    func synchronize() throws(ImageError) {}
}

/// Presents any ``ImageStorage`` as the positional reader the DiskContainers module parses.
struct StorageReader: ContainerReader {
    let storage: any ImageStorage
    var size: UInt64 { storage.size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let bytes = try storage.read(at: offset, count: buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }
}

extension ImageFile {
    /// Opens `path` for an in-place label edit (`set`, `restore`, `repair-checksums`): a raw image or block
    /// device as itself; a qcow2, VMDK monolithicSparse, VMDK flat descriptor (with its extent files) or VHD
    /// image as a ``ContainerImage`` that writes in place. Before editing, rehearse the edit with
    /// ``InPlaceRehearsal`` so that a range that cannot be written in place is refused before anything is.
    ///
    /// - Throws: `ImageError` of code `ImageError.Code.container` for a container that is never written in
    ///   place (VMDK streamOptimized, VHDX, compressed raw) or whose state forbids it (qcow2 snapshots, dirty,
    ///   backing file), saying how to proceed; other `ImageError`s when it cannot be opened.
    public static func openForEditing(path: String, mode: ImageFile.Mode) throws(ImageError) -> any ImageStorage {
        let file = try ImageFile(path: path, mode: mode)
        if file.isBlockDevice { return file }
        func refused(_ what: String, offset: UInt64? = nil) -> ImageError {
            ImageError(.container, path: path, offset: offset,
                       message: "\(what); zlabel edits labels in place only in raw images and in qcow2, VMDK "
                           + "monolithicSparse or flat, and VHD images whose label bytes are stored plainly; "
                           + ContainerImage.howToProceed)
        }
        // A container zlabel does not read at all (a backing file, encryption) is refused; a broken one is unreadable.
        func failed(_ error: ContainerError) -> ImageError {
            error.kind == .unsupported
                ? refused("\(error.structure): \(error.message)", offset: error.offset)
                : ImageError(.read, path: path, offset: error.offset, message: "\(error.structure): \(error.message)")
        }
        let opened: OpenedContainer
        do { opened = try DiskContainer.open(StorageReader(storage: file)) } catch { throw failed(error) }
        switch opened {
        case .disk(let disk) where disk.format == .raw:
            return file
        case .disk(let disk):
            let writable: any InPlaceWritable
            do { writable = try DiskContainer.writableInPlace(disk) } catch { throw refused("is a \(disk.format) image: \(error.description)") }
            return ContainerImage(path: path, disk: disk, files: [file], inPlace: (writable, [0: file]),
                                  isWritable: mode == .readWrite)
        case .vmdkDescriptor(let descriptor):
            var files = [file]
            var byExtent: [Int: ImageFile] = [:]
            var readers: [(any ContainerReader)?] = []
            for (index, extent) in descriptor.extents.enumerated() {
                guard extent.kind != .zero else { readers.append(nil); continue }
                let extentFile = try ImageFile(path: extentPath(extent, descriptor: path), mode: mode)
                files.append(extentFile)
                byExtent[index] = extentFile
                readers.append(StorageReader(storage: extentFile))
            }
            let disk: VMDKFlatDisk
            do { disk = try VMDKFlatDisk(descriptor, extentReaders: readers) } catch { throw failed(error) }
            return ContainerImage(path: path, disk: disk, files: files, inPlace: (disk, byExtent), isWritable: mode == .readWrite)
        case .stream(let compression):
            throw refused("is a \(compression)-compressed raw image, which has no random access: decompress it")
        }
    }

    /// The path of a VMDK extent file: as written when absolute, else next to the descriptor.
    static func extentPath(_ extent: VMDKDescriptor.Extent, descriptor path: String) -> String {
        let folder = path.contains("/") ? String(path[...path.lastIndex(of: "/")!]) : ""
        return extent.fileName.hasPrefix("/") ? extent.fileName : folder + extent.fileName
    }

    /// Opens `path` for reading labels: a raw image or block device as itself, a qcow2, VMDK (sparse,
    /// streamOptimized, or a flat descriptor with its extent files) or VHD/VHDX as a read-only
    /// ``ContainerImage`` of the disk inside; a zstd-, xz- or gzip-compressed raw image through DiskContainers'
    /// `StreamedDisk` (measured in one pass when opened; a read behind the decoder decodes again from the start).
    /// The container is found by content, not by name.
    ///
    /// - Throws: `ImageError` when the file cannot be opened, or its container or compressed stream is malformed,
    ///   cut short or refused (the message names the structure and the byte offset).
    public static func openForReading(path: String) throws(ImageError) -> any ImageStorage {
        let file = try ImageFile(path: path, mode: .readOnly)
        if file.isBlockDevice { return file }
        func failed(_ error: ContainerError) -> ImageError {
            ImageError(.read, path: path, offset: error.offset, message: "\(error.structure): \(error.message)")
        }
        let opened: OpenedContainer
        do { opened = try DiskContainer.open(StorageReader(storage: file)) } catch { throw failed(error) }
        switch opened {
        case .disk(let disk) where disk.format == .raw:
            return file
        case .disk(let disk):
            return ContainerImage(path: path, disk: disk, files: [file])
        case .vmdkDescriptor(let descriptor):
            var files = [file]
            var readers: [(any ContainerReader)?] = []
            for extent in descriptor.extents {
                guard extent.kind != .zero else { readers.append(nil); continue }
                let extentFile = try ImageFile(path: extentPath(extent, descriptor: path), mode: .readOnly)
                files.append(extentFile)
                readers.append(StorageReader(storage: extentFile))
            }
            do {
                return ContainerImage(path: path, disk: try VMDKFlatDisk(descriptor, extentReaders: readers), files: files)
            } catch { throw failed(error) }
        case .stream(let compression):
            // Measured once per process: `publish` opens the file again for its upload.
            do {
                let disk = try StreamedDisk(StorageReader(storage: file), compression: compression,
                                            measurementKey: file.identity.key)
                return ContainerImage(path: path, disk: disk, files: [file])
            } catch { throw failed(error) }
        }
    }
}

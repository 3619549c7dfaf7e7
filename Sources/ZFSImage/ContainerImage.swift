public import DiskContainers
public import RawIO

/// An image inside a VM disk container (qcow2, VMDK, VHD, VHDX), read through the DiskContainers module: the
/// virtual disk's bytes, read-only. Labels are read from it exactly as from a raw image.
public final class ContainerImage: ImageStorage {
    /// The container file's path.
    public let path: String
    /// The virtual disk's size.
    public var size: UInt64 { disk.virtualSize }
    /// Always false: labels inside containers are not edited yet.
    public var isWritable: Bool { false }
    /// Which container, e.g. `qcow2 (version 3)`.
    public var container: ContainerFormat { disk.format }
    let disk: any VirtualDisk
    /// The open files (container, and for a VMDK descriptor its extents), kept open for the disk's reads.
    let files: [ImageFile]

    init(path: String, disk: any VirtualDisk, files: [ImageFile]) {
        self.path = path
        self.disk = disk
        self.files = files
    }

    public func read(at offset: UInt64, count: Int) throws(ImageError) -> [UInt8] {
        try checkRange(offset, count, "a read")
        do { return try disk.read(at: offset, count: count) } catch {
            throw ImageError(.read, path: path, message: "\(container) image: \(error.description)")
        }
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws(ImageError) {
        throw ImageError(.write, path: path, offset: offset,
                         message: "is a \(container) image: zlabel edits labels only in raw images; convert it with qemu-img convert -O raw")
    }

    public func synchronize() throws(ImageError) {}
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
    /// Opens `path` for reading labels: a raw image or block device as itself, a qcow2, VMDK (sparse,
    /// streamOptimized, or a flat descriptor with its extent files) or VHD/VHDX as a read-only
    /// ``ContainerImage`` of the disk inside. The container is found by content, not by name.
    ///
    /// - Throws: ``ImageError`` when the file cannot be opened, its container is malformed or refused (the
    ///   message names the structure and the byte offset), or it is a compressed raw image (which has no
    ///   random access: decompress it first).
    /// Opens `path` for an in-place label edit (`set`, `restore`, `repair-checksums`): a raw image or block
    /// device. A VM disk container or a compressed raw image is refused before anything is written, with
    /// an ``ImageError`` of code `ImageError.Code.container` that says how to proceed.
    public static func openForEditing(path: String, mode: ImageFile.Mode) throws(ImageError) -> ImageFile {
        let file = try ImageFile(path: path, mode: mode)
        if file.isBlockDevice { return file }
        let opened: OpenedContainer
        do { opened = try DiskContainer.open(StorageReader(storage: file)) } catch {
            throw ImageError(.container, path: path, offset: error.offset,
                             message: "\(error.structure): \(error.message); zlabel edits labels in place only in raw images")
        }
        let kind: String
        switch opened {
        case .disk(let disk) where disk.format == .raw: return file
        case .disk(let disk): kind = "a \(disk.format) image"
        case .vmdkDescriptor: kind = "a VMDK descriptor"
        case .stream(let compression): kind = "a \(compression)-compressed raw image"
        }
        throw ImageError(.container, path: path, message: "is \(kind): zlabel edits labels in place only in raw images; "
            + "convert it (qemu-img convert -O raw, or decompress it) and edit the raw image, or give it to "
            + "`zlabel ec2 publish`, which writes the new labels into the snapshot and leaves this file unchanged")
    }

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
            let folder = path.contains("/") ? String(path[...path.lastIndex(of: "/")!]) : ""
            var files = [file]
            var readers: [(any ContainerReader)?] = []
            for extent in descriptor.extents {
                guard extent.kind != .zero else { readers.append(nil); continue }
                let name = extent.fileName.hasPrefix("/") ? extent.fileName : folder + extent.fileName
                let extentFile = try ImageFile(path: name, mode: .readOnly)
                files.append(extentFile)
                readers.append(StorageReader(storage: extentFile))
            }
            do {
                return ContainerImage(path: path, disk: try VMDKFlatDisk(descriptor, extentReaders: readers), files: files)
            } catch { throw failed(error) }
        case .stream(let compression):
            throw ImageError(.open, path: path,
                             message: "is a \(compression)-compressed raw image: labels need random access; decompress it first")
        }
    }
}

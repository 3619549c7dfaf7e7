// The image bytes of a VM disk container (qcow2, VMDK, VHD, VHDX) as an upload source: the virtual disk's
// bytes, read through the pure DiskContainers parsers, and its allocation map as the hole map.

public import DiskContainers
public import RawIO

/// An image file as the positional reader the container parsers consume.
struct FileReader: ContainerReader {
    let file: ImageFile
    var size: UInt64 { file.size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try file.read(into: buffer, at: offset)
    }
}

/// The virtual disk inside a container file, as an ``ImageSource``: ``dataExtents()`` is the container's
/// allocation map (unallocated clusters, grains and blocks are holes, never read and never sent), and reads
/// return the virtual bytes.
public struct ContainerImageSource: ImageSource {
    /// The container file's path.
    public let path: String
    /// The virtual disk.
    public let disk: any VirtualDisk
    /// The files kept open for the disk's reads (the container, and a VMDK descriptor's extent files).
    let files: [ImageFile]

    public var size: UInt64 { disk.virtualSize }

    public func dataExtents() throws -> [Range<UInt64>] {
        do { return try disk.dataExtents() } catch {
            throw ImageError(.read, path: path, offset: error.offset,
                             message: "\(disk.format) image: \(error.structure): \(error.message)")
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        do { try disk.read(into: buffer, at: offset) } catch {
            throw ImageError(.read, path: path, offset: error.offset,
                             message: "\(disk.format) image: \(error.structure): \(error.message)")
        }
    }
}

/// An image opened for upload: a raw file or block device as itself, or the virtual disk inside a VM disk
/// container, with the identity that guards the resume journal.
public struct UploadImage: Sendable {
    /// The path as given.
    public let path: String
    /// What the uploader reads.
    public let source: any ImageSource
    /// The identity of the file(s) read: for a container, the container file's, so that a changed container
    /// never resumes an upload of its old content. A VMDK descriptor's identity also covers its extent files
    /// (sizes added, the newest modification time).
    public let identity: FileIdentity
    /// The container, e.g. `qcow2 (version 3)`; nil for a raw image or device.
    public let container: String?

    /// Opens `path` read-only; the container is found by content, not by name. A block device is always read
    /// as itself, as the label side reads it.
    ///
    /// - Throws: `ImageError` when the file cannot be opened, its container is malformed or not supported
    ///   (the message names the structure and the byte offset), or a compressed raw image's stream is malformed
    ///   or cut short.
    public static func open(path: String) throws -> UploadImage {
        let file = try ImageFile(path: path)
        if file.isBlockDevice {
            return UploadImage(path: path, source: file, identity: file.identity, container: nil)
        }
        func failed(_ error: ContainerError) -> ImageError {
            ImageError(.read, path: path, offset: error.offset, message: "\(error.structure): \(error.message)")
        }
        let opened: OpenedContainer
        do { opened = try DiskContainer.open(FileReader(file: file)) } catch { throw failed(error) }
        switch opened {
        case .disk(let disk) where disk.format == .raw:
            return UploadImage(path: path, source: file, identity: file.identity, container: nil)
        case .disk(let disk):
            return UploadImage(path: path, source: ContainerImageSource(path: path, disk: disk, files: [file]),
                               identity: file.identity, container: disk.format.description)
        case .vmdkDescriptor(let descriptor):
            let folder = path.contains("/") ? String(path[...path.lastIndex(of: "/")!]) : ""
            var files = [file]
            var readers: [(any ContainerReader)?] = []
            var identity = file.identity
            for extent in descriptor.extents {
                guard extent.kind != .zero else { readers.append(nil); continue }
                let name = extent.fileName.hasPrefix("/") ? extent.fileName : folder + extent.fileName
                let extentFile = try ImageFile(path: name)
                files.append(extentFile)
                readers.append(FileReader(file: extentFile))
                identity.size &+= extentFile.identity.size
                identity.modifiedNanoseconds = max(identity.modifiedNanoseconds, extentFile.identity.modifiedNanoseconds)
            }
            let disk: VMDKFlatDisk
            do { disk = try VMDKFlatDisk(descriptor, extentReaders: readers) } catch { throw failed(error) }
            return UploadImage(path: path, source: ContainerImageSource(path: path, disk: disk, files: files),
                               identity: identity, container: disk.format.description)
        case .stream(let compression):
            // Decoded front to back as the blocks are sent; the cache covers the workers' reads around the
            // decoder (16 workers read 8 MiB at a time), so that one upload is one pass.
            let disk: StreamedDisk
            do {
                disk = try StreamedDisk(FileReader(file: file), compression: compression, measurementKey: file.identity.key,
                                        cacheBytes: 16 << 20, lookbehind: 8 << 20)
            } catch { throw failed(error) }
            return UploadImage(path: path, source: ContainerImageSource(path: path, disk: disk, files: [file]),
                               identity: file.identity, container: disk.format.description)
        }
    }
}

extension SnapshotUploader {
    /// Uploads an image opened with ``UploadImage/open(path:)``: raw or the virtual disk of a container.
    public func upload(
        image: UploadImage, options: UploadOptions, progress: (@Sendable (UploadProgress) -> Void)? = nil
    ) async throws -> UploadResult {
        try await upload(source: image.source, name: image.path, identity: image.identity, options: options,
                         progress: progress)
    }
}

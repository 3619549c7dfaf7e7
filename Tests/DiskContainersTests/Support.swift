import DiskContainers
import Foundation
import Synchronization
import TestSupport
#if canImport(Glibc)
    import Glibc
#endif

/// A container file read with `pread`, as the callers of DiskContainers will adapt their own readers.
final class FileReader: ContainerReader {
    let size: UInt64
    let fd: Int32
    let path: String

    init(_ url: URL) throws {
        path = url.path
        fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ContainerTestError("cannot open \(url.path)") }
        size = UInt64(lseek(fd, 0, SEEK_END))
    }
    deinit { close(fd) }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            guard n > 0 else { throw ContainerTestError("\(path): short read at \(offset + UInt64(done))") }
            done += n
        }
    }
}

struct ContainerTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One way of packing a raw image, made by qemu-img or a compressor.
struct Packing: Sendable, Hashable, CustomStringConvertible {
    let name: String
    /// qemu-img convert arguments after `-O`; nil for a compressor.
    let qemu: [String]?
    /// The compressor's shell command, reading stdin and writing stdout.
    let compressor: String?
    /// What detection must say.
    let kind: DiskContainer.Kind
    /// qemu-img's `-f` to read it back.
    let qemuFormat: String?

    var description: String { name }

    static func q(_ name: String, _ args: [String], _ kind: DiskContainer.Kind, _ f: String) -> Packing {
        Packing(name: name, qemu: args, compressor: nil, kind: kind, qemuFormat: f)
    }

    static let qcow2 = q("qcow2", ["qcow2"], .qcow2, "qcow2")
    static let qcow2Compressed = q("qcow2 -c", ["qcow2", "-c"], .qcow2, "qcow2")
    static let qcow2v2 = q("qcow2 compat=0.10", ["qcow2", "-o", "compat=0.10"], .qcow2, "qcow2")
    static let qcow2ExtendedL2 = q("qcow2 extended_l2", ["qcow2", "-o", "extended_l2=on,cluster_size=128k"], .qcow2, "qcow2")
    static let qcow2Zstd = q("qcow2 -c zstd", ["qcow2", "-c", "-o", "compression_type=zstd"], .qcow2, "qcow2")
    static let vmdkSparse = q("vmdk monolithicSparse", ["vmdk", "-o", "subformat=monolithicSparse"], .vmdkSparse, "vmdk")
    static let vmdkStream = q("vmdk streamOptimized", ["vmdk", "-o", "subformat=streamOptimized"], .vmdkSparse, "vmdk")
    static let vmdkFlat = q("vmdk monolithicFlat", ["vmdk", "-o", "subformat=monolithicFlat"], .vmdkDescriptor, "vmdk")
    static let vhdFixed = q("vpc fixed", ["vpc", "-o", "subformat=fixed"], .vhd, "vpc")
    static let vhdDynamic = q("vpc dynamic", ["vpc", "-o", "subformat=dynamic"], .vhd, "vpc")
    static let vhdxFixed = q("vhdx fixed", ["vhdx", "-o", "subformat=fixed"], .vhdx, "vhdx")
    static let vhdxDynamic = q("vhdx dynamic", ["vhdx", "-o", "subformat=dynamic"], .vhdx, "vhdx")
    static let zstd = Packing(name: "zstd", qemu: nil, compressor: "zstd -q -c", kind: .zstd, qemuFormat: nil)
    static let xz = Packing(name: "xz", qemu: nil, compressor: "xz -0 -T1 -c", kind: .xz, qemuFormat: nil)
    static let gzip = Packing(name: "gzip", qemu: nil, compressor: "gzip -1 -c", kind: .gzip, qemuFormat: nil)

    static let allContainers = [
        qcow2, qcow2Compressed, qcow2v2, qcow2ExtendedL2, qcow2Zstd, vmdkSparse, vmdkStream, vmdkFlat,
        vhdFixed, vhdDynamic, vhdxFixed, vhdxDynamic,
    ]
    /// The cheap subset for the larger whole-disk fixtures.
    static let someContainers = [qcow2Compressed, vmdkStream, vhdDynamic, vhdxDynamic]
    static let compressors = [zstd, xz, gzip]
}

/// Converted images, made once per test process and shared.
enum Converted {
    private static let directory = Mutex<TemporaryDirectory?>(nil)
    private static let made = Mutex<[String: URL]>([:])

    static func dir() throws -> TemporaryDirectory {
        try directory.withLock { d in
            if let d { return d }
            let n = try TemporaryDirectory(prefix: "zlabel-containers")
            d = n
            return n
        }
    }

    /// The fixture packed as `packing` (for monolithicFlat: the descriptor; its extent sits next to it).
    /// Conversions run one at a time, under the cache's lock.
    static func file(_ fixture: String, _ packing: Packing) throws -> URL {
        let raw = try Fixture.image(fixture)
        let d = try dir()
        return try made.withLock { made in
            let key = fixture + "|" + packing.name
            if let url = made[key] { return url }
            let stem = fixture.replacingOccurrences(of: ".", with: "_") + "-" + packing.name.filter { $0.isLetter || $0.isNumber }
            let target = d.file(stem + (packing.qemu?.first == "vmdk" ? ".vmdk" : ".img"))
            let result: ProcessResult
            if let args = packing.qemu {
                result = try Run.run("qemu-img", ["convert", "-f", "raw", "-O"] + args + [raw.path, target.path])
            } else {
                result = try Run.run("sh", ["-c", "\(packing.compressor!) < \"$1\" > \"$2\"", "sh", raw.path, target.path])
            }
            guard result.succeeded else { throw ContainerTestError("packing \(fixture) as \(packing) failed:\n\(result)") }
            made[key] = target
            return target
        }
    }

    /// qemu-img's own raw conversion of the packed image: the oracle for its virtual bytes.
    static func rawBack(_ fixture: String, _ packing: Packing) throws -> URL {
        let source = try file(fixture, packing)
        return try made.withLock { made in
            let key = fixture + "|" + packing.name + "|raw"
            if let url = made[key] { return url }
            let target = source.appendingPathExtension("raw")
            let result = try Run.run("qemu-img", ["convert", "-f", packing.qemuFormat!, "-O", "raw", source.path, target.path])
            guard result.succeeded else { throw ContainerTestError("qemu-img convert -O raw of \(source.path) failed:\n\(result)") }
            made[key] = target
            return target
        }
    }
}

/// Opens a packed image as a random-access disk; a monolithicFlat descriptor gets its extent file opened
/// next to it, as a caller would.
func openDisk(_ url: URL) throws -> any VirtualDisk {
    let reader = try FileReader(url)
    switch try DiskContainer.open(reader) {
    case .disk(let disk): return disk
    case .vmdkDescriptor(let d):
        let readers: [(any ContainerReader)?] = try d.extents.map { e in
            e.kind == .zero ? nil : try FileReader(url.deletingLastPathComponent().appending(path: e.fileName))
        }
        return try VMDKFlatDisk(d, extentReaders: readers)
    case .stream(let c): throw ContainerTestError("\(url.path) is a \(c) stream, not a disk")
    }
}

/// memcmp-speed equality of two byte ranges.
func sameBytes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
}

/// The first non-zero byte of `bytes[range]` (indexes of `bytes`), if any.
func firstNonZero(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
    bytes.withUnsafeBytes { b in
        let part = UnsafeRawBufferPointer(rebasing: b[range])
        if isAllZero(part) { return nil }
        return range.first { bytes[$0] != 0 }
    }
}

func readAll(_ url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

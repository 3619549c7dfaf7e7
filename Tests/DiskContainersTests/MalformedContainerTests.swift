@testable import DiskContainers
import Foundation
import Testing
import TestSupport

/// Damaged containers: each must throw a ``ContainerError`` of the right kind naming the structure and the byte
/// offset, never trap, and never return wrong bytes.
@Suite("Malformed containers")
struct MalformedContainerTests {
    /// Opens, maps and reads all of `bytes` as a container; returns the error, or nil if everything read.
    static func failure(_ bytes: [UInt8], as kind: DiskContainer.Kind? = nil, equalTo raw: [UInt8]? = nil) -> ContainerError? {
        do throws(ContainerError) {
            let reader = MemoryReader(bytes)
            let opened: OpenedContainer
            switch kind {
            case nil: opened = try DiskContainer.open(reader)
            case .qcow2: opened = .disk(try QCOW2Disk(reader))
            case .vmdkSparse: opened = .disk(try VMDKSparseDisk(reader))
            case .vhd: opened = .disk(try VHDDisk(reader))
            case .vhdx: opened = .disk(try VHDXDisk(reader))
            case .zstd: opened = .stream(.zstd)
            case .xz: opened = .stream(.xz)
            case .gzip: opened = .stream(.gzip)
            case .raw, .vmdkDescriptor: opened = try DiskContainer.open(reader)
            }
            switch opened {
            case .disk(let disk):
                _ = try disk.dataExtents()
                let all = try disk.read(at: 0, count: Int(min(disk.virtualSize, 256 << 20)))
                if let raw {
                    let same = sameBytes(all.prefix(raw.count), raw[...])  // (not inside #expect: it would print the bytes)
                    #expect(same, "read wrong bytes without an error")
                }
            case .vmdkDescriptor: break
            case .stream(let c):
                let s = try CompressedRawStream(MemoryReader(bytes), compression: c)
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while try buffer.withMutableBytes({ (b) throws(ContainerError) in try s.read(into: b) }) > 0 {}
            }
            return nil
        } catch {
            return error
        }
    }

    static func be64(_ b: [UInt8], _ i: Int) -> UInt64 { Fields(b).be64(i) }
    static func le64(_ b: [UInt8], _ i: Int) -> UInt64 { Fields(b).le64(i) }
    static func setBE(_ b: inout [UInt8], _ i: Int, _ v: UInt64, _ n: Int) {
        for k in 0..<n { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(n - 1 - k))) }
    }
    static func setLE(_ b: inout [UInt8], _ i: Int, _ v: UInt64, _ n: Int) {
        for k in 0..<n { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }
    static func packed(_ p: Packing) throws -> [UInt8] { try readAll(try Converted.file("rpool-kvm.img", p)) }

    @Test("a truncated container throws or reads the right bytes, never wrong ones", .oracle(.qemuImg, .compressors),
          arguments: Packing.allContainers.filter { $0 != .vmdkFlat } + Packing.compressors)
    func truncated(_ p: Packing) throws {
        try Oracle.require(.qemuImg, .compressors)
        let bytes = try Self.packed(p)
        let raw = try readAll(try Fixture.image("rpool-kvm.img"))
        var errors = 0
        for cut in [0, 100, 600, bytes.count / 3, bytes.count / 2, bytes.count * 2 / 3, bytes.count - 513, bytes.count - 1] {
            guard let error = Self.failure(Array(bytes.prefix(cut)), as: p.kind, equalTo: raw) else { continue }
            errors += 1
            #expect(error.offset != nil || cut < 8, "\(p) cut at \(cut): \(error)")
            #expect(error.kind != .io, "\(p) cut at \(cut): \(error)")
        }
        #expect(errors >= 6, "\(p): most cuts must be noticed")
    }

    @Test("a qcow2 L1 entry pointing past the end of the file", .oracle(.qemuImg))
    func qcow2PastEnd() throws {
        try Oracle.require(.qemuImg)
        var b = try Self.packed(.qcow2)
        let l1 = Int(Self.be64(b, 40))
        let target = UInt64(b.count + (1 << 20)) & ~0xFFFF
        Self.setBE(&b, l1, target, 8)
        let error = try #require(Self.failure(b))
        #expect(error.kind == .truncated)
        #expect(error.offset == target)
        #expect(error.structure.contains("L2 table"))
        #expect(error.describing(file: "disk.qcow2").hasPrefix("disk.qcow2: qcow2 L2 table"))
    }

    @Test("a qcow2 L1 entry pointing at the L1 table itself is a loop", .oracle(.qemuImg))
    func qcow2Loop() throws {
        try Oracle.require(.qemuImg)
        var b = try Self.packed(.qcow2)
        let l1 = Int(Self.be64(b, 40))
        Self.setBE(&b, l1, UInt64(l1), 8)
        let error = try #require(Self.failure(b))
        #expect(error.kind == .loop)
        #expect(error.offset == UInt64(l1))
    }

    @Test("a qcow2 image with a backing file or encryption is refused", .oracle(.qemuImg))
    func qcow2Refusals() throws {
        try Oracle.require(.qemuImg)
        let d = try TemporaryDirectory(prefix: "zlabel-qcow2-backing")
        let base = try Converted.file("rpool-kvm.img", .qcow2)
        let overlay = d.file("overlay.qcow2")
        let r = try Run.run("qemu-img", ["create", "-f", "qcow2", "-b", base.path, "-F", "qcow2", overlay.path])
        #expect(r.succeeded, "\(r)")
        let backing = try #require(Self.failure(try readAll(overlay)))
        #expect(backing.kind == .unsupported)
        #expect(backing.message.contains("backing file") && backing.message.contains(base.lastPathComponent))

        var b = try Self.packed(.qcow2)
        Self.setBE(&b, 32, 2, 4)  // crypt_method LUKS
        let crypt = try #require(Self.failure(b))
        #expect(crypt.kind == .unsupported && crypt.offset == 32)
    }

    @Test("a corrupt compressed qcow2 cluster", .oracle(.qemuImg))
    func qcow2BadCompressedCluster() throws {
        try Oracle.require(.qemuImg)
        var b = try Self.packed(.qcow2Compressed)
        // Scramble everything after the metadata: the compressed clusters.
        let l1 = Int(Self.be64(b, 40))
        let l2 = Int(Self.be64(b, l1) & QCOW2Disk.offsetMask)
        let firstCompressed = (0..<8192).lazy.map { Self.be64(b, l2 + $0 * 8) }.first { $0 & QCOW2Disk.compressedFlag != 0 }
        let entry = try #require(firstCompressed)
        let host = Int(entry & ((1 << (62 - 8)) - 1))
        for i in host..<(host + 64) { b[i] ^= 0x5A }
        let error = try #require(Self.failure(b))
        #expect(error.kind == .malformed)
        #expect(error.offset == UInt64(host))
        #expect(error.structure.contains("compressed cluster"))
    }

    @Test("a VMDK grain directory entry past the end, and one pointing at the directory", .oracle(.qemuImg))
    func vmdkTables() throws {
        try Oracle.require(.qemuImg)
        let b = try Self.packed(.vmdkSparse)
        let gd = Int(Self.le64(b, 56)) * 512
        var past = b
        Self.setLE(&past, gd, UInt64(b.count / 512 + 100), 4)
        let e1 = try #require(Self.failure(past))
        #expect(e1.kind == .truncated && e1.offset == UInt64(b.count / 512 + 100) * 512)
        var loop = b
        Self.setLE(&loop, gd, UInt64(gd / 512), 4)
        let e2 = try #require(Self.failure(loop))
        #expect(e2.kind == .loop && e2.offset == UInt64(gd))
    }

    @Test("an unknown VMDK subformat is refused, embedded or in a descriptor file", .oracle(.qemuImg))
    func vmdkUnknownSubformat() throws {
        try Oracle.require(.qemuImg)
        var b = try Self.packed(.vmdkSparse)
        let descriptorAt = Int(Self.le64(b, 28)) * 512
        let text = Array("createType=\"monolithicSparse\"".utf8)
        let at = try #require((descriptorAt..<(descriptorAt + 4096)).first { Array(b[$0..<($0 + text.count)]) == text })
        b.replaceSubrange(at..<(at + text.count), with: Array("createType=\"monolithicSpars3\"".utf8))
        let error = try #require(Self.failure(b))
        #expect(error.kind == .unsupported && error.offset == UInt64(descriptorAt))
        #expect(error.message.contains("monolithicSpars3"))

        let descriptor = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"fooBar\"\n\nRW 2048 FLAT \"x-flat.vmdk\" 0\n"
        let e2 = try #require(Self.failure(Array(descriptor.utf8)))
        #expect(e2.kind == .unsupported && e2.message.contains("fooBar"))
        #expect(e2.offset == UInt64("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n".utf8.count))
        let bad = "# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW lots FLAT \"x-flat.vmdk\" 0\n"
        let e3 = try #require(Self.failure(Array(bad.utf8)))
        #expect(e3.kind == .malformed && e3.offset == UInt64("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\n".utf8.count))
    }

    @Test("a monolithicFlat descriptor names its extent, and an extent too short is refused", .oracle(.qemuImg))
    func vmdkFlatExtent() throws {
        try Oracle.require(.qemuImg)
        let url = try Converted.file("rpool-kvm.img", .vmdkFlat)
        guard case .vmdkDescriptor(let d) = try DiskContainer.open(FileReader(url)) else {
            Issue.record("not a descriptor")
            return
        }
        #expect(d.createType == "monolithicFlat" && d.extents.count == 1)
        #expect(d.extents[0].kind == .flat && d.extents[0].offset == 0 && d.extents[0].size == 64 << 20)
        #expect(FileManager.default.fileExists(atPath: url.deletingLastPathComponent().appending(path: d.extents[0].fileName).path))
        #expect(throws: ContainerError.self) { try VMDKFlatDisk(d, extentReaders: [MemoryReader([UInt8](repeating: 0, count: 4096))]) }
    }

    @Test("a VHD with a bad checksum, a BAT entry past the end, or one at the BAT", .oracle(.qemuImg))
    func vhd() throws {
        try Oracle.require(.qemuImg)
        let b = try Self.packed(.vhdDynamic)
        var sum = b
        sum[b.count - 512 + 48] ^= 1  // current size, footer at the end and its copy at the start
        sum[48] ^= 1
        let e0 = try #require(Self.failure(sum))
        #expect(e0.kind == .malformed && e0.offset == UInt64(b.count - 512 + 64))

        let header = Int(Self.be64(b, 16))
        let bat = Int(Self.be64(b, header + 16))
        var past = b
        Self.setBE(&past, bat, UInt64(b.count / 512 + 8), 4)
        let e1 = try #require(Self.failure(past))
        #expect(e1.kind == .truncated && e1.offset == UInt64(b.count / 512 + 8) * 512)
        var loop = b
        Self.setBE(&loop, bat, UInt64(bat / 512), 4)
        let e2 = try #require(Self.failure(loop))
        #expect(e2.kind == .loop && e2.offset == UInt64(bat))
    }

    @Test("a VHDX whose log needs replay, or whose headers are both damaged, is refused", .oracle(.qemuImg))
    func vhdx() throws {
        try Oracle.require(.qemuImg)
        let b = try Self.packed(.vhdxDynamic)
        var log = b
        for at in [64 * 1024, 128 * 1024] {
            log[at + 48] = 0x42  // LogGuid
            Self.setLE(&log, at + 4, 0, 4)
            Self.setLE(&log, at + 4, UInt64(CRC32C.checksum(Array(log[at..<(at + 4096)]))), 4)
        }
        let e1 = try #require(Self.failure(log))
        #expect(e1.kind == .unsupported && e1.message.contains("log"))
        #expect(e1.offset == 64 * 1024 + 48 || e1.offset == 128 * 1024 + 48)

        var crc = b
        crc[64 * 1024 + 20] ^= 1
        crc[128 * 1024 + 20] ^= 1
        let e2 = try #require(Self.failure(crc))
        #expect(e2.kind == .malformed && e2.offset == 64 * 1024)

        // BAT entry 0 pointing far past the end.
        let disk = try VHDXDisk(MemoryReader(b))
        var past = b
        Self.setLE(&past, Int(disk.batOffset), UInt64(6) | (UInt64(b.count >> 20) + 64) << 20, 8)
        let e3 = try #require(Self.failure(past))
        #expect(e3.kind == .truncated && e3.offset == (UInt64(b.count >> 20) + 64) << 20)
    }

    @Test("a compressed raw image cut short", .oracle(.compressors), arguments: Packing.compressors)
    func streamCutShort(_ p: Packing) throws {
        try Oracle.require(.compressors)
        let b = try Self.packed(p)
        let cut = b.count / 2
        let error = try #require(Self.failure(Array(b.prefix(cut)), as: p.kind))
        #expect(error.kind == .truncated, "\(error)")
        #expect(error.offset == UInt64(cut), "\(error)")
        #expect(error.structure == "\(p.kind) stream")
    }

    @Test("CRC-32C matches the Castagnoli check value") func crc32c() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

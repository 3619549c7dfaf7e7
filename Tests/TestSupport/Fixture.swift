public import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One image in `Fixtures/`, written by real ZFS (see `Fixtures/README.md`), with what is known about it.
///
/// ```swift
/// let url = try Fixture.image("rpool-kvm.img")               // read-only, shared, decompressed once
/// let copy = try Fixture.scratchCopy("rpool-mirror-0.img", "rpool-mirror-1.img")
/// try edit(copy.urls[0])                                      // writable, private to this test
/// for fixture in Fixture.all where fixture.byteOrder == .big { ... }
/// ```
public struct Fixture: Sendable, Hashable, CustomStringConvertible {
    public enum ByteOrder: String, Sendable, Hashable { case little, big }

    /// Where the image came from.
    public enum Origin: String, Sendable, Hashable {
        /// OpenZFS 2.1.11 libzpool in userland (`make-real-pool.sh`, `reimport-pool.sh`), via `make-fixtures.sh`.
        case libzpool
        /// Debian's `zfs-test` package (pools written by older ZFS releases, several on SPARC).
        case zfsTestPackage
    }

    /// The top-level vdev the pool is made of.
    public enum Layout: Sendable, Hashable, CustomStringConvertible {
        /// One leaf vdev (type `disk` or `file`).
        case single
        /// A mirror of `width` leaves.
        case mirror(width: Int)
        /// A raidz of `width` leaves with `parity` parity disks.
        case raidz(parity: Int, width: Int)

        public var description: String {
            switch self {
            case .single: "single"
            case .mirror(let width): "mirror of \(width)"
            case .raidz(let parity, let width): "raidz\(parity) of \(width)"
            }
        }
    }

    /// How a whole-disk image holds its pool.
    public struct Partition: Sendable, Hashable {
        public enum Scheme: String, Sendable, Hashable { case gpt, mbrVTOC = "mbr-vtoc" }
        public let scheme: Scheme
        /// GPT partition number (1-based), or the MBR partition number for `mbrVTOC`.
        public let number: Int
        /// The illumos slice of the pool (`s0`, `s1`).
        public let slice: String
        /// Byte offset and size of the pool inside the image.
        public let offset: UInt64
        public let size: UInt64
        /// GRUB's name for the partition within `(hd0,…)`, for `Oracle.grubBootpath(partition:)`; nil when GRUB
        /// cannot open it by name (a VTOC slice: pass `Oracle.Device(url, offset:, size:)` instead).
        public let grubPartition: String?
    }

    /// File name of the raw image, e.g. `rpool-kvm.img`; `Fixture.image(name)` takes this.
    public let name: String
    /// File name in `Fixtures/`, e.g. `rpool-kvm.img.xz`.
    public let compressedName: String
    public let origin: Origin
    /// The pool's name (`name` in the label config).
    public let poolName: String
    /// Pool version (`version` in the label config).
    public let poolVersion: UInt64
    /// Byte order of the labels (big = written on SPARC; they read as byteswapped on x86).
    public let byteOrder: ByteOrder
    public let layout: Layout
    /// The images of all members of the pool in `vdev_tree.children` order (just `[name]` for a single vdev).
    public let members: [String]
    /// Raw image size in bytes.
    public let size: UInt64
    /// The pool state in the labels: 0 active (not exported), 1 exported.
    public let state: UInt64
    /// How many of the 4 labels real ZFS finds valid (unpacked, checksum good).
    public let validLabels: Int
    /// Set for whole-disk images: where the pool is.
    public let partition: Partition?
    /// One line on what makes this fixture interesting.
    public let summary: String

    public var description: String { name }

    /// Whether OpenZFS can import a pool of this version (`SPA_VERSION_IS_SUPPORTED`: 1...28 or 5000).
    public var hasSupportedVersion: Bool { (1...28).contains(poolVersion) || poolVersion == 5000 }

    /// True for an image that is one vdev at offset 0 (not a whole disk).
    public var isBareVdev: Bool { partition == nil }

    /// This member's index in `vdev_tree.children` (nil for a single-vdev pool).
    public var childIndex: Int? {
        if case .single = layout { return nil }
        return members.firstIndex(of: name)
    }

    /// The compressed file in `Fixtures/`.
    public var compressedURL: URL { Repository.fixtures.appending(path: compressedName, directoryHint: .notDirectory) }

    /// A shared, read-only, decompressed copy; see `Fixture.image(_:)`.
    public func url() throws -> URL { try Fixture.decompressed(self) }

    // MARK: the catalogue

    /// Every fixture, in a stable order.
    public static let all: [Fixture] = {
        let mib: UInt64 = 1 << 20
        let kvmPartition = { (scheme: Partition.Scheme, number: Int, slice: String, offset: UInt64, grub: String?) in
            Partition(scheme: scheme, number: number, slice: slice, offset: offset, size: 64 * mib, grubPartition: grub)
        }
        func made(
            _ name: String, pool: String = "rpool", version: UInt64 = 5000, layout: Layout = .single,
            members: [String]? = nil, size: UInt64 = 64 * mib, partition: Partition? = nil, _ summary: String
        ) -> Fixture {
            Fixture(
                name: name, compressedName: name + ".xz", origin: .libzpool, poolName: pool, poolVersion: version,
                byteOrder: .little, layout: layout, members: members ?? [name], size: size, state: 1,
                validLabels: 4, partition: partition, summary: summary)
        }
        func shipped(
            _ name: String, compression: String, pool: String, version: UInt64, byteOrder: ByteOrder,
            layout: Layout = .single, members: [String]? = nil, size: UInt64 = 64 * mib, state: UInt64 = 1,
            validLabels: Int = 4, _ summary: String
        ) -> Fixture {
            Fixture(
                name: name, compressedName: name + "." + compression, origin: .zfsTestPackage, poolName: pool,
                poolVersion: version, byteOrder: byteOrder, layout: layout, members: members ?? [name], size: size,
                state: state, validLabels: validLabels, partition: nil, summary: summary)
        }
        let mirror = ["rpool-mirror-0.img", "rpool-mirror-1.img"]
        let raidz = ["tank-raidz-0.img", "tank-raidz-1.img", "tank-raidz-2.img"]
        let v2mirror = ["zfs-pool-v2mirror1.dat", "zfs-pool-v2mirror2.dat", "zfs-pool-v2mirror3.dat"]
        let v2raidz = ["zfs-pool-v2raidz1.dat", "zfs-pool-v2raidz2.dat", "zfs-pool-v2raidz3.dat"]
        let broken = ["zfs-broken-mirror1.dat", "zfs-broken-mirror2.dat"]
        return [
            made("rpool-kvm.img", "OmniOS-like root pool on a KVM virtio disk (path, phys_path, devid set)"),
            made("rpool-kvm-to-xen.img", "rpool-kvm.img after real ZFS set Xen path/phys_path: the golden 'after'"),
            made(mirror[0], layout: .mirror(width: 2), members: mirror, "2-way mirror root pool, side 0"),
            made(mirror[1], layout: .mirror(width: 2), members: mirror, "2-way mirror root pool, side 1"),
            made("rpool-v28.img", version: 28, "pool version 28, no feature flags, ashift 12"),
            made(raidz[0], pool: "tank", layout: .raidz(parity: 1, width: 3), members: raidz, "raidz1 data pool, member 0"),
            made(raidz[1], pool: "tank", layout: .raidz(parity: 1, width: 3), members: raidz, "raidz1 data pool, member 1"),
            made(raidz[2], pool: "tank", layout: .raidz(parity: 1, width: 3), members: raidz, "raidz1 data pool, member 2"),
            made("disk-gpt.img", size: 75_645_440, partition: kvmPartition(.gpt, 1, "s0", 131_072, "gpt1"),
                 "rpool-kvm.img in GPT p1 at LBA 256 (illumos zpool create)"),
            made("disk-gpt-linux.img", size: 76_562_944, partition: kvmPartition(.gpt, 1, "s0", 1_048_576, "gpt1"),
                 "rpool-kvm.img in GPT p1 at LBA 2048 (Linux)"),
            made("disk-gpt-esp.img", size: 344_080_896, partition: kvmPartition(.gpt, 2, "s1", 268_566_528, "gpt2"),
                 "rpool-kvm.img in GPT p2 after a 256 MiB ESP (zpool create -B)"),
            made("disk-vtoc.img", size: 99_751_936, partition: kvmPartition(.mbrVTOC, 1, "s0", 9_273_856, nil),
                 "rpool-kvm.img in VTOC slice 0 of an MBR 0xBF partition"),
            shipped("zfs-pool-v15.dat", compression: "bz2", pool: "v15-pool", version: 15, byteOrder: .big,
                    "SPARC-written single vdev, version 15"),
            shipped(v2mirror[0], compression: "xz", pool: "pool-v2mirror", version: 2, byteOrder: .big,
                    layout: .mirror(width: 3), members: v2mirror, "SPARC-written 3-way mirror, member 1"),
            shipped(v2mirror[1], compression: "xz", pool: "pool-v2mirror", version: 2, byteOrder: .big,
                    layout: .mirror(width: 3), members: v2mirror, "SPARC-written 3-way mirror, member 2"),
            shipped(v2mirror[2], compression: "xz", pool: "pool-v2mirror", version: 2, byteOrder: .big,
                    layout: .mirror(width: 3), members: v2mirror, "SPARC-written 3-way mirror, member 3"),
            shipped(v2raidz[0], compression: "bz2", pool: "pool-v2raidz", version: 2, byteOrder: .big,
                    layout: .raidz(parity: 1, width: 3), members: v2raidz, "SPARC-written raidz, member 1"),
            shipped(v2raidz[1], compression: "bz2", pool: "pool-v2raidz", version: 2, byteOrder: .big,
                    layout: .raidz(parity: 1, width: 3), members: v2raidz, "SPARC-written raidz, member 2"),
            shipped(v2raidz[2], compression: "bz2", pool: "pool-v2raidz", version: 2, byteOrder: .big,
                    layout: .raidz(parity: 1, width: 3), members: v2raidz, "SPARC-written raidz, member 3"),
            shipped(broken[0], compression: "bz2", pool: "zfs-broken-mirror", version: 2, byteOrder: .big,
                    layout: .mirror(width: 2), members: broken, size: 66_985_984, validLabels: 3,
                    "mirror half 120 KiB short of 64 MiB: no label where label 2 belongs"),
            shipped(broken[1], compression: "bz2", pool: "zfs-broken-mirror", version: 2, byteOrder: .big,
                    layout: .mirror(width: 2), members: broken, "the intact other half of zfs-broken-mirror"),
            shipped("cryptv0.dat", compression: "xz", pool: "cryptv0", version: 5000, byteOrder: .little,
                    size: 100 * mib, "pool with an encrypted dataset, written by the Linux module"),
            shipped("unclean_export.dat", compression: "bz2", pool: "unclean_export", version: 5000,
                    byteOrder: .little, state: 0, "pool left active (state 0) by the Linux module"),
            shipped("zfs-pool-v999.dat", compression: "bz2", pool: "v999-pool", version: 999, byteOrder: .little,
                    "pool version 999 (unsupported: ZFS picks its newest uberblock, then refuses the import); its ring also holds older version-8 uberblocks"),
        ]
    }()

    /// The fixture whose raw image is called `name`.
    public static func named(_ name: String) throws -> Fixture {
        guard let fixture = all.first(where: { $0.name == name }) else { throw FixtureError.unknown(name) }
        return fixture
    }

    /// All images of the pool that `name` belongs to, in `vdev_tree.children` order.
    public static func pool(of name: String) throws -> [Fixture] {
        try named(name).members.map(named)
    }

    // MARK: decompressed copies

    /// A decompressed, sparse copy of fixture `name` in `Fixtures/.cache/`, made on first use and shared by every
    /// test and test process afterwards. **Do not write to it**: take `scratchCopy` for that.
    public static func image(_ name: String) throws -> URL { try named(name).url() }

    /// Fresh writable, sparse copies of the named fixtures in a new temporary directory (removed when the test
    /// process exits). The copies keep their fixture names.
    public static func scratchCopy(_ names: String...) throws -> Scratch { try scratchCopy(names) }

    public static func scratchCopy(_ names: [String]) throws -> Scratch {
        let directory = try TemporaryDirectory(prefix: "zlabel-scratch")
        var urls: [URL] = []
        for name in names {
            let source = try image(name)
            let target = directory.file(name)
            try sparseCopy(from: source, to: target)
            urls.append(target)
        }
        return Scratch(directory: directory, urls: urls)
    }

    /// Writable copies of fixtures, in their own temporary directory.
    public struct Scratch: Sendable {
        public let directory: TemporaryDirectory
        public let urls: [URL]
        /// The first copy.
        public var url: URL { urls[0] }
    }

    /// Copies `source` to `target` keeping holes (`cp --sparse=always`): a 64 MiB pool takes well under 1 MiB.
    public static func sparseCopy(from source: URL, to target: URL) throws {
        let result = try Run.run("cp", ["--sparse=always", "--", source.path, target.path])
        guard result.succeeded else { throw FixtureError.tool(result) }
        // cp keeps the cache file's mode; scratch copies must be writable.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: target.path)
    }

    private static let cacheLock = Mutex<Void>(())

    static func decompressed(_ fixture: Fixture) throws -> URL {
        let source = fixture.compressedURL
        let target = Repository.fixtureCache.appending(path: fixture.name, directoryHint: .notDirectory)
        guard FileManager.default.fileExists(atPath: source.path) else { throw FixtureError.missing(source) }
        // One decompression at a time in this process; other processes race safely through the rename below.
        return try cacheLock.withLock { _ in
            if isFresh(target, comparedTo: source, size: fixture.size) { return target }
            try FileManager.default.createDirectory(at: Repository.fixtureCache, withIntermediateDirectories: true)
            let temporary = Repository.fixtureCache.appending(
                path: ".\(fixture.name).\(getpid()).\(UUID().uuidString)", directoryHint: .notDirectory)
            defer { try? FileManager.default.removeItem(at: temporary) }
            let tool = fixture.compressedName.hasSuffix(".bz2") ? "bzip2" : "xz"
            let result = try Run.run(
                "sh", ["-c", "\(tool) -dc -- \"$1\" | cp --sparse=always /dev/stdin \"$2\"", "sh", source.path, temporary.path])
            guard result.succeeded else { throw FixtureError.tool(result) }
            let size = (try FileManager.default.attributesOfItem(atPath: temporary.path)[.size] as? NSNumber)?.uint64Value
            guard size == fixture.size else {
                throw FixtureError.wrongSize(fixture.name, expected: fixture.size, actual: size ?? 0)
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: temporary.path)
            // rename(2) replaces atomically: a concurrent reader sees the old file or the complete new one.
            guard rename(temporary.path, target.path) == 0 else {
                throw FixtureError.cannotRename(temporary, target, errno: errno)
            }
            return target
        }
    }

    /// A cached copy is fresh when it has the right size and is newer than the compressed file.
    private static func isFresh(_ target: URL, comparedTo source: URL, size: UInt64) -> Bool {
        let fm = FileManager.default
        guard let t = try? fm.attributesOfItem(atPath: target.path),
            let s = try? fm.attributesOfItem(atPath: source.path),
            let tDate = t[.modificationDate] as? Date, let sDate = s[.modificationDate] as? Date,
            (t[.size] as? NSNumber)?.uint64Value == size
        else { return false }
        return tDate >= sDate
    }
}

public enum FixtureError: Error, CustomStringConvertible {
    case unknown(String)
    case missing(URL)
    case tool(ProcessResult)
    case wrongSize(String, expected: UInt64, actual: UInt64)
    case cannotRename(URL, URL, errno: Int32)

    public var description: String {
        switch self {
        case .unknown(let name):
            "no fixture named \(name) (see Fixture.all and Fixtures/README.md)"
        case .missing(let url):
            "fixture file \(url.path) is missing"
        case .tool(let result):
            "decompressing or copying a fixture failed:\n\(result)"
        case .wrongSize(let name, let expected, let actual):
            "fixture \(name) decompressed to \(actual) bytes, expected \(expected)"
        case .cannotRename(let from, let to, let code):
            "cannot rename \(from.path) to \(to.path): errno \(code)"
        }
    }
}

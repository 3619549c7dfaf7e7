// The local block manifest of a completed snapshot: which blocks of the volume hold non-zero data, and the
// XXH3-64 of each. An incremental upload (--parent-snapshot) compares the image's blocks with the parent's
// manifest and sends only blocks that differ; a block that the parent has and the image no longer has (a
// hole or all zeros now) is sent as zeros, because the new snapshot inherits the parent's blocks.
//
// File STATE/manifests/SNAPSHOT.xxh3:
//   0..<8    magic "ZLBMAN01"
//   8..<12   length L of the JSON header, UInt32 little-endian
//   12..<12+L JSON header (snapshot id, volume size, block size, encrypted, parent)
//   then     16-byte entries sorted by block index: index UInt64 LE, XXH3-64 UInt64 LE

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a manifest says about its snapshot.
public struct BlockManifestHeader: Codable, Sendable, Equatable {
    /// The snapshot.
    public var snapshotID: String
    /// Volume size.
    public var volumeSizeGiB: Int
    /// Block size (524288).
    public var blockSize: Int
    /// Encrypted snapshots cannot be parents of an incremental upload here.
    public var encrypted: Bool
    /// The snapshot's own parent, if any.
    public var parentSnapshotID: String?

    /// Creates a header.
    public init(snapshotID: String, volumeSizeGiB: Int, blockSize: Int, encrypted: Bool, parentSnapshotID: String? = nil) {
        self.snapshotID = snapshotID
        self.volumeSizeGiB = volumeSizeGiB
        self.blockSize = blockSize
        self.encrypted = encrypted
        self.parentSnapshotID = parentSnapshotID
    }
}

/// A loaded manifest: header and sorted entries.
public struct BlockManifest: Sendable, Equatable {
    static let magic = Array("ZLBMAN01".utf8)
    /// The header.
    public var header: BlockManifestHeader
    /// Block indexes, ascending.
    public var indexes: [UInt64]
    /// XXH3 of each block, parallel to ``indexes``.
    public var hashes: [UInt64]

    /// The manifest path of a snapshot.
    public static func path(directory: String, snapshotID: String) -> String {
        "\(directory)/\(snapshotID).xxh3"
    }

    /// Creates a manifest in memory.
    public init(header: BlockManifestHeader, entries: [(index: UInt64, xxh3: UInt64)]) {
        self.header = header
        let sorted = entries.sorted { $0.index < $1.index }
        indexes = sorted.map(\.index)
        hashes = sorted.map(\.xxh3)
    }

    /// Loads a manifest file.
    ///
    /// - Throws: ``ManifestError`` naming the path and byte offset of anything malformed.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ManifestError(path: path, offset: 0, "cannot read it")
        }
        let b = [UInt8](data)
        guard b.count >= 12, Array(b[0..<8]) == Self.magic else {
            throw ManifestError(path: path, offset: 0, "not a zlabel block manifest (bad magic)")
        }
        let len = Int(UInt32(b[8]) | UInt32(b[9]) << 8 | UInt32(b[10]) << 16 | UInt32(b[11]) << 24)
        guard len <= b.count - 12 else { throw ManifestError(path: path, offset: 8, "header length \(len) past the end") }
        do {
            header = try JSONDecoder().decode(BlockManifestHeader.self, from: Data(b[12..<(12 + len)]))
        } catch {
            throw ManifestError(path: path, offset: 12, "bad JSON header: \(error)")
        }
        let start = 12 + len
        guard (b.count - start) % 16 == 0 else {
            throw ManifestError(path: path, offset: UInt64(start), "entry area is not a multiple of 16 bytes")
        }
        let n = (b.count - start) / 16
        var idx = [UInt64]()
        var hs = [UInt64]()
        idx.reserveCapacity(n)
        hs.reserveCapacity(n)
        let vol = header.volumeSizeGiB
        let maxBlocks = UInt64(max(vol, 0)) * 2048
        try b.withUnsafeBytes { raw in
            for k in 0..<n {
                let o = start + k * 16
                let i = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self))
                let h = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self))
                if let last = idx.last, i <= last {
                    throw ManifestError(path: path, offset: UInt64(o), "block indexes not ascending")
                }
                if i >= maxBlocks {
                    throw ManifestError(path: path, offset: UInt64(o), "block \(i) outside a \(vol) GiB volume")
                }
                idx.append(i)
                hs.append(h)
            }
        }
        indexes = idx
        hashes = hs
    }

    /// The XXH3 of block `index`, or nil when the snapshot does not hold that block.
    public func hash(of index: UInt64) -> UInt64? {
        var lo = 0
        var hi = indexes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if indexes[mid] < index { lo = mid + 1 } else { hi = mid }
        }
        return lo < indexes.count && indexes[lo] == index ? hashes[lo] : nil
    }

    /// Block ranges `[i, i+1)` of every entry, for merging into the upload's candidates.
    public var blockRanges: [Range<UInt64>] { indexes.map { $0..<($0 + 1) } }

    /// Writes the manifest atomically (temporary file, then rename).
    public func write(to path: String) throws {
        var out = Self.magic
        let json = try JSONEncoder().encode(header)
        let len = UInt32(json.count)
        out += [UInt8(len & 0xFF), UInt8(len >> 8 & 0xFF), UInt8(len >> 16 & 0xFF), UInt8(len >> 24)]
        out += json
        out.reserveCapacity(out.count + indexes.count * 16)
        for (i, h) in zip(indexes, hashes) {
            withUnsafeBytes(of: i.littleEndian) { out += $0 }
            withUnsafeBytes(of: h.littleEndian) { out += $0 }
        }
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let tmp = path + ".tmp"
        try Data(out).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else {
            throw ManifestError(path: path, offset: 0, "cannot rename \(tmp) into place (errno \(errno))")
        }
    }

    /// The manifest of a child snapshot: the parent's entries, overridden by the blocks just written (a zero
    /// block removes the entry).
    public static func merged(parent: BlockManifest?, header: BlockManifestHeader, journal: UploadJournal) throws
        -> BlockManifest
    {
        var out = BlockManifest(header: header, entries: [])
        var p = 0
        let pIdx = parent?.indexes ?? []
        let pHash = parent?.hashes ?? []
        func flushParent(below limit: UInt64) {
            while p < pIdx.count, pIdx[p] < limit {
                out.indexes.append(pIdx[p])
                out.hashes.append(pHash[p])
                p += 1
            }
        }
        try journal.forEachSlot { s in
            flushParent(below: s.index)
            if p < pIdx.count, pIdx[p] == s.index { p += 1 }
            if !s.isZero {
                out.indexes.append(s.index)
                out.hashes.append(s.xxh3)
            }
        }
        flushParent(below: .max)
        return out
    }
}

/// A manifest file that cannot be used.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// Byte offset of the problem.
    public var offset: UInt64
    /// What is wrong.
    public var message: String
    /// Creates an error.
    public init(path: String, offset: UInt64, _ message: String) {
        self.path = path
        self.offset = offset
        self.message = message
    }
    public var description: String { "\(path): at byte \(offset): \(message)" }
}

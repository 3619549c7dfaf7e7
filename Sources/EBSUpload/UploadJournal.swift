// The resume journal of one upload: a small JSON header and a slot file.
//
//   STATE/uploads/KEY.json    header: image identity, overlay and options digests, client token, and the
//                             `UploadState` (starting → uploading → completing → completed → done, with the
//                             snapshot id from uploading on). Replaced atomically and durably (write a
//                             temporary name, fsync, rename, fsync the directory): the client token is on disk before StartSnapshot is sent, so a rerun
//                             after any kill sends the same token, and StartSnapshot also tags the snapshot
//                             with it so that the rerun can find it. It outlives the upload: in
//                             state `done` it records which snapshot holds this image, so that running the same
//                             command again (say, after a kill between the upload's end and its output) names
//                             that snapshot instead of uploading a second copy.
//   STATE/uploads/KEY.blocks  one 64-byte slot per volume block, written with pwrite as each
//                             PutSnapshotBlock succeeds:
//                               0       state: 0 = not written, 1 = data block, 2 = zero block (sent to clear a
//                                       parent's block)
//                               8..<16  XXH3-64 of the block, little-endian
//                               16..<48 raw SHA-256 of the block
//                             The file is sparse: untouched slots cost no space, and reading skips them with
//                             SEEK_DATA. Its mtime is the time of the last successful block. It is deleted
//                             once the block manifest is written and the header says `done`.
//
// A slot is written only after AWS acknowledged the block, so a kill at any point loses at most the blocks in
// flight, which the rerun sends again (PutSnapshotBlock is idempotent for identical data). The aggregate
// checksum and ChangedBlocksCount of CompleteSnapshot are computed from the slots, in block order.

public import Foundation
import Crypto

#if canImport(Glibc)
    import Glibc
#endif

/// Where an upload stands, as its journal records it.
///
/// On disk it is spread over the header's `state`, `snapshotID`, `snapshotStartedAt` and `changedBlocksCount`
/// keys (the format of version 1); a combination no run writes (say `uploading` without a snapshot) does not
/// decode.
public enum UploadState: Sendable, Equatable {
    /// The client token is on disk; StartSnapshot has not answered (it may have been sent).
    case starting
    /// The snapshot takes blocks; `startedAt` is the Unix time StartSnapshot returned.
    case uploading(snapshotID: String, startedAt: Double?)
    /// CompleteSnapshot may have been sent.
    case completing(snapshotID: String, startedAt: Double?)
    /// CompleteSnapshot succeeded; the manifest is not written yet.
    case completed(snapshotID: String, startedAt: Double?)
    /// The manifest is written and the slots are gone; the header records which snapshot holds the image.
    case done(snapshotID: String, startedAt: Double?, changedBlocksCount: Int)

    /// The name stored in the header's `state` key.
    public var name: String {
        switch self {
        case .starting: "starting"
        case .uploading: "uploading"
        case .completing: "completing"
        case .completed: "completed"
        case .done: "done"
        }
    }

    /// The snapshot, once StartSnapshot returned.
    public var snapshotID: String? {
        switch self {
        case .starting: nil
        case .uploading(let id, _), .completing(let id, _), .completed(let id, _), .done(let id, _, _): id
        }
    }

    /// Unix time StartSnapshot returned.
    public var snapshotStartedAt: Double? {
        switch self {
        case .starting: nil
        case .uploading(_, let t), .completing(_, let t), .completed(_, let t), .done(_, let t, _): t
        }
    }

    /// The same snapshot in `completing`, from `uploading` (or already `completing`); nil from other states.
    public var completing: UploadState? {
        switch self {
        case .uploading(let id, let t), .completing(let id, let t): .completing(snapshotID: id, startedAt: t)
        default: nil
        }
    }

    /// The same snapshot in `completed`; nil before a snapshot exists or once done.
    public var completed: UploadState? {
        switch self {
        case .uploading(let id, let t), .completing(let id, let t), .completed(let id, let t):
            .completed(snapshotID: id, startedAt: t)
        default: nil
        }
    }
}

/// The header of a journal.
public struct UploadJournalHeader: Codable, Sendable, Equatable {
    /// Format version (1).
    public var version: Int = 1
    /// The image path as given.
    public var imagePath: String
    /// The image's identity when the upload started.
    public var image: FileIdentity
    /// ``ByteRangeOverlay/digest`` of the overlay.
    public var overlayDigest: String
    /// Digest of the snapshot options (size, description, tags, parent, encryption, timeout).
    public var optionsDigest: String
    /// Volume size.
    public var volumeSizeGiB: Int
    /// Region and EBS endpoint.
    public var region: String
    /// The EBS endpoint URL.
    public var endpoint: String
    /// StartSnapshot's idempotency token.
    public var clientToken: String
    /// StartSnapshot's Timeout in minutes.
    public var timeoutMinutes: Int
    /// Where the upload stands.
    public var state: UploadState

    /// The snapshot, once StartSnapshot returned.
    public var snapshotID: String? { state.snapshotID }

    /// Creates a header.
    public init(
        imagePath: String, image: FileIdentity, overlayDigest: String, optionsDigest: String, volumeSizeGiB: Int,
        region: String, endpoint: String, clientToken: String, timeoutMinutes: Int, state: UploadState
    ) {
        self.imagePath = imagePath
        self.image = image
        self.overlayDigest = overlayDigest
        self.optionsDigest = optionsDigest
        self.volumeSizeGiB = volumeSizeGiB
        self.region = region
        self.endpoint = endpoint
        self.clientToken = clientToken
        self.timeoutMinutes = timeoutMinutes
        self.state = state
    }

    enum CodingKeys: String, CodingKey {
        case version, imagePath, image, overlayDigest, optionsDigest, volumeSizeGiB, region, endpoint, clientToken
        case timeoutMinutes, state, snapshotID, snapshotStartedAt, changedBlocksCount
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        imagePath = try c.decode(String.self, forKey: .imagePath)
        image = try c.decode(FileIdentity.self, forKey: .image)
        overlayDigest = try c.decode(String.self, forKey: .overlayDigest)
        optionsDigest = try c.decode(String.self, forKey: .optionsDigest)
        volumeSizeGiB = try c.decode(Int.self, forKey: .volumeSizeGiB)
        region = try c.decode(String.self, forKey: .region)
        endpoint = try c.decode(String.self, forKey: .endpoint)
        clientToken = try c.decode(String.self, forKey: .clientToken)
        timeoutMinutes = try c.decode(Int.self, forKey: .timeoutMinutes)
        let name = try c.decode(String.self, forKey: .state)
        let id = try c.decodeIfPresent(String.self, forKey: .snapshotID)
        let startedAt = try c.decodeIfPresent(Double.self, forKey: .snapshotStartedAt)
        let changed = try c.decodeIfPresent(Int.self, forKey: .changedBlocksCount)
        func snapshot() throws -> String {
            guard let id else {
                throw DecodingError.dataCorruptedError(
                    forKey: .snapshotID, in: c, debugDescription: "state \(name) without a snapshot id")
            }
            return id
        }
        switch name {
        case "starting": state = .starting
        case "uploading": state = .uploading(snapshotID: try snapshot(), startedAt: startedAt)
        case "completing": state = .completing(snapshotID: try snapshot(), startedAt: startedAt)
        case "completed": state = .completed(snapshotID: try snapshot(), startedAt: startedAt)
        case "done": state = .done(snapshotID: try snapshot(), startedAt: startedAt, changedBlocksCount: changed ?? 0)
        default:
            throw DecodingError.dataCorruptedError(forKey: .state, in: c, debugDescription: "unknown state \(name)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(imagePath, forKey: .imagePath)
        try c.encode(image, forKey: .image)
        try c.encode(overlayDigest, forKey: .overlayDigest)
        try c.encode(optionsDigest, forKey: .optionsDigest)
        try c.encode(volumeSizeGiB, forKey: .volumeSizeGiB)
        try c.encode(region, forKey: .region)
        try c.encode(endpoint, forKey: .endpoint)
        try c.encode(clientToken, forKey: .clientToken)
        try c.encode(timeoutMinutes, forKey: .timeoutMinutes)
        try c.encode(state.name, forKey: .state)
        try c.encodeIfPresent(state.snapshotID, forKey: .snapshotID)
        try c.encodeIfPresent(state.snapshotStartedAt, forKey: .snapshotStartedAt)
        if case .done(_, _, let changed) = state { try c.encode(changed, forKey: .changedBlocksCount) }
    }
}

/// One written block, as stored in a slot.
public struct JournalSlot: Sendable, Equatable {
    /// The block index.
    public var index: UInt64
    /// True for a zero block (written to clear a parent's block).
    public var isZero: Bool
    /// XXH3-64.
    public var xxh3: UInt64
    /// Raw SHA-256.
    public var sha256: [UInt8]
}

/// A journal on disk. Used by one task at a time (the upload driver's coordinator).
public final class UploadJournal: @unchecked Sendable {
    /// The slot size.
    static let slotSize = 64
    /// The header path.
    public let headerPath: String
    /// The slot file path.
    public let slotsPath: String
    /// The header as last saved.
    public private(set) var header: UploadJournalHeader
    private var fd: Int32
    private var done: [UInt64]

    /// The journal key: a digest of the image's real path, the region and the EBS endpoint.
    public static func key(imagePath: String, region: String, endpoint: String) -> String {
        var abs = URL(fileURLWithPath: imagePath).standardizedFileURL.path
        if let r = realpath(imagePath, nil) {
            abs = String(cString: r)
            free(r)
        }
        let d = SHA256.hash(data: Array("\(abs)\n\(region)\n\(endpoint)".utf8))
        return d.prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// The header of an existing journal, or nil when there is none or it cannot be read.
    public static func existingHeader(directory: String, key: String) -> UploadJournalHeader? {
        let path = "\(directory)/\(key).json"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(UploadJournalHeader.self, from: data)
    }

    /// Opens an existing journal (for resuming) or creates a new one (replacing any old one).
    ///
    /// - Parameters:
    ///   - directory: the `uploads` directory; created when missing.
    ///   - key: ``key(imagePath:region:endpoint:)``.
    ///   - header: the header for a new journal; ignored when `resume` is true.
    ///   - resume: keep the existing slots and header.
    ///   - blockCount: volume blocks (the slot file's length).
    public init(directory: String, key: String, header: UploadJournalHeader, resume: Bool, blockCount: UInt64) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        headerPath = "\(directory)/\(key).json"
        slotsPath = "\(directory)/\(key).blocks"
        if resume, let h = Self.existingHeader(directory: directory, key: key) {
            self.header = h
        } else {
            self.header = header
            unlink(slotsPath)
        }
        fd = open(slotsPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ImageError(path: slotsPath, "cannot open the journal", errno: errno) }
        let words = Int((blockCount + 63) / 64)
        done = [UInt64](repeating: 0, count: words)
        if ftruncate(fd, off_t(blockCount) * off_t(Self.slotSize)) != 0 {
            throw ImageError(path: slotsPath, "cannot size the journal", errno: errno)
        }
        try forEachSlot { s in
            if s.index < blockCount { self.done[Int(s.index / 64)] |= 1 << (s.index % 64) }
        }
        try save()
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Updates and saves the header.
    public func update(_ change: (inout UploadJournalHeader) -> Void) throws {
        change(&header)
        try save()
    }

    private func save() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(header)
        let tmp = headerPath + ".tmp"
        try Self.writeDurably(data, to: tmp)
        guard rename(tmp, headerPath) == 0 else {
            throw ImageError(path: headerPath, "cannot replace the journal header", errno: errno)
        }
        try Self.syncDirectory(of: headerPath)
    }

    /// Writes `data` to a new file and fsyncs it, so that the header (and the client token in it) is on disk
    /// before the request it prepares is sent.
    static func writeDurably(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ImageError(path: path, "cannot create the journal header", errno: errno) }
        defer { close(fd) }
        try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var done = 0
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImageError(path: path, "cannot write the journal header", errno: errno)
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw ImageError(path: path, "cannot fsync the journal header", errno: errno) }
    }

    /// Fsyncs the directory holding `path`, so that a rename into it is on disk.
    static func syncDirectory(of path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError(path: dir, "cannot open the journal directory", errno: errno) }
        defer { close(fd) }
        // Some file systems cannot fsync a directory (EINVAL); the rename is then as durable as they make it.
        if fsync(fd) != 0 && errno != EINVAL {
            throw ImageError(path: dir, "cannot fsync the journal directory", errno: errno)
        }
    }

    /// Whether block `index` was acknowledged by AWS.
    public func isDone(_ index: UInt64) -> Bool {
        let w = Int(index / 64)
        return w < done.count && done[w] & (1 << (index % 64)) != 0
    }

    /// Number of blocks recorded.
    public var recordedCount: Int { done.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Records an acknowledged block.
    public func record(index: UInt64, sha256: [UInt8], xxh3: UInt64, isZero: Bool) throws {
        precondition(sha256.count == 32)
        var slot = [UInt8](repeating: 0, count: Self.slotSize)
        slot[0] = isZero ? 2 : 1
        withUnsafeBytes(of: xxh3.littleEndian) { slot.replaceSubrange(8..<16, with: $0) }
        slot.replaceSubrange(16..<48, with: sha256)
        let off = off_t(index) * off_t(Self.slotSize)
        let n = slot.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off) }
        guard n == Self.slotSize else {
            throw ImageError(path: slotsPath, "cannot write the journal", errno: errno)
        }
        done[Int(index / 64)] |= 1 << (index % 64)
    }

    /// Calls `body` for every recorded slot, in block order, skipping the file's holes.
    public func forEachSlot(_ body: (JournalSlot) throws -> Void) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageError(path: slotsPath, "cannot stat", errno: errno) }
        let size = off_t(st.st_size)
        let chunk = 1 << 20
        var buf = [UInt8](repeating: 0, count: chunk)
        var pos: off_t = 0
        while pos < size {
            let d = lseek(fd, pos, 3)  // SEEK_DATA
            if d < 0 {
                if errno == ENXIO { break }
                if errno != EINVAL { throw ImageError(path: slotsPath, "SEEK_DATA failed", errno: errno) }
            } else {
                pos = d - d % off_t(Self.slotSize)
            }
            let want = Int(min(off_t(chunk), size - pos))
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, pos) }
            guard n > 0 else { break }
            let whole = n - n % Self.slotSize
            try buf.withUnsafeBytes { b in
                var i = 0
                while i < whole {
                    let state = b[i]
                    if state == 1 || state == 2 {
                        let index = UInt64(pos + off_t(i)) / UInt64(Self.slotSize)
                        let x = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
                        try body(
                            JournalSlot(index: index, isZero: state == 2, xxh3: x, sha256: Array(b[(i + 16)..<(i + 48)])))
                    }
                    i += Self.slotSize
                }
            }
            pos += off_t(max(whole, Self.slotSize))
        }
    }

    /// ChangedBlocksCount and the LINEAR aggregate checksum of every recorded block.
    public func completion() throws -> (count: Int, aggregate: String) {
        var aggregate = LinearAggregate()
        try forEachSlot { s in aggregate.add(s.sha256) }
        return (aggregate.count, aggregate.base64)
    }

    /// The time of the last recorded block (the slot file's mtime).
    public var lastActivity: Date {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return Date() }
        return Date(timeIntervalSince1970: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
    }

    /// Marks the upload done: the header stays, in state `done` with `changedBlocksCount`, and the slot file goes.
    /// Called once the block manifest holds what the slots held.
    public func finish(changedBlocksCount: Int) throws {
        guard let id = header.snapshotID else {
            throw ImageError(path: headerPath, "the journal has no snapshot to finish")
        }
        try update {
            $0.state = .done(snapshotID: id, startedAt: $0.state.snapshotStartedAt, changedBlocksCount: changedBlocksCount)
        }
        close(fd)
        fd = -1
        unlink(slotsPath)
    }

    /// Deletes both files.
    public func remove() {
        close(fd)
        fd = -1
        unlink(slotsPath)
        unlink(headerPath)
    }
}

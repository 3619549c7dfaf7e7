#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import NVList
import ZFSChecksum
import ZFSLabel

/// A saved copy of the four labels of one or more leaf vdevs, taken before an edit, with what identifies
/// each image: its path and size, where the leaf sits, a SHA-256 digest of every label before the edit, and
/// what identifies every label as the edit leaves it, so a restore can refuse an image that has changed since.
///
/// File format: the magic line, one line of JSON (the header), then for each entry in header order its four
/// labels, 256 KiB each, as they were; the header's `before` holds the SHA-256 (hex) of each saved label.
/// - version 1 (`zlabel label backup v1`): `after` holds the SHA-256 of each label as the edit leaves it.
/// - version 2 (`zlabel label backup v2`, written since): `afterConfigChecksums` holds the embedded checksum
///   (the last 32 bytes of the config area, hex) of each label as the edit leaves it; outside its config area
///   the label is the saved one. The edit's labels are identified as surely (the embedded checksum is a
///   SHA-256 of the config area and its offset, verified at restore) without hashing another megabyte.
/// Both versions are read.
public struct LabelBackup: Sendable {
    /// The saved labels of one image.
    public struct Entry: Sendable {
        /// The image's path when the backup was taken.
        public var path: String
        /// The image's size in bytes when the backup was taken.
        public var imageSize: UInt64
        /// Where the leaf sits in the image.
        public var region: VdevRegion
        /// The four whole labels before the edit.
        public var before: [[UInt8]]
        /// SHA-256 (hex) of each label before the edit.
        public var beforeDigests: [String]
        /// Version 1: SHA-256 (hex) of each label as the edit plans to leave it; empty in version 2.
        public var afterDigests: [String]
        /// Version 2: the embedded checksum (hex of the config area's last 32 bytes) of each label as the edit
        /// plans to leave it, whose bytes outside the config area are those of `before`; `nil` in version 1.
        public var afterConfigChecksums: [String]?

        /// Creates a version 1 entry from the labels before and (as planned) after an edit; the digests are
        /// computed here.
        public init(path: String, imageSize: UInt64, region: VdevRegion, before: [[UInt8]], after: [[UInt8]]) {
            self.path = path
            self.imageSize = imageSize
            self.region = region
            self.before = before
            self.beforeDigests = before.map(LabelBackup.digest)
            self.afterDigests = after.map(LabelBackup.digest)
        }

        /// Creates a version 2 entry from the labels before an edit and the config area the edit writes into
        /// each label (`nil` for a label it keeps): the digests of the labels before, and the embedded checksum
        /// each label carries after.
        public init(path: String, imageSize: UInt64, region: VdevRegion, before: [[UInt8]], newConfigAreas: [[UInt8]?]) {
            self.init(path: path, imageSize: imageSize, region: region, before: before, newConfigAreas: newConfigAreas,
                      beforeDigests: nil)
        }

        /// ``init(path:imageSize:region:before:newConfigAreas:)`` with the digests of `before` when the caller
        /// has them already (`LabelBackup.digest` of each label, in order); `nil` computes them here.
        package init(path: String, imageSize: UInt64, region: VdevRegion, before: [[UInt8]], newConfigAreas: [[UInt8]?],
                     beforeDigests: [String]?) {
            precondition(before.count == newConfigAreas.count, "one planned config area (or nil) per label")
            precondition(beforeDigests == nil || beforeDigests!.count == before.count, "one digest per label")
            self.path = path
            self.imageSize = imageSize
            self.region = region
            self.before = before
            self.beforeDigests = beforeDigests ?? before.map(LabelBackup.digest)
            self.afterDigests = []
            let end = LabelLayout.configOffset + LabelLayout.configSize
            self.afterConfigChecksums = zip(before, newConfigAreas).map { label, area in
                area.map { LabelBackup.hex($0.suffix(32)) } ?? LabelBackup.hex(label[(end - 32)..<end])
            }
        }

        init(path: String, imageSize: UInt64, region: VdevRegion, before: [[UInt8]], beforeDigests: [String],
             afterDigests: [String], afterConfigChecksums: [String]?) {
            self.path = path
            self.imageSize = imageSize
            self.region = region
            self.before = before
            self.beforeDigests = beforeDigests
            self.afterDigests = afterDigests
            self.afterConfigChecksums = afterConfigChecksums
        }

        /// Whether `label`, read at label `index` of the image, is that label as this entry's edit left it.
        /// `digest` is the label's SHA-256 (hex), which the caller has at hand.
        func holdsEdit(_ index: Int, _ label: [UInt8], digest: String) -> Bool {
            guard let checksums = afterConfigChecksums else { return digest == afterDigests[index] }
            let start = LabelLayout.configOffset, end = start + LabelLayout.configSize
            let saved = before[index]
            guard label.count == LabelLayout.labelSize, saved.count == LabelLayout.labelSize,
                  label[..<start].elementsEqual(saved[..<start]), label[end...].elementsEqual(saved[end...]),
                  LabelBackup.hex(label[(end - 32)..<end]) == checksums[index]
            else { return false }
            let offset = LabelLayout.labelOffset(index, vdevSize: region.size) + UInt64(start)
            return EmbeddedChecksum.verify(Array(label[start..<end]), offset: offset).isValid
        }

        /// Whether `labels` are the four labels as this entry's edit left them (`digests`: their SHA-256).
        func holdsEdit(_ labels: [[UInt8]], digests: [String]) -> Bool {
            labels.count == LabelLayout.labelCount && labels.indices.allSatisfy { holdsEdit($0, labels[$0], digest: digests[$0]) }
        }
    }
    /// The first line of a backup file of the version written now (2).
    public static let magicLine = "zlabel label backup v2"
    /// The first line of a version 1 backup file.
    public static let magicLineV1 = "zlabel label backup v1"
    /// One entry per image, in the order of the edit.
    public var entries: [Entry]

    /// Creates a backup of these entries.
    public init(entries: [Entry]) { self.entries = entries }

    /// Lower-case hex of `bytes`.
    static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func digest(_ bytes: [UInt8]) -> String {
        // The hex of the digest's bytes: its four words, each taken big-endian, written out in turn.
        let c = zfsSHA256(bytes)
        var out = [UInt8](repeating: 0, count: 64)
        let digits: StaticString = "0123456789abcdef"
        digits.withUTF8Buffer { d in
            for (w, word) in [c.words.0, c.words.1, c.words.2, c.words.3].enumerated() {
                for i in 0..<16 { out[w * 16 + i] = d[Int((word >> UInt64(60 - 4 * i)) & 0xF)] }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `seconds` since the epoch as ISO 8601 in UTC, `2026-12-05T11:58:50Z`: what `Date.ISO8601FormatStyle`
    /// prints by default, by arithmetic alone. The format style sets up calendars and time zones, and even
    /// `gmtime_r` reads the local time zone file first; both are a measurable part of a `set` process.
    package static func utcTimestamp(_ seconds: Int64) -> String {
        // The proleptic Gregorian date of a day number (days since 1970-01-01), in eras of 400 years
        // (146,097 days) that start on March 1, so that the leap day ends a year.
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let second = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 = March
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func digits(_ value: Int64, _ count: Int) -> String {
            let s = String(value)
            return String(repeating: "0", count: max(0, count - s.count)) + s
        }
        return digits(year, 4) + "-" + digits(month, 2) + "-" + digits(day, 2) + "T" + digits(second / 3_600, 2)
            + ":" + digits(second / 60 % 60, 2) + ":" + digits(second % 60, 2) + "Z"
    }

    /// Writes the backup to a new file and flushes it to stable storage; never overwrites a file. The file is of
    /// version 2 when every entry is (made with `Entry.init(path:imageSize:region:before:newConfigAreas:)`),
    /// else of version 1.
    public func write(to path: String) throws { try write(to: path, whileFlushing: {}) }

    /// ``write(to:)`` that runs `work` after the file's bytes are written and their write-back to the disk has
    /// started, but before waiting for them (`fsync`): the flush overlaps with `work`. When `work` throws, the
    /// new file is removed (nothing refers to it yet) and the error passes on; the file is flushed, and its
    /// directory too, only after `work` returned.
    public func write(to path: String, whileFlushing work: () throws -> Void) throws {
        let version2 = entries.allSatisfy { $0.afterConfigChecksums != nil }
        let header = JSONValue.object([
            ("created", .string(Self.utcTimestamp(Int64(time(nil))))),
            ("entries", .array(entries.map { e in
                .object([
                    ("path", .string(e.path)), ("imageSize", .uint(e.imageSize)),
                    ("regionOffset", .uint(e.region.offset)), ("regionSize", .uint(e.region.size)),
                    ("regionName", e.region.name.map(JSONValue.string) ?? .null),
                    ("before", .array(e.beforeDigests.map(JSONValue.string))),
                    version2 ? ("afterConfigChecksums", .array((e.afterConfigChecksums ?? []).map(JSONValue.string)))
                        : ("after", .array(e.afterDigests.map(JSONValue.string))),
                ])
            })),
        ])
        let head = Array(((version2 ? Self.magicLine : Self.magicLineV1) + "\n" + header.rendered() + "\n").utf8)
        // O_EXCL: an existing file (an earlier backup, say) is never replaced; FileManager.createFile would
        // replace it.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            throw ImageError(.open, path: path, errno: e, message: e == EEXIST
                ? "the backup file already exists; refusing to overwrite it"
                : "cannot create the backup file: \(ImageError.describe(errno: e))")
        }
        defer { close(fd) }
        // The header, then each label straight from its buffer (no megabyte-sized copy of them all is made: its
        // fresh pages cost more than the copy). File blocks that would hold only zeros are not written at all:
        // the file's length is set at the end, so they read back as zeros (holes) and cost neither the copy
        // into the page cache nor the disk writes of the flush. Most of a label is zeros (the padding, unused
        // uberblock slots, the config area past its nvlist).
        var failure = Self.writeSkippingZeroBlocks(fd, [head] + entries.flatMap(\.before))
        if failure == nil {
            #if os(Linux)
                // Starts the write-back of the dirty pages without waiting (and lets the page cache drop them once
                // written; nothing reads the backup again in this process).
                _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            #endif
            do { try work() } catch {
                unlink(path)
                throw error
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = ImageError.describe(errno: errno) }
        if let failure { throw ImageError(.write, path: path, message: "cannot write the backup: \(failure)") }
        // The file's bytes are on disk; its name is only once the directory holding it is flushed too. Without
        // this, a crash right after the label writes could leave the new labels and no backup file.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0, fsync(dfd) == 0 || errno == EINVAL else {
            let why = ImageError.describe(errno: errno)
            if dfd >= 0 { close(dfd) }
            throw ImageError(.write, path: directory, message: "cannot flush the directory holding the backup: \(why)")
        }
        close(dfd)
    }

    /// Reads a backup file.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageError(.open, path: path, message: "cannot read the backup file")
        }
        let bytes = [UInt8](data)
        func bad(_ why: String, _ at: Int) -> ImageError {
            ImageError(.read, path: path, offset: UInt64(at), message: "not a zlabel backup: \(why)")
        }
        guard let nl1 = bytes.firstIndex(of: 10),
              [Self.magicLine, Self.magicLineV1].contains(String(decoding: bytes[..<nl1], as: UTF8.self)) else {
            throw bad("the first line is not '\(Self.magicLine)' (or '\(Self.magicLineV1)')", 0)
        }
        let version2 = String(decoding: bytes[..<nl1], as: UTF8.self) == Self.magicLine
        struct Header: Decodable {
            struct Entry: Decodable {
                var path: String, imageSize: UInt64, regionOffset: UInt64, regionSize: UInt64
                var regionName: String?
                var before: [String], after: [String]?, afterConfigChecksums: [String]?
            }
            var entries: [Entry]
        }
        guard let nl2 = bytes[(nl1 + 1)...].firstIndex(of: 10),
              let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[(nl1 + 1)..<nl2]))
        else { throw bad("the header line is not valid JSON, or an entry is incomplete", nl1 + 1) }
        var entries: [Entry] = []
        var at = nl2 + 1
        for (i, e) in header.entries.enumerated() {
            let (p, size, off, rsize, before) = (e.path, e.imageSize, e.regionOffset, e.regionSize, e.before)
            let after = (version2 ? e.afterConfigChecksums : e.after) ?? []
            guard before.count == LabelLayout.labelCount, after.count == LabelLayout.labelCount
            else { throw bad("entry \(i) of the header is incomplete", nl1 + 1) }
            var labels: [[UInt8]] = []
            for j in 0..<LabelLayout.labelCount {
                guard at + LabelLayout.labelSize <= bytes.count else { throw bad("the file ends inside label \(j) of entry \(i)", at) }
                let label = Array(bytes[at..<(at + LabelLayout.labelSize)])
                guard Self.digest(label) == before[j] else { throw bad("label \(j) of entry \(i) does not match its recorded digest", at) }
                labels.append(label)
                at += LabelLayout.labelSize
            }
            entries.append(Entry(path: p, imageSize: size, region: VdevRegion(offset: off, size: rsize, name: e.regionName),
                                 before: labels, beforeDigests: before, afterDigests: version2 ? [] : after,
                                 afterConfigChecksums: version2 ? after : nil))
        }
        self.entries = entries
    }

    /// What a restore did.
    public enum RestoreOutcome: Sendable, Equatable {
        /// The labels were put back.
        case restored(labels: Int)
        /// The image already holds the original labels.
        case alreadyOriginal
    }

    /// Puts the saved labels of `entry` back into `image`, byte for byte, and reads them back.
    ///
    /// - Throws: `ImageError` when the image's size differs, or when any label holds something other than
    ///   what the edit wrote (the image changed since), in which case nothing is written.
    public static func restore(_ entry: Entry, into image: any ImageStorage) throws -> RestoreOutcome {
        guard image.size == entry.imageSize else {
            throw ImageError(.range, path: image.path, message: "is \(image.size) bytes but the backup was taken of \(entry.imageSize) bytes (\(entry.path)); refusing to restore")
        }
        let target = EditTarget(image: image, region: entry.region)
        let labels = try LabelWriter.readWholeLabels(target)
        let now = labels.map(digest)
        if now == entry.beforeDigests { return .alreadyOriginal }
        for i in 0..<LabelLayout.labelCount where now[i] != entry.beforeDigests[i] && !entry.holdsEdit(i, labels[i], digest: now[i]) {
            let offset = entry.region.offset + LabelLayout.labelOffset(i, vdevSize: entry.region.size)
            throw ImageError(.range, path: image.path, offset: offset, message: "label \(i) has changed since the backup's edit; refusing to restore")
        }
        var written = 0
        for phase in [[0, 2], [1, 3]] {
            for i in phase where now[i] != entry.beforeDigests[i] {
                try image.write(entry.before[i], at: entry.region.offset + LabelLayout.labelOffset(i, vdevSize: entry.region.size))
                written += 1
            }
            try image.synchronize()
        }
        guard try LabelWriter.readWholeLabels(target).map(digest) == entry.beforeDigests else {
            throw ImageError(.read, path: image.path, message: "the restored labels did not read back as saved")
        }
        return .restored(labels: written)
    }
}

extension LabelBackup {
    /// The other backups of the same series as `path`: `IMAGE.zlabel-backup`, then `-1`, `-2`… (as
    /// `LabelWriter.defaultBackupPath(for:)` names them), those that exist, `path` itself left out.
    public static func series(of path: String) -> [String] {
        var base = path
        if let dash = path.lastIndex(of: "-"), path[path.index(after: dash)...].allSatisfy(\.isNumber),
           path.index(after: dash) < path.endIndex, path[..<dash].hasSuffix(".zlabel-backup") {
            base = String(path[..<dash])
        }
        var out: [String] = []
        if FileManager.default.fileExists(atPath: base) { out.append(base) }
        var n = 1
        while n < 10_000, FileManager.default.fileExists(atPath: "\(base)-\(n)") {
            out.append("\(base)-\(n)")
            n += 1
        }
        return out.filter { $0 != path }
    }

    /// Among `candidates`, the backup whose edit left `image`'s labels exactly as they are now: the one to
    /// restore first when a restore from an older backup is refused because a later edit changed the labels.
    /// Unreadable candidates are skipped.
    public static func backup(thatWrote image: any ImageStorage, among candidates: [String]) -> String? {
        for candidate in candidates.reversed() {
            guard let backup = try? LabelBackup(contentsOf: candidate) else { continue }
            for entry in backup.entries where entry.imageSize == image.size {
                let target = EditTarget(image: image, region: entry.region)
                guard let labels = try? LabelWriter.readWholeLabels(target) else { continue }
                if entry.holdsEdit(labels, digests: labels.map(digest)) { return candidate }
            }
        }
        return nil
    }
}

extension LabelBackup {
    /// The size of the file blocks that ``writeSkippingZeroBlocks(_:_:)`` leaves unwritten when all zero.
    package static let sparseBlockSize = 4096

    /// Writes the concatenation of `buffers` to the new, empty file `fd` from offset 0, leaving out every
    /// ``sparseBlockSize``-aligned block of the file that would hold only zeros, then sets the file's length
    /// (`ftruncate`), so those blocks are holes that read as zeros. Returns the reason of a failure, or nil.
    package static func writeSkippingZeroBlocks(_ fd: Int32, _ buffers: [[UInt8]]) -> String? {
        var starts: [Int] = []
        var length = 0
        for b in buffers { starts.append(length); length += b.count }
        let block = sparseBlockSize
        // Whether the file block at `at` holds a non-zero byte, looking through the buffers it spans.
        func blockHasData(_ at: Int) -> Bool {
            let stop = min(at + block, length)
            for (i, b) in buffers.enumerated() where starts[i] < stop && starts[i] + b.count > at {
                let lo = max(at, starts[i]) - starts[i], hi = min(stop, starts[i] + b.count) - starts[i]
                if b.withUnsafeBytes({ !isAllZero(UnsafeRawBufferPointer(rebasing: $0[lo..<hi])) }) { return true }
            }
            return false
        }
        // Writes the file range `lo..<hi` from the buffers it spans.
        func writeRange(_ lo: Int, _ hi: Int) -> String? {
            for (i, b) in buffers.enumerated() where starts[i] < hi && starts[i] + b.count > lo {
                let from = max(lo, starts[i]) - starts[i], to = min(hi, starts[i] + b.count) - starts[i]
                let failure: String? = b.withUnsafeBytes { raw in
                    var done = from
                    while done < to {
                        let n = pwrite(fd, raw.baseAddress! + done, to - done, off_t(starts[i] + done))
                        if n < 0 {
                            if errno == EINTR { continue }
                            return ImageError.describe(errno: errno)
                        }
                        if n == 0 { return "nothing written" }
                        done += n
                    }
                    return nil
                }
                if let failure { return failure }
            }
            return nil
        }
        var runStart: Int?  // the start of the run of blocks with data being gathered
        var at = 0
        while at < length {
            if blockHasData(at) {
                if runStart == nil { runStart = at }
            } else if let start = runStart {
                if let failure = writeRange(start, at) { return failure }
                runStart = nil
            }
            at += block
        }
        if let start = runStart, let failure = writeRange(start, length) { return failure }
        while ftruncate(fd, off_t(length)) != 0 {
            if errno != EINTR { return ImageError.describe(errno: errno) }
        }
        return nil
    }
}

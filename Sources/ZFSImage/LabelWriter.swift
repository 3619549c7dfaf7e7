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
public import ZFSLabel
import ZFSChecksum

/// One leaf vdev to edit: an image opened for writing and where the leaf sits in it.
public struct EditTarget: Sendable {
    /// The image, opened for writing (read-only is enough to plan).
    public var image: any ImageStorage
    /// Where the leaf vdev sits in the image.
    public var region: VdevRegion

    /// Creates a target: the leaf in `region` of `image`.
    public init(image: any ImageStorage, region: VdevRegion) {
        self.image = image
        self.region = region
    }

    /// A name for messages: the path, and the partition when there is one.
    public var name: String { region.name.map { "\(image.path) (\($0))" } ?? image.path }
}

/// Why an edit stopped after it had started, and what state the images are in.
public struct LabelWriteError: Error, Sendable, CustomStringConvertible {
    /// A sentence saying what failed and which labels were written.
    public var message: String
    /// The backup holding the original label areas, to undo with `zlabel restore`.
    public var backup: String?
    public var description: String {
        message + (backup.map { "; the original labels are saved in \($0)" } ?? "")
    }
}

/// What an applied edit did.
public struct LabelWriteReport: Sendable {
    /// Where the original labels were saved.
    public var backup: String?
    /// Each write, in the order it was made: image name, label index, byte offset in the image.
    public var writes: [(image: String, label: Int, offset: UInt64)]
}

/// Plans and applies label edits on images, crash-safely.
///
/// The order follows `vdev_config_sync`: L0 and L2 of every member, flush, L1 and L3, flush. Each label
/// is self-validating (its checksum covers its own offset), so at any instant every label holds either the
/// old config or the new one, or fails its checksum and is ignored; a crash leaves at least one complete set
/// that ZFS imports. Only the 112 KiB config areas are written; uberblocks, the boot area and data are never
/// touched.
public enum LabelWriter {
    /// Reads the labels of every target and plans the edit.
    ///
    /// - Parameters:
    ///   - targets: every member image to edit, with the region holding its vdev.
    ///   - edit: what to change.
    ///   - force: edit even when the pool's state is ACTIVE (imported somewhere).
    /// - Throws: `ImageError` when a read fails, `LabelEditError` when the edit is refused.
    public static func plan(_ targets: [EditTarget], edit: LeafEdit, force: Bool = false) throws -> LabelEditPlan {
        var raw: [[[UInt8]]] = []
        for t in targets { raw.append(try readWholeLabels(t)) }
        // A backup of these labels records their SHA-256 digests (a megabyte hashed per image): computed on a
        // second thread while this one decodes the labels and plans, unless nothing will be written.
        let writable = targets.allSatisfy { $0.image.isWritable }
        let digests = writable ? BackgroundWork { [raw] in raw.map { $0.map(LabelBackup.digest) } } : nil
        var members: [(name: String, labels: VdevLabels)] = []
        for (t, labels) in zip(targets, raw) {
            members.append((t.name, VdevLabels(labelBytes: labels.map { Optional($0) }, vdevSize: t.region.size)))
        }
        var plan = try LabelEditPlan(members: members, edit: edit, force: force)
        plan.sourceLabels = raw
        // Only for these very labels (arrays sharing storage compare equal at once).
        if let digests { plan.sourceLabelDigests = { [raw] labels in labels == raw ? digests.value : nil } }
        return plan
    }

    /// Applies a plan: checks that the images still hold what was planned from, saves the original label
    /// areas to `backupPath` (flushed before the first write), writes in the crash-safe order, flushes, reads
    /// every label back and checks it.
    ///
    /// - Parameters:
    ///   - plan: from ``plan(_:edit:force:)`` over the same targets, in the same order.
    ///   - targets: the targets the plan was made from, in the same order.
    ///   - backupPath: where to save the original labels; `nil` skips the backup (tests only).
    public static func apply(_ plan: LabelEditPlan, to targets: [EditTarget], backupPath: String?) throws -> LabelWriteReport {
        precondition(plan.members.count == targets.count, "one target per planned member")
        for t in targets where !t.image.isWritable {
            throw ImageError(.open, path: t.image.path, message: "is open read-only")
        }
        // The images must still hold what the plan was made from: the same bytes when the plan kept them,
        // else planning again must give the same writes.
        var originals: [[[UInt8]]] = []
        if let source = plan.sourceLabels {
            precondition(source.count == targets.count, "one set of source labels per target")
            for (i, t) in targets.enumerated() where try !holdsLabels(t, source[i]) {
                throw LabelWriteError(message: "\(t.name) changed since the edit was planned; nothing was written")
            }
            originals = source
        } else {
            for t in targets { originals.append(try readWholeLabels(t)) }
            let reread = zip(targets, originals).map { t, labels in
                (name: t.name, labels: VdevLabels(labelBytes: labels.map { Optional($0) }, vdevSize: t.region.size))
            }
            let again = try LabelEditPlan(members: reread, edit: plan.edit, force: true)
            for (a, b) in zip(again.members, plan.members)
            where a.after != b.after || zip(a.labels, b.labels).contains(where: { $0.newConfigArea != $1.newConfigArea }) {
                throw LabelWriteError(message: "\(a.name) changed since the edit was planned; nothing was written")
            }
        }
        guard plan.writesAnything else { return LabelWriteReport(backup: nil, writes: []) }
        // Run while the backup's bytes go to disk (before its flush, and before any label write), or alone
        // without a backup.
        func checkPlannedAreas() throws {
            // What is about to be written must be what the plan says: each area a valid label of the edited config.
            // A member's areas hold the same packed config and differ only in their checksums (each covers its own
            // offset), so the first is decoded in full and each other one is compared with it up to its checksum
            // and has its checksum verified: the same verdict as decoding each, without three more copies.
            for (t, member) in zip(targets, plan.members) {
                var decoded: [UInt8]?  // an area of this member found to be a valid label of the edited config
                var decodedOrder = ByteOrder.little
                // The checksums of the areas equal to `decoded` up to them: one hash of that shared body, finished
                // with each area's own offset (what verifying each would compute).
                let sharing = member.labels.filter { $0.newConfigArea != nil }
                var expected: [Int: Checksum256] = [:]
                for change in member.labels {
                    guard let area = change.newConfigArea else { continue }
                    var problem: String?
                    if let decoded, area.count == decoded.count,
                       area.withUnsafeBytes({ a in decoded.withUnsafeBytes { d in memcmp(a.baseAddress!, d.baseAddress!, a.count - 32) == 0 } }) {
                        if expected.isEmpty {
                            let sums = decoded.withUnsafeBytes {
                                EmbeddedChecksum.compute($0, offsets: sharing.map(\.configOffset), order: decodedOrder)
                            }
                            for (c, sum) in zip(sharing, sums) { expected[c.index] = sum }
                        }
                        if EmbeddedChecksum.storedChecksum(of: area, order: decodedOrder) != expected[change.index] {
                            problem = Label.Status.checksumMismatch.rawValue
                        }
                    } else {
                        let label = Label(configArea: area, index: change.index, offset: change.configOffset - UInt64(LabelLayout.configOffset))
                        if label.status != .valid {
                            problem = label.status.rawValue
                        } else if label.config != member.after {
                            problem = "it holds another config"
                        } else {
                            decoded = area
                            decodedOrder = label.byteOrder ?? .little
                            expected = [:]
                        }
                    }
                    if let problem {
                        let at = String(t.region.offset + change.configOffset, radix: 16)
                        throw LabelWriteError(message: "\(t.name): the planned label \(change.index) is not a valid label of the edited config (\(problem); its config area would go at byte 0x\(at)); nothing was written")
                    }
                }
            }
        }

        var backup: String?
        if let backupPath {
            // The digests computed while planning are those of `originals` (the plan's labels, found unchanged
            // on disk above); without them they are computed here.
            let digests = plan.sourceLabels != nil ? plan.sourceLabelDigests?(originals) : nil
            let file = LabelBackup(entries: zip(targets, zip(plan.members, originals)).enumerated().map { i, tmo in
                let (t, (member, before)) = tmo
                return LabelBackup.Entry(path: t.image.path, imageSize: t.image.size, region: t.region, before: before,
                                         newConfigAreas: before.indices.map { j in member.labels.first { $0.index == j }?.newConfigArea },
                                         beforeDigests: digests?[i])
            })
            try file.write(to: backupPath, whileFlushing: checkPlannedAreas)
            backup = backupPath
        } else {
            try checkPlannedAreas()
        }

        var writes: [(String, Int, UInt64)] = []
        do {
            for phase in [[0, 2], [1, 3]] {
                for (m, (t, member)) in zip(targets, plan.members).enumerated() {
                    for change in member.labels where phase.contains(change.index) {
                        guard let area = change.newConfigArea else { continue }
                        let offset = t.region.offset + change.configOffset
                        // The image holds `originals` (checked above), so only the blocks of the area that change
                        // are written: the result is byte for byte the planned area, and the flush has a few blocks
                        // to write instead of 112 KiB, most of it zeros over holes it would have to allocate.
                        let old = originals[m][change.index]
                        let start = LabelLayout.configOffset
                        for run in changedRuns(area, old.count == LabelLayout.labelSize ? old[start..<(start + area.count)] : nil) {
                            try t.image.write(Array(area[run]), at: offset + UInt64(run.lowerBound))
                        }
                        writes.append((t.name, change.index, offset))
                    }
                }
                for t in targets { try t.image.synchronize() }
            }
        } catch {
            throw LabelWriteError(message: "writing stopped after \(writes.count) label writes: \(error)", backup: backup)
        }

        // Read back every written config area: it must hold exactly the bytes written, which were checked
        // above to be a valid label of the edited config. One buffer serves every area.
        var back = [UInt8](repeating: 0, count: LabelLayout.configSize)
        for (t, member) in zip(targets, plan.members) {
            for change in member.labels {
                guard let area = change.newConfigArea else { continue }
                let offset = t.region.offset + change.configOffset
                if back.count != area.count { back = [UInt8](repeating: 0, count: area.count) }
                let failure: ImageError? = back.withUnsafeMutableBytes { buffer in
                    do throws(ImageError) {
                        try t.image.read(into: buffer, at: offset)
                        return nil
                    } catch { return error }
                }
                if let failure {
                    throw LabelWriteError(message: "\(t.name): label \(change.index) could not be read back: \(failure)", backup: backup)
                }
                if !sameBytes([back], [area]) {
                    let at = zip(back, area).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(back.count, area.count)
                    throw LabelWriteError(message: "\(t.name): label \(change.index) did not read back as written (first difference at byte 0x\(String(offset + UInt64(at), radix: 16)))", backup: backup)
                }
            }
        }
        return LabelWriteReport(backup: backup, writes: writes)
    }

    /// The size of the blocks ``changedRuns(_:_:)`` compares.
    static let changeBlockSize = 4096

    /// The ranges of `new` to write over `old` (the bytes there now, as long as `new`) so that it holds `new`:
    /// runs of ``changeBlockSize``-byte blocks (counted from the start of `new`) that differ, merged. With no
    /// `old`, or one of another length, the whole of `new`.
    static func changedRuns(_ new: [UInt8], _ old: ArraySlice<UInt8>?) -> [Range<Int>] {
        guard let old, old.count == new.count else { return new.isEmpty ? [] : [0..<new.count] }
        var runs: [Range<Int>] = []
        new.withUnsafeBytes { n in
            old.withUnsafeBytes { o in
                var at = 0
                while at < n.count {
                    let end = min(at + changeBlockSize, n.count)
                    if memcmp(n.baseAddress! + at, o.baseAddress! + at, end - at) != 0 {
                        if let last = runs.last, last.upperBound == at { runs[runs.count - 1] = last.lowerBound..<end } else { runs.append(at..<end) }
                    }
                    at = end
                }
            }
        }
        return runs
    }

    /// Whether two lists of buffers hold the same bytes (memcmp, not element by element).
    static func sameBytes(_ a: [[UInt8]], _ b: [[UInt8]]) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) {
            guard x.count == y.count else { return false }
            let equal = x.isEmpty || x.withUnsafeBytes { px in y.withUnsafeBytes { py in memcmp(px.baseAddress!, py.baseAddress!, x.count) == 0 } }
            if !equal { return false }
        }
        return true
    }

    /// Whether the four labels of `t` hold exactly `labels`. Read 64 KiB at a time: a buffer that size comes
    /// from the heap and is reused, where each label-sized one would be a fresh mapping whose pages all fault.
    static func holdsLabels(_ t: EditTarget, _ labels: [[UInt8]]) throws(ImageError) -> Bool {
        try t.image.validate(t.region)
        guard labels.count == LabelLayout.labelCount else { return false }
        let chunk = 64 << 10
        var now = [UInt8](repeating: 0, count: chunk)
        for i in 0..<LabelLayout.labelCount {
            guard labels[i].count == LabelLayout.labelSize else { return false }
            let start = t.region.offset + LabelLayout.labelOffset(i, vdevSize: t.region.size)
            for at in stride(from: 0, to: LabelLayout.labelSize, by: chunk) {
                let count = min(chunk, LabelLayout.labelSize - at)
                let failure: ImageError? = now.withUnsafeMutableBytes { buffer in
                    do throws(ImageError) {
                        try t.image.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]), at: start + UInt64(at))
                        return nil
                    } catch { return error }
                }
                if let failure { throw failure }
                let same = now.withUnsafeBytes { n in
                    labels[i].withUnsafeBytes { l in memcmp(n.baseAddress!, l.baseAddress! + at, count) == 0 }
                }
                if !same { return false }
            }
        }
        return true
    }

    static func readWholeLabels(_ t: EditTarget) throws(ImageError) -> [[UInt8]] {
        try t.image.validate(t.region)
        var out: [[UInt8]] = []
        for i in 0..<LabelLayout.labelCount {
            out.append(try t.image.read(at: t.region.offset + LabelLayout.labelOffset(i, vdevSize: t.region.size), count: LabelLayout.labelSize))
        }
        return out
    }

    /// A backup path next to the image that does not exist yet: `IMAGE.zlabel-backup`, then `-1`, `-2`…
    public static func defaultBackupPath(for image: String) -> String {
        let base = image + ".zlabel-backup"
        if !FileManager.default.fileExists(atPath: base) { return base }
        var n = 1
        while FileManager.default.fileExists(atPath: "\(base)-\(n)") { n += 1 }
        return "\(base)-\(n)"
    }
}

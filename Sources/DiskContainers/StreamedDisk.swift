// A compressed raw image (zstd, xz, gzip) as a random-access virtual disk, over the one sequential decoder such
// a file allows. Nothing is decompressed to disk; memory is bounded by a chunk cache of a fixed size.

import Synchronization

/// A zstd-, xz- or gzip-compressed raw image presented as a ``VirtualDisk``.
///
/// Such a file has no random access: its bytes come from one decoder, front to back. A read at or ahead of the
/// decoder decodes forward to it; a read behind it starts the decoder again from the file's first byte (a
/// *pass*). The uploader reads the disk front to back, so its reads cost one pass; the label side reads the
/// start and the end of a partition and then a few metadata blocks, which a cache keeps cheap:
///
/// - Opening takes the size from the file's headers when they record it (zstd frames, xz indexes), decoding
///   nothing. Otherwise (gzip) it measures the image in one pass: its size, the data map (which 512 KiB blocks
///   are not all zeros, for ``dataExtents()``), and it leaves the image's last chunks in the cache, where a
///   whole disk's end labels and backup GPT are.
/// - Every chunk a read returns, and every chunk decoded within `lookbehind` bytes before a read, is kept in a
///   least-recently-used cache of `cacheBytes` bytes of data; the image's first 4 MiB (partition tables, a
///   whole disk's first labels) stay cached besides. All-zero chunks are kept as a mark, without bytes.
///
/// Reads from several threads are served one at a time. ``passes`` counts the decoder's starts.
public final class StreamedDisk: VirtualDisk {
    /// Bytes per cache chunk.
    public static let chunkSize = 64 * 1024
    /// Bytes per data-map granule: the EBS block size, the unit the uploader skips.
    public static let mapGranule: UInt64 = 512 * 1024
    /// The largest image accepted: 64 TiB, the largest EBS volume. A bigger one is refused while it is measured.
    public static let maximumSize: UInt64 = 64 << 40

    public let compression: StreamCompression
    public let virtualSize: UInt64
    public var format: ContainerFormat { .compressed(compression) }

    let reader: any ContainerReader
    /// Bit `i` set: granule `i` holds a non-zero byte; nil when the image was not measured (its size came from
    /// its headers), and then all of it may hold data.
    let dataMap: [UInt64]?
    let lookbehind: UInt64
    private let state: Mutex<State>

    /// What the measuring pass learns; kept per file so that a second open of the same file skips it.
    public struct Measurement: Sendable {
        public var size: UInt64
        var dataMap: [UInt64]?
    }

    private static let measured = Mutex<[String: Measurement]>([:])

    /// Opens `reader`'s compressed bytes. The default look-behind, 12 MiB, covers a whole disk's end labels
    /// when its backup GPT is read first: they sit before the 8 MiB reserved partition ZFS puts at the end. The size comes from the file's own headers when they record it (zstd
    /// frame content sizes, xz indexes: ``declaredSize(_:compression:)``), and nothing is decoded yet; otherwise
    /// (gzip, or `useDeclaredSize` false) the image is measured in one pass, unless `measurementKey` names a
    /// file this process has measured already (the caller's identity of the file: inode, size and time).
    ///
    /// - Throws: ``ContainerError`` when the stream is malformed, ends inside a frame, or decompresses to more
    ///   than ``maximumSize``.
    public init(
        _ reader: any ContainerReader, compression: StreamCompression, measurementKey: String? = nil,
        useDeclaredSize: Bool = true, cacheBytes: Int = 16 << 20, lookbehind: Int = 12 << 20
    ) throws(ContainerError) {
        self.reader = reader
        self.compression = compression
        self.lookbehind = UInt64(max(lookbehind, 0))
        var cache = ChunkCache(capacity: max(cacheBytes, Self.chunkSize))
        let stream = try CompressedRawStream(reader, compression: compression)
        let known = measurementKey.flatMap { key in Self.measured.withLock { $0[key] } }
        var decoded = false
        if let known {
            virtualSize = known.size
            dataMap = known.dataMap
        } else if useDeclaredSize, let declared = Self.declaredSize(reader, compression: compression) {
            guard declared <= Self.maximumSize else {
                throw ContainerError(
                    .unsupported, "\(compression) stream", at: 0,
                    "the image's headers declare \(declared) bytes, more than \(Self.maximumSize >> 40) TiB, the largest EBS volume")
            }
            virtualSize = declared
            dataMap = nil
        } else {
            let m = try Self.measure(stream, into: &cache)
            virtualSize = m.size
            dataMap = m.dataMap
            decoded = true
            if let measurementKey { Self.measured.withLock { $0[measurementKey] = m } }
        }
        state = Mutex(State(stream: stream, nextChunk: decoded ? .max : 0, cache: cache, passes: 1))
    }

    /// Whether the image was measured (and ``dataExtents()`` is its non-zero blocks) rather than sized from its
    /// headers (and all of it is reported as data; the uploader then skips the all-zero blocks it reads).
    public var isMeasured: Bool { dataMap != nil }

    /// How many times the decoder has started, the measuring pass included.
    public var passes: Int { state.withLock { $0.passes } }

    public func dataExtents() throws(ContainerError) -> [Range<UInt64>] {
        guard let dataMap else { return virtualSize == 0 ? [] : [0..<virtualSize] }
        var extents: [Range<UInt64>] = []
        for (w, word) in dataMap.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 {
                let start = UInt64(w * 64 + bit) * Self.mapGranule
                appendExtent(&extents, start..<min(start + Self.mapGranule, virtualSize))
            }
        }
        return extents
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError) {
        try checkVirtualRange(offset, buffer.count)
        let chunk = UInt64(Self.chunkSize)
        let keepFrom = offset >= lookbehind ? (offset - lookbehind) / chunk : 0
        try state.withLock { (s) throws(ContainerError) in
            var done = 0
            while done < buffer.count {
                let position = offset + UInt64(done)
                let index = position / chunk
                let within = Int(position % chunk)
                let n = min(Self.chunkSize - within, buffer.count - done)
                let out = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
                switch try chunkBytes(index, keepFrom: keepFrom, &s) {
                case .some(let bytes):
                    bytes.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[within..<(within + n)])) }
                case .none:
                    out.initializeMemory(as: UInt8.self, repeating: 0)
                }
                done += n
            }
        }
    }

    // MARK: the decoder and its cache

    struct State: ~Copyable {
        var stream: CompressedRawStream
        /// The chunk the decoder delivers next; `.max` after the measuring pass, which ended at the end.
        var nextChunk: UInt64
        var cache: ChunkCache
        var passes: Int
    }

    /// The bytes of chunk `index` (nil: all zeros), from the cache or by decoding to it. Chunks decoded on the
    /// way from index `keepFrom` on are cached.
    private func chunkBytes(_ index: UInt64, keepFrom: UInt64, _ s: inout State) throws(ContainerError) -> [UInt8]? {
        if let hit = s.cache.get(index) { return hit }
        if s.nextChunk > index {
            s.stream = try CompressedRawStream(reader, compression: compression)
            s.nextChunk = 0
            s.passes += 1
        }
        var scratch = [UInt8](repeating: 0, count: Self.chunkSize)
        while true {
            let current = s.nextChunk
            let start = current * UInt64(Self.chunkSize)
            let expected = Int(min(UInt64(Self.chunkSize), virtualSize - start))
            let stream = s.stream
            let n = try scratch.withMutableBytes { (b) throws(ContainerError) in
                try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<expected]))
            }
            guard n == expected else {
                throw ContainerError(
                    .truncated, "\(compression) stream", at: stream.inputPosition,
                    "the image ends at byte \(stream.position), before the \(virtualSize) bytes it had when it was "
                        + "opened: the file changed while it was read")
            }
            s.nextChunk += 1
            if start + UInt64(expected) == virtualSize {
                // The last chunk: the stream must end here, as its headers or the measuring pass said.
                var probe: UInt8 = 0
                let more = try withUnsafeMutableBytes(of: &probe) { (b) throws(ContainerError) in try stream.read(into: b) }
                guard more == 0 else {
                    throw ContainerError(
                        .malformed, "\(compression) stream", at: stream.inputPosition,
                        "the image goes on past the \(virtualSize) bytes its headers declare")
                }
            }
            // A chunk neither asked for nor kept is only decoded past (the uploader's holes).
            guard current >= keepFrom || current == index || current < ChunkCache.headChunks else { continue }
            let zero = scratch.withUnsafeBytes { isAllZero(UnsafeRawBufferPointer(rebasing: $0[0..<expected])) }
            let bytes: [UInt8]? = zero ? nil : Array(scratch[0..<expected])
            s.cache.put(current, bytes)
            if current == index { return bytes }
        }
    }

    /// The measuring pass: size, data map, and the last chunks left in `cache`.
    private static func measure(_ stream: CompressedRawStream, into cache: inout ChunkCache) throws(ContainerError) -> Measurement {
        var map: [UInt64] = []
        var scratch = [UInt8](repeating: 0, count: chunkSize)
        let perGranule = UInt64(mapGranule) / UInt64(chunkSize)
        var index: UInt64 = 0
        while true {
            let n = try scratch.withMutableBytes { (b) throws(ContainerError) in try stream.read(into: b) }
            if n == 0 { break }
            guard stream.position <= maximumSize else {
                throw ContainerError(
                    .unsupported, "\(stream.compression) stream", at: stream.inputPosition,
                    "the image decompresses to more than \(maximumSize >> 40) TiB, the largest EBS volume")
            }
            let zero = scratch.withUnsafeBytes { isAllZero(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if !zero {
                let granule = index / perGranule
                let word = Int(granule / 64)
                while map.count <= word { map.append(0) }
                map[word] |= 1 << (granule % 64)
            }
            cache.put(index, zero ? nil : Array(scratch[0..<n]))
            index += 1
            if n < chunkSize { break }
        }
        return Measurement(size: stream.position, dataMap: map)
    }
}

/// A least-recently-used cache of decoded chunks: at most `capacity` bytes of data, and a bounded number of
/// all-zero marks. Eviction drops the oldest quarter at once, so that a pass that puts every chunk stays cheap.
struct ChunkCache {
    /// The chunks of the image's first 4 MiB, where partition tables, boot blocks and a whole disk's first
    /// labels are: kept from the first pass on and never evicted, so that reading a disk's end first (as
    /// partition detection does) does not cost a pass to come back to its start.
    static let headChunks = UInt64(4 << 20) / UInt64(StreamedDisk.chunkSize)
    private var head: [UInt64: [UInt8]?] = [:]
    private var entries: [UInt64: (bytes: [UInt8]?, tick: UInt64)] = [:]
    private var tick: UInt64 = 0
    private var dataBytes = 0
    let capacity: Int
    let maxEntries: Int

    init(capacity: Int) {
        self.capacity = capacity
        maxEntries = max(capacity / StreamedDisk.chunkSize * 4, 16)
    }

    /// nil: not cached; `.some(nil)`: an all-zero chunk.
    mutating func get(_ index: UInt64) -> [UInt8]?? {
        if index < Self.headChunks { return head[index] }
        guard let e = entries[index] else { return nil }
        tick += 1
        entries[index]!.tick = tick
        return .some(e.bytes)
    }

    mutating func put(_ index: UInt64, _ bytes: [UInt8]?) {
        if index < Self.headChunks {
            head[index] = .some(bytes)
            return
        }
        tick += 1
        if let old = entries.updateValue((bytes, tick), forKey: index) { dataBytes -= old.bytes?.count ?? 0 }
        dataBytes += bytes?.count ?? 0
        guard dataBytes > capacity || entries.count > maxEntries else { return }
        for (key, value) in entries.sorted(by: { $0.value.tick < $1.value.tick }) {
            guard dataBytes > capacity * 3 / 4 || entries.count > maxEntries * 3 / 4 else { break }
            entries[key] = nil
            dataBytes -= value.bytes?.count ?? 0
        }
    }
}

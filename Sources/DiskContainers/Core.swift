// The seam between the container parsers and the system, the error type, and the byte helpers.

/// Positional, read-only access to the bytes of a container file (or of a VMDK flat extent).
///
/// This module never opens a file: the caller adapts its own reader. Both readers of the project fit in a few
/// lines: the EC2 side's `ImageSource` already has this exact shape (`size` and `read(into:at:)`), and
/// `ZFSImage.ImageStorage` adapts by copying its `read(at:count:)` into the buffer.
public protocol ContainerReader: Sendable {
    /// Size of the file in bytes.
    var size: UInt64 { get }
    /// Fills all of `buffer` from `offset`, or throws. Callers only ask for ranges inside `size`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
}

/// A container file held in memory: for tests, fuzzing and small files.
public struct MemoryReader: ContainerReader {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: UInt64 { UInt64(bytes.count) }
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !overflow, end <= size else {
            throw ContainerError(.truncated, "memory", at: offset, "read of \(buffer.count) bytes past the end")
        }
        bytes.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[Int(offset)..<Int(end)]))
        }
    }
}

/// What a container parser refuses or cannot read: the structure, the byte offset in the container file (or,
/// for a compressed stream, in the compressed input), and a sentence. The caller adds the file name
/// (``describing(file:)``).
public struct ContainerError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A structure or data runs past the end of the file, or a stream ends early.
        case truncated
        /// A field holds an impossible value (bad magic, checksum, alignment, an offset past the end).
        case malformed
        /// Two structures claim the same bytes: a table pointing into the header or into another table.
        case loop
        /// Valid, but not something this module reads: backing files, encryption, an unknown subformat.
        case unsupported
        /// The underlying reader failed.
        case io
    }

    public var kind: Kind
    /// The structure being read, e.g. `qcow2 L2 table`.
    public var structure: String
    /// Byte offset of that structure (or of the bad field) in the container file, when known.
    public var offset: UInt64?
    public var message: String

    public init(_ kind: Kind, _ structure: String, at offset: UInt64?, _ message: String) {
        self.kind = kind
        self.structure = structure
        self.offset = offset
        self.message = message
    }

    public var description: String {
        var s = structure
        if let offset { s += " at byte \(offset) (0x\(String(offset, radix: 16)))" }
        return s + ": " + message
    }

    /// The message with the container file's name in front, as the user sees it.
    public func describing(file: String) -> String { "\(file): \(description)" }
}

/// A disk image presented through its container: a virtual size, its virtual bytes, and where data may be.
public protocol VirtualDisk: Sendable {
    /// The container, for messages and `inspect`.
    var format: ContainerFormat { get }
    /// Size of the virtual disk in bytes.
    var virtualSize: UInt64 { get }
    /// Fills `buffer` with virtual bytes from `offset`; the range must lie inside ``virtualSize``.
    /// Unallocated parts read as zeros.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(ContainerError)
    /// Sorted, disjoint, non-adjacent ranges of virtual bytes that may be non-zero; everything else is zero.
    func dataExtents() throws(ContainerError) -> [Range<UInt64>]
}

extension VirtualDisk {
    /// Reads `count` virtual bytes at `offset`.
    public func read(at offset: UInt64, count: Int) throws(ContainerError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(count, 0))
        var failure: ContainerError?
        out.withUnsafeMutableBytes { buffer in
            do throws(ContainerError) { try read(into: buffer, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    /// Checks a virtual read request.
    func checkVirtualRange(_ offset: UInt64, _ count: Int) throws(ContainerError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= virtualSize else {
            throw ContainerError(
                .malformed, "\(format) virtual disk", at: nil,
                "a read of \(count) bytes at virtual byte \(offset) passes the end (\(virtualSize) bytes)")
        }
    }
}

// MARK: reading the container file

extension ContainerReader {
    /// Reads `count` bytes of `structure` at `offset`, refusing a range past the end of the file.
    func bytes(_ structure: String, at offset: UInt64, count: Int) throws(ContainerError) -> [UInt8] {
        // Checked before allocating, so that a huge length from the file costs nothing.
        try checkInside(structure, at: offset, count: UInt64(count))
        var out = [UInt8](repeating: 0, count: count)
        try out.withMutableBytes { (buffer) throws(ContainerError) in
            try fill(buffer, structure, at: offset)
        }
        return out
    }

    /// Fills `buffer` with the bytes of `structure` at `offset`, refusing a range past the end of the file.
    func fill(_ buffer: UnsafeMutableRawBufferPointer, _ structure: String, at offset: UInt64) throws(ContainerError) {
        try checkInside(structure, at: offset, count: UInt64(buffer.count))
        do { try read(into: buffer, at: offset) } catch let error as ContainerError { throw error } catch {
            throw ContainerError(.io, structure, at: offset, "read of \(buffer.count) bytes failed: \(error)")
        }
    }

    /// Throws `.truncated` unless `count` bytes at `offset` lie inside the file.
    func checkInside(_ structure: String, at offset: UInt64, count: UInt64) throws(ContainerError) {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= size else {
            throw ContainerError(
                .truncated, structure, at: offset,
                "\(count) bytes here run past the end of the file (\(size) bytes)")
        }
    }
}

// MARK: fixed-layout fields

/// Big- and little-endian fields of a structure already read whole; indexes are the structure's own layout.
struct Fields {
    let b: [UInt8]
    init(_ b: [UInt8]) { self.b = b }
    func u8(_ i: Int) -> UInt8 { b[i] }
    func be16(_ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
    func be32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(b[i + $1]) } }
    func be64(_ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[i + $1]) } }
    func le16(_ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    func le32(_ i: Int) -> UInt32 { (0..<4).reversed().reduce(0) { $0 << 8 | UInt32(b[i + $1]) } }
    func le64(_ i: Int) -> UInt64 { (0..<8).reversed().reduce(0) { $0 << 8 | UInt64(b[i + $1]) } }
    func ascii(_ i: Int, _ n: Int) -> String { String(decoding: b[i..<(i + n)], as: UTF8.self) }
}

/// `a * b` or nil on overflow.
@inline(__always) func mul(_ a: UInt64, _ b: UInt64) -> UInt64? {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    return o ? nil : r
}

/// `a + b` or nil on overflow.
@inline(__always) func add(_ a: UInt64, _ b: UInt64) -> UInt64? {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? nil : r
}

/// Ceiling division; `b` > 0.
@inline(__always) func ceilDiv(_ a: UInt64, _ b: UInt64) -> UInt64 { a / b + (a % b == 0 ? 0 : 1) }

/// Appends `range` to sorted extents, merging with the last one when they touch.
func appendExtent(_ extents: inout [Range<UInt64>], _ range: Range<UInt64>) {
    guard !range.isEmpty else { return }
    if let last = extents.last, last.upperBound >= range.lowerBound {
        extents[extents.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
    } else {
        extents.append(range)
    }
}

/// True when `a` and `b` share a byte.
@inline(__always) func overlaps(_ a: Range<UInt64>, _ b: Range<UInt64>) -> Bool {
    a.lowerBound < b.upperBound && b.lowerBound < a.upperBound
}

/// Runs `body`, passing a ``ContainerError`` through and wrapping anything else (for closures of the standard
/// library that rethrow untyped errors).
func typed<T>(_ body: () throws -> T) throws(ContainerError) -> T {
    do { return try body() } catch let e as ContainerError { throw e } catch {
        throw ContainerError(.io, "reader", at: nil, "\(error)")
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeMutableBytes` for a body with typed throws.
    mutating func withMutableBytes<T>(
        _ body: (UnsafeMutableRawBufferPointer) throws(ContainerError) -> T
    ) throws(ContainerError) -> T {
        var failure: ContainerError?
        let result: T? = withUnsafeMutableBytes { b in
            do throws(ContainerError) { return try body(b) } catch {
                failure = error
                return nil
            }
        }
        if let failure { throw failure }
        return result!
    }
}

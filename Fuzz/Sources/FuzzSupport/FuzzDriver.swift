// The glue between libFuzzer and a Swift test function.
//
// libFuzzer normally supplies `main` and calls `LLVMFuzzerTestOneInput`, but SwiftPM renames an executable's
// entry point and the fuzzer's `main` then never runs. So each target's `main.swift` calls `fuzzMain`, which
// hands libFuzzer's own command line to `LLVMFuzzerRunDriver` together with the test function.

import CFuzzDriver
public import NVList

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A test function as libFuzzer calls it: the input's address and length; the return value must be 0.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer on the process's command line with `callback` as the test function, and exits with
/// libFuzzer's status (0 when the run ended without a finding).
public func fuzzMain(_ callback: FuzzCallback) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// Copies libFuzzer's input into an array: the libraries under test take `[UInt8]`.
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
    guard let data, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: count))
}

/// Stops the process with `message` when an invariant does not hold, so that libFuzzer records the input
/// as a crash. Malformed input must never get here: this is for properties every *accepted* input keeps.
public func fuzzRequire(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fuzzFail(message()) }
}

/// Reports a broken invariant and traps.
public func fuzzFail(_ message: String) -> Never {
    var line = "fuzz invariant broken: " + message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    fatalError(message)
}

/// A little-endian reader over the front of a fuzz input, for harnesses that take a few control fields
/// before the payload. Reads past the end return zero, so every input is usable.
public struct FuzzReader {
    public let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - position }

    public mutating func u8() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }

    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }

    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    /// Up to `count` bytes, fewer when the input ends.
    public mutating func take(_ count: Int) -> ArraySlice<UInt8> {
        let n = max(0, min(count, remaining))
        defer { position += n }
        return bytes[position..<(position + n)]
    }
}

/// Bytes that libnvpair counts in a list's sizes but never writes: one count word for every empty array of
/// a type that has one (`NVList.decode`'s `byteCount` and `encodedSize` include them, as `nvlist_size`
/// does, so a stream may be that much shorter than its size).
public func unwrittenBytes(_ list: NVList) -> Int {
    list.pairs.reduce(0) { sum, pair in
        switch pair.value {
        case .nvlist(let l): sum + unwrittenBytes(l)
        case .nvlistArray(let a): sum + a.reduce(0) { $0 + unwrittenBytes($1) }
        case .int8Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .uint8Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .int16Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .uint16Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .int32Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .uint32Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .int64Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .uint64Array(let a): sum + (a.isEmpty ? 4 : 0)
        case .booleanArray(let a): sum + (a.isEmpty ? 4 : 0)
        default: sum
        }
    }
}

/// The value of a libnvpair string: the exact bytes, which need not be UTF-8.
///
/// libnvpair's strings are C strings: any bytes but NUL. ZFS copies a hostname, a pool comment or a device
/// path into a label as the writing system's bytes, so a label written by another OS (or under another
/// locale) can hold bytes that are not valid UTF-8. `NVString` keeps those bytes exactly, so a decoded list
/// re-encodes to the identical stream, and offers a `String` view:
///
/// - ``string`` is the exact text when the bytes are valid UTF-8, and `nil` otherwise;
/// - ``description`` is always text: the string itself when it is valid UTF-8, otherwise the
///   ``escaped`` form, in which every byte outside a valid UTF-8 sequence is written `\xNN` (two lowercase
///   hex digits) and a backslash `\\`. ``init(escaped:)`` reads that form back.
///
/// Equality and hashing compare bytes, not Unicode canonical equivalence: two spellings of "é" are different
/// strings to ZFS, and so they are here. A string literal makes an `NVString` of its UTF-8 bytes, so
/// `config.string("type") == "disk"` reads as before.
public struct NVString: Sendable, Hashable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible,
    CustomDebugStringConvertible
{
    private enum Storage: Sendable {
        /// Valid UTF-8 (the common case): the text, whose UTF-8 bytes are the value.
        case text(String)
        /// Bytes that are not valid UTF-8.
        case raw([UInt8])
    }

    private let storage: Storage

    /// A string of the UTF-8 bytes of `string`.
    ///
    /// - Precondition: `string` contains no NUL character, which no libnvpair string can hold. Use
    ///   ``init(validating:)`` for text from outside the program.
    public init(_ string: String) {
        precondition(!string.utf8.contains(0), "an nvlist string cannot contain NUL")
        storage = .text(string)
    }

    /// A string of the UTF-8 bytes of `string`, or `nil` when it contains NUL.
    public init?(validating string: String) {
        guard !string.utf8.contains(0) else { return nil }
        storage = .text(string)
    }

    /// A string of exactly these bytes, or `nil` when they contain a NUL byte.
    public init?(bytes: some Sequence<UInt8>) {
        let bytes = Array(bytes)
        guard !bytes.contains(0) else { return nil }
        if let text = String(validating: bytes, as: UTF8.self) {
            storage = .text(text)
        } else {
            storage = .raw(bytes)
        }
    }

    /// For the decoder, which has already checked for NUL and knows whether the bytes are ASCII.
    init(checkedBytes buffer: UnsafeBufferPointer<UInt8>, ascii: Bool) {
        if ascii {
            storage = .text(String(decoding: buffer, as: UTF8.self))
        } else if let text = String(validating: buffer, as: UTF8.self) {
            storage = .text(text)
        } else {
            storage = .raw(Array(buffer))
        }
    }

    public init(stringLiteral value: String) { self.init(value) }

    /// The exact bytes (no terminating NUL).
    public var bytes: [UInt8] {
        switch storage {
        case .text(let s): Array(s.utf8)
        case .raw(let b): b
        }
    }

    /// The number of bytes (`strlen`).
    public var byteCount: Int {
        switch storage {
        case .text(let s): s.utf8.count
        case .raw(let b): b.count
        }
    }

    /// The text, when the bytes are valid UTF-8; `nil` otherwise. The text's UTF-8 is exactly ``bytes``.
    public var string: String? {
        if case .text(let s) = storage { return s }
        return nil
    }

    /// Whether the bytes are valid UTF-8.
    public var isValidUTF8: Bool { string != nil }

    /// Calls `body` with the bytes.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .text(let s):
            var s = s
            return try s.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        case .raw(let b):
            return try b.withUnsafeBytes(body)
        }
    }

    /// The text when valid UTF-8, otherwise the ``escaped`` form.
    public var description: String { string ?? escaped }

    public var debugDescription: String { "NVString(\(escaped.debugDescription))" }

    /// The string with every byte outside a valid UTF-8 sequence written `\xNN`, and every backslash `\\`;
    /// for valid UTF-8 without a backslash, the text itself. ``init(escaped:)`` reverses it exactly.
    public var escaped: String {
        if case .text(let s) = storage, !s.utf8.contains(UInt8(ascii: "\\")) { return s }
        var out = ""
        var iterator = bytes.makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        let all = bytes
        var position = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if scalar == "\\" { out += "\\\\" } else { out.unicodeScalars.append(scalar) }
                position += encoded.count
            case .error(let length):
                for byte in all[position..<(position + length)] { out += "\\x" + Self.hex(byte) }
                position += length
            case .emptyInput:
                return out
            }
        }
    }

    /// Reads the ``escaped`` form: `\xNN` (two hex digits, either case) is that byte, `\\` a backslash; any
    /// other character is its UTF-8. `nil` when the result would contain NUL or a backslash starts neither
    /// form.
    public init?(escaped text: String) {
        var out: [UInt8] = []
        let utf8 = Array(text.utf8)
        var i = 0
        while i < utf8.count {
            let c = utf8[i]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < utf8.count else { return nil }
            if utf8[i + 1] == UInt8(ascii: "\\") {
                out.append(c)
                i += 2
            } else if utf8[i + 1] == UInt8(ascii: "x"), i + 3 < utf8.count,
                let hi = Self.hexValue(utf8[i + 2]), let lo = Self.hexValue(utf8[i + 3])
            {
                out.append(hi << 4 | lo)
                i += 4
            } else {
                return nil
            }
        }
        self.init(bytes: out)
    }

    /// The bytes in standard base64 (RFC 4648, with `=` padding), as `zlabel`'s JSON carries a string that is
    /// not valid UTF-8.
    public var base64: String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let b = bytes
        var out: [UInt8] = []
        out.reserveCapacity((b.count + 2) / 3 * 4)
        var i = 0
        while i < b.count {
            let n = min(3, b.count - i)
            let word = UInt32(b[i]) << 16 | (n > 1 ? UInt32(b[i + 1]) << 8 : 0) | (n > 2 ? UInt32(b[i + 2]) : 0)
            for k in 0..<4 {
                out.append(k <= n ? alphabet[Int(word >> UInt32(18 - 6 * k) & 0x3f)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard base64 (padding required), or `nil` when the text is not base64 or the bytes contain NUL.
    public init?(base64 text: String) {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            var word: UInt32 = 0
            var pad = 0
            for k in 0..<4 {
                let c = chars[i + k]
                let v: UInt32
                switch c {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
                case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
                case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
                case UInt8(ascii: "+"): v = 62
                case UInt8(ascii: "/"): v = 63
                case UInt8(ascii: "=") where k >= 2 && i + 4 == chars.count: v = 0; pad += 1
                default: return nil
                }
                if pad > 0 && c != UInt8(ascii: "=") { return nil }
                word = word << 6 | v
            }
            out.append(UInt8(word >> 16 & 0xff))
            if pad < 2 { out.append(UInt8(word >> 8 & 0xff)) }
            if pad < 1 { out.append(UInt8(word & 0xff)) }
            i += 4
        }
        self.init(bytes: out)
    }

    /// Whether `text` names this string: its UTF-8 is exactly these bytes, or it is this string's
    /// ``escaped`` form (with `\xNN` in either case). This is how a user types a string that is not UTF-8 on a
    /// command line (`zlabel expect hostname='h\xf6st'`, `--path`).
    public func matches(_ text: String) -> Bool {
        if case .text(let s) = storage, s.utf8.elementsEqual(text.utf8) { return true }
        return NVString(escaped: text) == self
    }

    public static func == (a: NVString, b: NVString) -> Bool {
        switch (a.storage, b.storage) {
        case (.text(let x), .text(let y)): x.utf8.elementsEqual(y.utf8)
        case (.raw(let x), .raw(let y)): x == y
        default: false  // valid and invalid UTF-8 are never the same bytes
        }
    }

    public func hash(into h: inout Hasher) {
        h.combine(byteCount)
        switch storage {
        case .text(let s): for byte in s.utf8 { h.combine(byte) }
        case .raw(let b): for byte in b { h.combine(byte) }
        }
    }

    /// Byte order (`strcmp`).
    public static func < (a: NVString, b: NVString) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xf)]], as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

import DiskContainers
import Testing

@Suite struct ZeroScanTests {
    @Test("isAllZero finds one non-zero byte anywhere: in a 64-byte stride, its last word, or the tail")
    func oneByteAnywhere() {
        for count in [0, 1, 7, 8, 63, 64, 65, 127, 128, 200, 4096, 524_288] {
            var bytes = [UInt8](repeating: 0, count: count)
            #expect(bytes.withUnsafeBytes(isAllZero), "\(count) zeros")
            for at in Set([0, 7, 8, 56, 63, 64, 120, 127, 128, count / 2, count - 1]) where at >= 0 && at < count {
                bytes[at] = 0x10
                #expect(!bytes.withUnsafeBytes(isAllZero), "\(count) bytes, non-zero at \(at)")
                // Unaligned: the same bytes seen from offset 1.
                if at > 0 {
                    #expect(!bytes.withUnsafeBytes { isAllZero(UnsafeRawBufferPointer(rebasing: $0[1...])) })
                }
                bytes[at] = 0
            }
        }
    }
}

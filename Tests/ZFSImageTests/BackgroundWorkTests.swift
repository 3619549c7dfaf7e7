import Synchronization
import Testing
@testable import ZFSImage

/// The second thread that hashes a backup's labels while the edit is planned.
@Suite("BackgroundWork")
struct BackgroundWorkTests {
    @Test("the value is the work's result, computed once, whoever asks and however often")
    func computedOnce() {
        let runs = Atomic<Int>(0)
        let work = BackgroundWork { () -> [String] in
            runs.add(1, ordering: .relaxed)
            return (0..<1000).map { String($0) }
        }
        #expect(work.value == (0..<1000).map { String($0) })
        #expect(work.value.count == 1000)
        #expect(runs.load(ordering: .relaxed) == 1)
    }

    @Test("work that is never asked for does not hold the process up")
    func neverAsked() {
        for _ in 0..<20 { _ = BackgroundWork { 42 } }
    }

    @Test("the digests planned in the background are those the backup would compute itself")
    func digestsMatch() {
        let labels: [[UInt8]] = (0..<4).map { i in (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* (i + 3)) } }
        // SHA-256 of "abc" (FIPS 180-2), as the backup writes a digest: lower-case hex.
        #expect(LabelBackup.digest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let work = BackgroundWork { labels.map(LabelBackup.digest) }
        #expect(work.value == labels.map(LabelBackup.digest))
        #expect(work.value.allSatisfy { $0.count == 64 && $0.utf8.allSatisfy { "0123456789abcdef".utf8.contains($0) } })
    }
}

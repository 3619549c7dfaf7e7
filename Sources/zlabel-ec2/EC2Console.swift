import AWSCore
import EBSUpload
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Standard error for the ec2 commands: log lines, and on a terminal one progress line that log lines
/// print above.
final class EC2Console: Sendable {
    private struct State {
        var lastDraw: ContinuousClock.Instant?
        var line = ""
    }
    private let state = Mutex(State())
    private let verbose: Bool
    private let showProgress: Bool

    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    init(verbose: Bool, progress: Bool) {
        self.verbose = verbose
        self.showProgress = progress
    }

    private func write(_ s: String) {
        FileHandle.standardError.write(Data(s.utf8))
    }

    var log: AWSLog {
        AWSLog { [self] level, message in
            if level == .debug && !verbose { return }
            let prefix = level == .warning ? "warning: " : level == .error ? "error: " : ""
            state.withLock { st in
                let clear = st.line.isEmpty ? "" : "\r\u{1B}[K"
                write(clear + "zlabel: " + prefix + message + "\n" + st.line)
            }
        }
    }

    /// Progress callback, or nil when progress is off.
    var progressHandler: (@Sendable (UploadProgress) -> Void)? {
        guard showProgress else { return nil }
        return { [self] p in
            let now = ContinuousClock.now
            state.withLock { st in
                if let last = st.lastDraw, now - last < .milliseconds(200), p.blocksDone < Int(p.blocksTotal) { return }
                st.lastDraw = now
                st.line = Self.render(p)
                write("\r\u{1B}[K" + st.line)
            }
        }
    }

    func finishProgress() {
        state.withLock { st in
            if !st.line.isEmpty {
                write("\n")
                st.line = ""
            }
        }
    }

    static func render(_ p: UploadProgress) -> String {
        let mib = 1024.0 * 1024.0
        let secs = max(Double(p.elapsed.components.seconds) + Double(p.elapsed.components.attoseconds) / 1e18, 0.001)
        let done = Double(p.blocksDone) * 0.5
        let total = Double(p.blocksTotal) * 0.5
        let pct = p.blocksTotal == 0 ? 100 : Int(Double(p.blocksDone) * 100 / Double(p.blocksTotal))
        let rate = Double(p.bytesUploaded) / mib / secs
        let blockRate = Double(p.blocksDone) / secs
        var eta = "--:--"
        if blockRate > 0 {
            let left = Int((Double(p.blocksTotal) - Double(p.blocksDone)) / blockRate)
            eta = String(format: "%d:%02d", left / 60, left % 60)
        }
        return String(format: "%.1f/%.1f MiB (%d%%)  %.1f MiB/s  ETA ", done, total, pct, rate) + eta
            + "  \(p.blocksSkipped) blocks skipped  \(p.retries) retries"
    }
}

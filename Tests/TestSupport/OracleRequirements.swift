public import Foundation
public import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Oracle {
    /// An oracle (or oracle-side helper) and what it needs on this machine.
    public enum Tool: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Debian's zdb 2.1.11 (zfsutils-linux, contrib).
        case zdb
        /// zlabel-json.sh: compiles a small C program against libzpool (libzfslinux-dev, gcc).
        case zlabelJSON = "zlabel-json"
        /// zdb-check.sh: zdb and python3.
        case zdbCheck = "zdb-check"
        /// grub-bootpath.sh: grub-emu with the zfs and zfsinfo modules, and script(1).
        case grub = "grub-bootpath"
        /// zfs23.sh: zdb/zhack 2.3 unpacked into the oracle cache by scripts/setup-test-env.sh.
        case zfs23
        /// reimport-pool.sh: libzpool, root, unshare.
        case reimport = "reimport-pool"
        /// make-real-pool.sh: libzpool, root, unshare.
        case makeRealPool = "make-real-pool"
        /// label-tool.py: python3.
        case labelTool = "label-tool"
        /// make-disk-image.py: python3.
        case makeDiskImage = "make-disk-image"
        /// qemu-img (Debian qemu-utils): converts raw images into qcow2, VMDK, VHD and VHDX and back.
        case qemuImg = "qemu-img"
        /// The zstd, xz and gzip command-line compressors.
        case compressors

        public var description: String { rawValue }
    }

    /// True when the environment says this is a CI run (`CI=true`): missing oracles then fail tests.
    public static var isCI: Bool {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? ""
        return value == "true" || value == "1" || value == "yes"
    }

    /// The directory holding built oracle helpers and the unpacked OpenZFS 2.3 (`$ZORACLE_CACHE`, else
    /// `zlabel-oracle` in `$TMPDIR` or /tmp), the same rule as `Tests/Oracle/oracle-lib.sh`.
    public static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["ZORACLE_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir, isDirectory: true) }
        let tmp = env["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return URL(fileURLWithPath: tmp, isDirectory: true).appending(path: "zlabel-oracle", directoryHint: .isDirectory)
    }

    /// Why `tool` cannot run here, or nil when it can. Cheap (file tests only); nothing is installed.
    public static func missingPrerequisite(_ tool: Tool) -> String? {
        let fm = FileManager.default
        func need(_ command: String, _ package: String) -> String? {
            Run.resolve(command) == nil ? "\(command) not found (apt-get install \(package))" : nil
        }
        let libzpool: () -> String? = {
            if let m = need("zdb", "zfsutils-linux") { return m }
            if !fm.fileExists(atPath: "/usr/include/libzfs/sys/spa.h") {
                return "libzpool headers missing (apt-get install libzfslinux-dev)"
            }
            return need("gcc", "gcc libc6-dev")
        }
        let root: () -> String? = { geteuid() == 0 ? nil : "needs root (mount namespaces)" }
        switch tool {
        case .zdb:
            return need("zdb", "zfsutils-linux")
        case .zlabelJSON:
            return libzpool()
        case .zdbCheck:
            return need("zdb", "zfsutils-linux") ?? need("python3", "python3")
        case .grub:
            if let m = need("grub-emu", "grub-emu") ?? need("script", "bsdutils") { return m }
            return fm.fileExists(atPath: "/usr/lib/grub/x86_64-emu/zfsinfo.mod")
                ? nil : "GRUB's zfsinfo module missing (apt-get install grub-emu)"
        case .zfs23:
            let zdb = cacheDirectory.appending(path: "zfs23/root/sbin/zdb").path
            return fm.isExecutableFile(atPath: zdb) ? nil : "OpenZFS 2.3 not unpacked at \(zdb)"
        case .reimport, .makeRealPool:
            return libzpool() ?? root() ?? need("unshare", "util-linux")
        case .labelTool, .makeDiskImage:
            return need("python3", "python3")
        case .qemuImg:
            return need("qemu-img", "qemu-utils")
        case .compressors:
            return need("zstd", "zstd") ?? need("xz", "xz-utils") ?? need("gzip", "gzip")
        }
    }

    /// Whether `tool` can run here.
    public static func isAvailable(_ tool: Tool) -> Bool { missingPrerequisite(tool) == nil }

    /// Call at the start of a test (the `Oracle` functions call it too). When `tool` can run, returns. When it
    /// cannot: in CI (`CI=true`) throws `OracleError.missing`, so the test **fails**; elsewhere cancels the test,
    /// which Swift Testing reports as skipped, with a message naming what is missing and how to install it.
    public static func require(_ tools: Tool..., sourceLocation: SourceLocation = #_sourceLocation) throws {
        for tool in tools {
            guard let reason = missingPrerequisite(tool) else { continue }
            if isCI {
                throw OracleError.missing(tool, reason + " — scripts/setup-test-env.sh installs it")
            }
            try Test.cancel(
                "skipped: oracle \(tool) unavailable: \(reason) (scripts/setup-test-env.sh installs it; with CI=true this fails)",
                sourceLocation: sourceLocation)
        }
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only where the oracles can run — except in CI (`CI=true`), where it always runs, so that a
    /// missing oracle fails the test (the `Oracle` calls throw) instead of skipping it.
    ///
    /// ```swift
    /// @Test(.oracle(.zlabelJSON, .zdbCheck)) func editedPoolStillImports() throws { ... }
    /// ```
    public static func oracle(_ tools: Oracle.Tool..., sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        let missing = tools.compactMap { tool in Oracle.missingPrerequisite(tool).map { "\(tool): \($0)" } }
        let comment: Comment =
            missing.isEmpty
            ? "needs oracles \(tools.map(\.rawValue).joined(separator: ", "))"
            : "oracle unavailable: \(missing.joined(separator: "; ")) (scripts/setup-test-env.sh installs it)"
        return .enabled(comment, sourceLocation: sourceLocation) { Oracle.isCI || missing.isEmpty }
    }
}

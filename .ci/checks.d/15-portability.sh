#!/bin/bash
# The label side claims to build on macOS and FreeBSD (README.md, "Platforms"), but CI runs on Linux only, and
# `swiftc -typecheck -target arm64-apple-macosx15` is impossible here: it needs the macOS SDK (Darwin's Swift
# module and C headers), which ships only with Xcode and cannot be installed on Linux. So this check reads the
# sources instead. In every label-side module it fails on
#   - an `import Glibc` that is not inside `#if canImport(Glibc)` or `#if os(Linux)`, and an `import Darwin`
#     not inside `#if canImport(Darwin)` or `#if os(macOS)`;
#   - a name that exists only in Linux's C library or kernel (posix_fadvise, st_mtim, SEEK_DATA, BLKGETSIZE64,
#     /proc, `Glibc.`, ...) outside an `#if os(Linux)` or `#if canImport(Glibc)` branch.
# String literals and comments are not code and are ignored. A line that uses such a name portably (swift-system's
# `Stat.st_mtim` is defined on every platform) says so with a `// portable:` comment giving the reason.
# The EC2 side (AWSCore, EBSUpload, EC2AMI, EC2Publish, zlabel-ec2) is Linux-only and not checked.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

label_side=(NVList ZFSChecksum ZFSLabel DiskPartitions BootTargets DiskContainers ZFSMOS RawIO ZFSImage ZLabel
  CLISupport zlabel)

# Prints "FILE:LINE: problem" for each finding in the Swift files given.
scan() {
  awk '
    function guarded(pattern,    i) {
      for (i = 1; i <= depth; i++) if (branch[i] ~ pattern) return 1
      return 0
    }
    FNR == 1 { depth = 0 }
    {
      line = $0
      portable = (line ~ /\/\/ portable:/)
      # Drop string literals, then comments: only code is checked.
      gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
      sub(/\/\/.*/, "", line)
      if (line ~ /^[ \t]*#if[ \t]/) { depth++; branch[depth] = line; next }
      if (line ~ /^[ \t]*#elseif[ \t]/) { branch[depth] = line; next }
      if (line ~ /^[ \t]*#else/) { branch[depth] = "#else"; next }
      if (line ~ /^[ \t]*#endif/) { depth--; next }
      linux = "os\\(Linux\\)|canImport\\(Glibc\\)"
      if (line ~ /^[ \t]*(@_exported[ \t]+)?((public|package|internal)[ \t]+)?import[ \t]+Glibc([ \t]|$)/ && !guarded(linux))
        printf "%s:%d: import Glibc outside #if canImport(Glibc) / #if os(Linux)\n", FILENAME, FNR
      if (line ~ /^[ \t]*(@_exported[ \t]+)?((public|package|internal)[ \t]+)?import[ \t]+Darwin([ \t]|$)/ && !guarded("os\\(macOS\\)|canImport\\(Darwin\\)"))
        printf "%s:%d: import Darwin outside #if canImport(Darwin) / #if os(macOS)\n", FILENAME, FNR
      if (!portable && match(line, /posix_fadvise|POSIX_FADV_[A-Z]+|st_[amc]tim([^a-z_]|$)|SEEK_DATA|SEEK_HOLE|BLKGETSIZE(64)?|BLKSSZGET|Glibc\.|O_DIRECT([^A-Z_]|$)|O_TMPFILE|fallocate|sync_file_range|gnu_dev_[a-z]+|epoll_[a-z]+|inotify_[a-z]+|memfd_create|copy_file_range|\/proc\/|\/sys\/(dev|block|class)/) && !guarded(linux))
      {
        name = substr(line, RSTART, RLENGTH)
        sub(/[^A-Za-z0-9_]$/, "", name)
        printf "%s:%d: %s is Linux-only; put it inside #if os(Linux)\n", FILENAME, FNR, name
      }
    }
  ' "$@"
}

# The check itself must be able to fail: a file with each kind of problem, and one with none.
selftest=$(mktemp -d)
trap 'rm -rf "$selftest"' EXIT
cat > "$selftest/Bad.swift" << 'EOF'
import Glibc
#if os(Linux)
    let ok = posix_fadvise(0, 0, 0, POSIX_FADV_WILLNEED)
#else
    let bad = st.st_mtim.tv_sec
#endif
#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#endif
let alsoBad = lseek(fd, 0, SEEK_DATA)
EOF
cat > "$selftest/Good.swift" << 'EOF'
// SEEK_DATA in a comment
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
let message = "SEEK_HOLE failed at /proc/self/mountinfo"
let mtime = stat.st_mtim.tv_sec  // portable: swift-system's Stat
#if os(Linux)
    #if arch(x86_64)
        _ = Glibc.read(fd, buffer, count)
    #endif
#endif
EOF
expected="$selftest/Bad.swift:1: import Glibc outside #if canImport(Glibc) / #if os(Linux)
$selftest/Bad.swift:5: st_mtim is Linux-only; put it inside #if os(Linux)
$selftest/Bad.swift:12: SEEK_DATA is Linux-only; put it inside #if os(Linux)"
got=$(scan "$selftest/Bad.swift" "$selftest/Good.swift")
if [ "$got" != "$expected" ]; then
  printf 'portability: the check itself is broken; on its test files it printed\n%s\ninstead of\n%s\n' "$got" "$expected"
  exit 1
fi

mapfile -t files < <(for m in "${label_side[@]}"; do git ls-files --cached --others --exclude-standard "Sources/$m/*.swift"; done)
findings=$(scan "${files[@]}")
if [ -n "$findings" ]; then
  printf '%s\n' "$findings"
  echo "portability: $(wc -l <<< "$findings") unguarded Linux-only use(s) in the label side (README.md, \"Platforms\")"
  exit 1
fi
echo "portability: ${#files[@]} label-side Swift files in ${#label_side[@]} modules use no Linux-only name outside #if os(Linux)"

#!/bin/bash
# build-zlabel.sh - build the `zlabel` binary that scripts/install.sh installs and that the README's and
# Benchmarks/README.md's start-up and memory figures are for; print its path on stdout.
#
#   scripts/build-zlabel.sh [SCRATCH]      (default SCRATCH: .build-static; CONFIGURATION=debug for a debug build)
#
# How it is linked, and why:
#   --static-swift-stdlib     the Swift runtime and Foundation inside the binary: nothing to install beside it,
#                             and no dynamic loading of a dozen Swift libraries at each start.
#   lld, -z pack-relative-relocs
#                             the binary stays position-independent (ASLR), but its ~48,000 relative
#                             relocations go into a compact RELR table (glibc 2.36+) instead of a 1.1 MiB RELA
#                             table that the loader reads at every start.
#   --symbol-ordering-file scripts/zlabel.order
#                             the functions the label commands run are laid out next to each other, so a run
#                             maps (and keeps resident) a few hundred KiB of code instead of pages scattered over
#                             13 MiB of text. scripts/make-order-file.sh regenerates the list; a stale list only
#                             costs memory, never correctness (names it does not find are ignored).
#   the C and C++ libraries linked in (libstdc++, libgcc's unwinder, zlib, liblzma, libzstd)
#                             each shared library costs every run its loading: finding, mapping and relocating it,
#                             and libstdc++ its thousands of symbol lookups. With these linked in, a run loads
#                             only libc and libm, and starts about 0.9 ms sooner on the 2-core CI machine
#                             (Benchmarks/README.md, "`set`: the C and C++ libraries linked in"). The archives are found with the
#                             linker driver (`clang -print-file-name`) and offered to the linker from a folder of
#                             links in the scratch folder, searched before the system's; a library whose archive
#                             is not installed stays shared, and the script says so. Their symbols are not
#                             exported (`--exclude-libs ALL` from the Swift toolchain's static link).
# Without ld.lld next to swift, the binary is linked with the default linker and the script says so.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v swift > /dev/null || export PATH="/opt/swift/usr/bin:$PATH"
scratch=${1:-$ROOT/.build-static}
flags=(-c "${CONFIGURATION:-release}" --static-swift-stdlib --product zlabel --scratch-path "$scratch")
if [ -x "$(dirname "$(command -v swift)")/ld.lld" ] || command -v ld.lld > /dev/null; then
  flags+=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs)
  [ -f "$ROOT/scripts/zlabel.order" ] &&
    flags+=(-Xlinker "--symbol-ordering-file=$ROOT/scripts/zlabel.order" -Xlinker --no-warn-symbol-ordering)
else
  echo "build-zlabel.sh: no ld.lld beside swift; linking with the default linker (larger resident size)" >&2
fi
# The archives to link in (Linux), by library name: -lNAME in the link then finds $archives/libNAME.a first.
if [ "$(uname -s)" = Linux ]; then
  clang=$(dirname "$(command -v swift)")/clang
  [ -x "$clang" ] || clang=$(command -v clang || true)
  archives="$scratch/static-archives"
  mkdir -p "$archives"
  missing=()
  for name in stdc++ z lzma zstd; do
    found=
    [ -z "$clang" ] || found=$("$clang" -print-file-name="lib$name.a" 2>/dev/null) || found=
    if [ -n "$found" ] && [ "$found" != "lib$name.a" ] && [ -f "$found" ]; then
      ln -sfn "$found" "$archives/lib$name.a"
    else
      rm -f "$archives/lib$name.a"
      missing+=("lib$name")
    fi
  done
  flags+=(-Xlinker "-L$archives" -Xswiftc -Xclang-linker -Xswiftc -static-libgcc)
  [ ${#missing[@]} -eq 0 ] ||
    echo "build-zlabel.sh: no static archive of ${missing[*]}; linking $([ ${#missing[@]} -eq 1 ] && echo it || echo them) as shared libraries (slower start)" >&2
fi
(cd "$ROOT" && swift build "${flags[@]}" >&2)
echo "$(cd "$ROOT" && swift build "${flags[@]}" --show-bin-path)/zlabel"

#!/bin/bash
# setup-test-env.sh - install everything the test suite and its oracles use, on
# Debian 12 (bookworm), as root.  Idempotent: a second run installs nothing and
# takes about a second.
#
#   * apt: enables the contrib component (zfsutils-linux and libzfslinux-dev
#     live there) and bookworm-backports (OpenZFS 2.3 for zfs23.sh) if missing;
#     installs real ZFS (zdb, libzpool + headers), Debian's zfs-test pool
#     images, grub-emu (GRUB 2's own ZFS code), compressors, qemu-img, partitioning tools,
#     a C toolchain and shellcheck.
#   * pip: moto[server] and boto3 for the EC2/EBS tests, if moto_server is
#     missing.
#   * builds the oracle's C helpers (Tests/Oracle/*.c) and unpacks OpenZFS 2.3
#     into the oracle cache ($ZORACLE_CACHE, default: zlabel-oracle under
#     $TMPDIR or /tmp), so that tests running in parallel never compile or
#     download anything.
#
# Usage: scripts/setup-test-env.sh      (no options)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

step() { printf '[setup] %s\n' "$*"; }
T0=$SECONDS

PACKAGES=(
  zfsutils-linux libzfslinux-dev zfs-test   # real ZFS: zdb, libzpool, headers, zfs-test blockfiles
  grub-emu bsdutils                         # grub-bootpath.sh (grub-emu under script(1))
  xz-utils bzip2                            # fixtures
  fdisk gdisk util-linux                    # sfdisk/sgdisk for looking at disks; unshare for the oracles
  gcc libc6-dev zlib1g-dev libxxhash-dev    # oracle helpers, C baselines
  libzstd-dev liblzma-dev zstd gzip         # DiskContainers: zstd/xz decompression; compressed-raw tests
  qemu-utils                                # qemu-img: the container oracle (DiskContainersTests)
  shellcheck python3 ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done

have_component() {  # have_component SUITE COMPONENT
  local suite=$1 comp=$2 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    grep -qsE "^deb[[:space:]].*[[:space:]]${suite}[[:space:]].*\\b$comp\\b" "$f" && return 0
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822 stanzas: a stanza that names the suite and the component
    awk -v s="$suite" -v c="$comp" '
      BEGIN { RS = ""; found = 0 }
      { suites = 0; comps = 0
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^Suites:/ && (" " lines[i] " ") ~ (" " s " ")) suites = 1
          if (lines[i] ~ /^Components:/ && (" " lines[i] " ") ~ (" " c " ")) comps = 1
          if (lines[i] ~ /^Enabled: *no/) { suites = 0 }
        }
        if (suites && comps) found = 1 }
      END { exit found ? 0 : 1 }' "$f" && return 0
  done
  return 1
}

need_update=0
if [ ${#missing[@]} -gt 0 ] || ! have_component bookworm-backports contrib; then
  [ "$(id -u)" = 0 ] || { echo "setup-test-env.sh: must run as root to install: ${missing[*]}" >&2; exit 1; }
  if ! have_component bookworm contrib || ! have_component bookworm-backports contrib; then
    step "enabling apt component contrib (bookworm, bookworm-updates, bookworm-backports)"
    cat > /etc/apt/sources.list.d/zlabel-contrib.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_update=1
  fi
fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  step "apt-get update"
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
step "apt packages ready ($((SECONDS - T0)) s)"

# ---- Python: moto for the EC2/EBS API tests
if ! command -v moto_server > /dev/null; then
  step "pip install moto[server] boto3"
  if ! python3 -m pip --version > /dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends python3-pip > /dev/null
  fi
  pipargs=(--quiet --disable-pip-version-check "moto[server]==5.2.1" boto3)
  python3 -m pip install "${pipargs[@]}" 2> /dev/null ||
    python3 -m pip install --break-system-packages "${pipargs[@]}"   # Debian's pip (PEP 668)
fi

# ---- oracle helpers, built once into the cache
# shellcheck disable=SC1091  # (Tests/Oracle/oracle-lib.sh)
. "$ROOT/Tests/Oracle/oracle-lib.sh"
for helper in zlabel-json zfs-mkpool zfs-reimport; do
  bin=$(build_helper "$helper")
  [ -x "$bin" ] || { echo "setup-test-env.sh: building $helper failed" >&2; exit 1; }
done
step "oracle helpers built in $(oracle_cache) ($((SECONDS - T0)) s)"
if [ ! -x "$(oracle_cache)/zfs23/root/sbin/zdb" ]; then
  step "unpacking OpenZFS 2.3 zdb/zhack (zfs23.sh)"
  bash "$ROOT/Tests/Oracle/zfs23.sh" zdb -V > /dev/null 2>&1 || true
  [ -x "$(oracle_cache)/zfs23/root/sbin/zdb" ] ||
    { echo "setup-test-env.sh: OpenZFS 2.3 could not be unpacked" >&2; exit 1; }
fi
step "ready: zdb $(dpkg-query -W -f='${Version}' zfsutils-linux), grub-emu $(dpkg-query -W -f='${Version}' grub-emu), OpenZFS 2.3 in $(oracle_cache)/zfs23 ($((SECONDS - T0)) s)"

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
# Usage: scripts/setup-test-env.sh      (--contrib-missing: print the suites that lack contrib, change nothing)
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
  libssl-dev                                # AWSCore: TLS for the socket transport
  qemu-utils                                # qemu-img: the container oracle (DiskContainersTests)
  shellcheck python3 ca-certificates openssl  # openssl: test certificates for the HTTPS transport tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done

APT_DIR=${ZLABEL_APT_DIR:-/etc/apt}   # (tests point it at a copy)
OUR_SOURCES="$APT_DIR/sources.list.d/zlabel-contrib.sources"

have_component() {  # have_component SUITE COMPONENT: some apt source other than ours has it
  local suite=$1 comp=$2 f
  for f in "$APT_DIR/sources.list" "$APT_DIR"/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    # one-line form: deb [options] URI SUITE COMPONENT...
    awk -v s="$suite" -v c="$comp" '
      { sub(/#.*/, ""); gsub(/\[[^]]*\]/, "") }
      $1 == "deb" && $3 == s { for (i = 4; i <= NF; i++) if ($i == c) found = 1 }
      END { exit found ? 0 : 1 }' "$f" && return 0
  done
  for f in "$APT_DIR"/sources.list.d/*.sources; do
    if [ ! -r "$f" ] || [ "$f" = "$OUR_SOURCES" ]; then continue; fi
    # deb822 stanzas (field names in any case, values split by blanks, continuation lines folded): an enabled
    # stanza of type deb that names the suite and the component
    awk -v s="$suite" -v c="$comp" '
      function check() {
        if (types ~ (" deb ") && suites ~ (" " s " ") && comps ~ (" " c " ") && enabled !~ / no /) found = 1
        types = suites = comps = enabled = ""; field = ""
      }
      /^[ \t]*$/ { check(); next }
      /^#/ { next }
      /^[ \t]/ { line = $0; gsub(/[ \t]+/, " ", line); add(line); next }
      {
        field = tolower(substr($0, 1, index($0, ":") - 1)); line = substr($0, index($0, ":") + 1)
        gsub(/[ \t]+/, " ", line); add(line)
      }
      function add(v) {
        if (field == "types") types = types " " v " "
        else if (field == "suites") suites = suites " " v " "
        else if (field == "components") comps = comps " " v " "
        else if (field == "enabled") enabled = " " tolower(v) " "
      }
      END { check(); exit found ? 0 : 1 }' "$f" && return 0
  done
  return 1
}

# The suites that need contrib and have it in no source but ours: ours then lists exactly those, so no suite
# ends up with contrib twice (apt would warn "configured multiple times" on every update).
contrib_missing=()
for suite in bookworm bookworm-updates bookworm-backports; do
  have_component "$suite" contrib || contrib_missing+=("$suite")
done
if [ "${1:-}" = --contrib-missing ]; then  # (for the tests: print them and stop)
  echo "${contrib_missing[*]}"
  exit 0
fi

need_update=0
if [ ${#contrib_missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup-test-env.sh: must run as root to enable contrib for ${contrib_missing[*]}" >&2; exit 1; }
  if [ "$(sed -n 's/^Suites: //p' "$OUR_SOURCES" 2>/dev/null)" != "${contrib_missing[*]}" ]; then
    step "enabling apt component contrib (${contrib_missing[*]})"
    cat > "$OUR_SOURCES" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${contrib_missing[*]}
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_update=1
  fi
elif [ -e "$OUR_SOURCES" ]; then
  [ "$(id -u)" = 0 ] || { echo "setup-test-env.sh: must run as root to remove $OUR_SOURCES (other sources have contrib)" >&2; exit 1; }
  step "removing $OUR_SOURCES: other apt sources have contrib for every suite"
  rm -f "$OUR_SOURCES"
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup-test-env.sh: must run as root to install: ${missing[*]}" >&2; exit 1; }
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

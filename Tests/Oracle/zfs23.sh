#!/bin/bash
# zfs23.sh - run zdb or zhack from OpenZFS 2.3.x (Debian bookworm-backports)
# WITHOUT installing it: the .debs are fetched with 'apt-get download' and
# unpacked into a cache directory; the installed 2.1.11 stays untouched.
#
# Usage: zfs23.sh zdb  ARGS...      e.g. zfs23.sh zdb -l IMAGE
#        zfs23.sh zhack ARGS...     e.g. zfs23.sh zhack label repair -c IMAGE
# What 2.3 adds over 2.1.11 for this project:
#   * zdb -l marks a label whose nvlist checksum is wrong:
#       "LABEL 0 (Bad label cksum)"       (2.1.11 prints nothing)
#   * zhack label repair -c DEVICE recomputes the SHA-256 embedded checksum
#     of every label nvlist (real ZFS code): a checksum oracle.  If your
#     writer is right, 'repair' leaves the file byte-identical.
#   * zhack label repair -u DEVICE restores a detached device's label.
# zhack's pool subcommands (feature ...) still need /dev/zfs for read-write
# import and fail here with "cannot import".
set -euo pipefail
CACHE=${ZORACLE_CACHE:-${TMPDIR:-/tmp}/zlabel-oracle}/zfs23
ROOT=$CACHE/root
if [ ! -x "$ROOT/sbin/zdb" ]; then
  [ "$(id -u)" = 0 ] || { echo "$0: first run needs root (apt-get)" >&2; exit 2; }
  if ! grep -rqsE 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
     ! grep -rqsE '^(Components:.*\bcontrib\b|deb .* contrib)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/contrib.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  mkdir -p "$CACHE/debs"
  # the 2.3 libraries have their own sonames except libnvpair3/libuutil3,
  # which is why they are unpacked, not installed
  (cd "$CACHE/debs" && apt-get download -qq zfsutils-linux/bookworm-backports \
    libzpool6linux/bookworm-backports libzfs6linux/bookworm-backports \
    libnvpair3linux/bookworm-backports libuutil3linux/bookworm-backports 2>/dev/null)
  rm -rf "$ROOT"; mkdir -p "$ROOT"
  for d in "$CACHE"/debs/*.deb; do dpkg -x "$d" "$ROOT"; done
  # runtime deps of zfsutils 2.3 that a minimal Debian may lack
  missing=()
  for p in libssl3 libudev1 libblkid1 libuuid1 zlib1g; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
tool=${1:?usage: zfs23.sh zdb|zhack ARGS...}; shift
case "$tool" in zdb|zhack) ;; *) echo "$0: only zdb and zhack" >&2; exit 2;; esac
export LD_LIBRARY_PATH="$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ZPOOL_CACHE=/nonexistent/zpool.cache
exec "$ROOT/sbin/$tool" "$@"

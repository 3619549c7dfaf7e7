# shellcheck shell=bash
# oracle-lib.sh - shared helpers for the oracle scripts (source it).
# ensure_zfs_deps: install zdb + libzpool headers + gcc on Debian 12 if absent.
# build_helper NAME: compile NAME.c (next to this file) against Debian's
#   libzpool 2.1.11; prints the path of the cached binary.
# oracle_cache: the directory for built helpers and unpacked packages,
#   $ZORACLE_CACHE if set, else "zlabel-oracle" under $TMPDIR (or /tmp).

ORACLE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

oracle_cache() {
  echo "${ZORACLE_CACHE:-${TMPDIR:-/tmp}/zlabel-oracle}"
}

ensure_zfs_deps() {
  local need=()
  command -v zdb >/dev/null || need+=(zfsutils-linux)
  [ -e /usr/include/libzfs/sys/spa.h ] || need+=(libzfslinux-dev)
  command -v gcc >/dev/null || need+=(gcc libc6-dev)
  command -v unshare >/dev/null || need+=(util-linux)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "need root to install: ${need[*]}" >&2; return 1; }
  if ! grep -rqsE '^(Components:.*\bcontrib\b|deb .* contrib)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/contrib.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates bookworm-backports
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

build_helper() {
  local name=$1 src="$ORACLE_DIR/$1.c"
  local cache; cache=$(oracle_cache)
  mkdir -p "$cache/shim/sys"
  local bin; bin="$cache/$name-$(sha256sum "$src" | cut -c1-16)"
  if [ ! -x "$bin" ]; then
    # Debian's libzfslinux-dev 2.1.11 lacks sys/zfs_ioctl.h, which
    # sys/dmu_objset.h includes; nothing from it is needed.
    echo '/* empty shim: sys/zfs_ioctl.h is not shipped by libzfslinux-dev */' > "$cache/shim/sys/zfs_ioctl.h"
    gcc -O2 -w -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -D_LARGEFILE64_SOURCE \
        -I"$cache/shim" -I/usr/include/libzfs -I/usr/include/libspl \
        -o "$bin.tmp.$$" "$src" -lzpool -lnvpair || return 1
    mv "$bin.tmp.$$" "$bin"
  fi
  echo "$bin"
}

# run_in_devns "PATH1<TAB>TARGET1<NL>..." HOSTNAME CMD ARGS...
# Run CMD in a private mount+UTS namespace where /dev is a fresh tmpfs with
# null/zero/full/random/urandom and symlinks PATHn -> TARGETn (PATHn under
# /dev), hostname HOSTNAME (empty = keep).  The host's /dev is not touched.
run_in_devns() {
  local links=$1 host=$2; shift 2
  ZM_LINKS=$links ZM_HOST=$host unshare -m -u bash -euo pipefail -c '
    mount --make-rprivate /
    real=$(mktemp -d "${TMPDIR:-/tmp}/zlabel-realdev.XXXXXX")
    mount --rbind /dev "$real"
    mount -t tmpfs -o mode=755 zlabel-dev /dev
    for n in null zero full random urandom; do
      touch /dev/$n; mount --bind "$real/$n" /dev/$n
    done
    umount -l "$real"; rmdir "$real"
    while IFS=$'"'"'\t'"'"' read -r p f; do
      [ -n "$p" ] || continue
      mkdir -p "$(dirname "$p")"; ln -s "$f" "$p"
    done <<< "$ZM_LINKS"
    # sethostname(2) takes any bytes (hostname(1) refuses what is not a DNS name): a label written by
    # another OS may carry a hostname that is not UTF-8.
    [ -z "$ZM_HOST" ] || python3 -c "import os, socket, sys; socket.sethostname(os.fsencode(sys.argv[1]))" "$ZM_HOST"
    "$@"
  ' run_in_devns "$@"
}

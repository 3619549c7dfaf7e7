#!/bin/bash
# make-real-pool.sh - produce a ZFS pool image with REAL OpenZFS code
# (Debian 12's libzpool 2.1.11, the kernel's spa/vdev/dmu code built for
# userland), whose leaf vdevs are type 'disk' and carry the path, phys_path
# and devid you choose, like an illumos/OmniOS root pool.  The pool is
# exported at the end, so its labels say state 1 (EXPORTED).
#
# Usage:
#   make-real-pool.sh [-n POOL] [-s SIZE] [-m | -z N] [-a ASHIFT] [-H HOSTNAME] [-E]
#                     [-h HOSTID] [-O] -d OUT [-p PATH] [-P PHYS] [-I DEVID]
#                     [-w 0|1] [-d OUT2 -p PATH2 ...] [-- zfs-mkpool options]
#
#   -d OUT    output image file (created sparse, SIZE bytes; replaced)
#   -p PATH   vdev 'path' for the last -d  (default /dev/dsk/c1t<i>d0s0)
#   -P PHYS   vdev 'phys_path'             (default /pci@0,0/pci1af4,2@<4+i>/blkdev@0,0:a)
#   -I DEVID  vdev 'devid'                 (default id1,kdev@AQM0000<i+1>___________/a)
#             pass an empty string to -P or -I to omit that key
#   -w N      vdev 'whole_disk' (default 0)
#   -m        one mirror of all -d devices (default: single disk / stripe)
#   -z N      one raidz vdev of parity N (1..3) of all -d devices
#   -n POOL   pool name (default rpool); -s SIZE image size (default 64M)
#   -a ASHIFT (default 9); -H HOSTNAME (default omnios); -h HOSTID (default 0x0badc0de)
#   -E        read -H, -p, -P and -I in printf %b escape form (\xNN is byte NN), so a
#             caller can give bytes that are not UTF-8 (a hostname or path from another OS)
#   -O        OmniOS-like layout: datasets ROOT, ROOT/omnios (bootfs) and a
#             file /etc/motd in ROOT/omnios (adds zfs-mkpool options)
#   after --  extra options for zfs-mkpool, e.g.
#             -o version=28   -o feature@lz4_compress=enabled
#             -c ROOT -O canmount=off -c ROOT/omnios -b ROOT/omnios
#             -f 'ROOT/omnios:/etc/motd=/path/on/host'
#
# The path may be anything under /dev/: the pool is created inside a private
# mount+UTS namespace (unshare -m -u) in which /dev is a fresh tmpfs holding
# null/zero/random/urandom and a symlink PATH -> OUT.  Userland libzpool opens
# a 'disk' vdev like a file through its path, so the labels end up with
# exactly PATH, and the host's /dev is never touched.
#
# Needs root (apt-get, unshare, mount).  Installs what it needs on Debian 12:
# zfsutils-linux (zdb), libzfslinux-dev (headers, libzpool), gcc.
# Prints what it made (zdb -l of the first device + a zdb import check).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

POOL=rpool SIZE=64M MIRROR=0 RAIDZ=0 ASHIFT=9 HOSTN=omnios HOSTID=0x0badc0de OMNI=0 ESC=0
OUTS=() PATHS=() PHYSS=() DEVIDS=() WHOLES=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) POOL=$2; shift 2;;
    -s) SIZE=$2; shift 2;;
    -m) MIRROR=1; shift;;
    -z) RAIDZ=$2; shift 2;;
    -a) ASHIFT=$2; shift 2;;
    -H) HOSTN=$2; shift 2;;
    -h) HOSTID=$2; shift 2;;
    -O) OMNI=1; shift;;
    -E) ESC=1; shift;;
    -d) i=${#OUTS[@]}
        OUTS+=("$2"); PATHS+=("/dev/dsk/c1t${i}d0s0")
        PHYSS+=("/pci@0,0/pci1af4,2@$((4 + i))/blkdev@0,0:a")
        DEVIDS+=("id1,kdev@AQM0000$((i + 1))___________/a"); WHOLES+=(0)
        shift 2;;
    -p|-P|-I|-w)
        [ ${#OUTS[@]} -gt 0 ] || { echo "$1 must follow -d" >&2; exit 2; }
        i=$((${#OUTS[@]} - 1))
        case "$1" in -p) PATHS[$i]=$2;; -P) PHYSS[$i]=$2;; -I) DEVIDS[$i]=$2;; -w) WHOLES[$i]=$2;; esac
        shift 2;;
    --) shift; break;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2;;
  esac
done
EXTRA=("$@")
[ ${#OUTS[@]} -gt 0 ] || { echo "usage: $0 [-n POOL] [-s SIZE] -d OUT [-p PATH] [-P PHYS] [-I DEVID] ..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 2; }

if [ "$ESC" = 1 ]; then
  unescape() { printf '%b' "$1"; }
  HOSTN=$(unescape "$HOSTN")
  for i in "${!OUTS[@]}"; do
    PATHS[i]=$(unescape "${PATHS[$i]}"); PHYSS[i]=$(unescape "${PHYSS[$i]}")
    DEVIDS[i]=$(unescape "${DEVIDS[$i]}")
  done
fi

# ------------------------------------------------------------ dependencies
. "$HERE/oracle-lib.sh"
ensure_zfs_deps
BIN=$(build_helper zfs-mkpool)
CACHE=$(oracle_cache)

# ------------------------------------------------------------ arguments
ARGS=()
[ "$MIRROR" = 1 ] && ARGS+=(-m)
[ "$RAIDZ" != 0 ] && ARGS+=(-z "$RAIDZ")
ARGS+=(-a "$ASHIFT")
for i in "${!OUTS[@]}"; do
  case "${PATHS[$i]}" in
    /dev/?*) ;;
    *) echo "$0: path must be under /dev/ (got ${PATHS[$i]})" >&2; exit 2;;
  esac
  out=$(realpath -m "${OUTS[$i]}"); OUTS[$i]=$out
  mkdir -p "$(dirname "$out")"
  rm -f "$out"; truncate -s "$SIZE" "$out"
  ARGS+=(-d "${PATHS[$i]}")
  [ -n "${PHYSS[$i]}" ] && ARGS+=(-P "${PHYSS[$i]}")
  [ -n "${DEVIDS[$i]}" ] && ARGS+=(-I "${DEVIDS[$i]}")
  ARGS+=(-w "${WHOLES[$i]}")
done
if [ "$OMNI" = 1 ]; then
  printf 'OmniOS test image made by real OpenZFS (make-real-pool.sh)\n' > "$CACHE/motd"
  ARGS+=(-c ROOT -O canmount=off -O mountpoint=legacy
         -c ROOT/omnios -O canmount=noauto -O mountpoint=/
         -f "ROOT/omnios:/etc/motd=$CACHE/motd" -b ROOT/omnios)
fi
ARGS+=("${EXTRA[@]}" "$POOL")

# ------------------------------------------------------------ create
LINKS=""
for i in "${!OUTS[@]}"; do LINKS+="${PATHS[$i]}"$'\t'"${OUTS[$i]}"$'\n'; done
export ZFS_HOSTID=$HOSTID
run_in_devns "$LINKS" "$HOSTN" "$BIN" "${ARGS[@]}"

# ------------------------------------------------------------ report
echo "== made by real OpenZFS $(dpkg-query -W -f='${Version}' libzpool5linux 2>/dev/null): ${OUTS[*]}"
zdb -l "${OUTS[0]}" | sed -n '/^    version/,$p'
chk=$(mktemp -d)
for o in "${OUTS[@]}"; do ln -s "$o" "$chk/"; done
if zdb -e -p "$chk" -C "$POOL" >/dev/null 2>&1; then
  echo "== zdb -e -p DIR -C $POOL: import OK"
else
  echo "== zdb -e -p DIR -C $POOL: IMPORT FAILED" >&2; rm -rf "$chk"; exit 1
fi
rm -rf "$chk"

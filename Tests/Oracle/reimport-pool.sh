#!/bin/bash
# reimport-pool.sh - import a pool image READ-WRITE with real OpenZFS code
# (userland libzpool 2.1.11 spa_import), let ZFS sync, export it again.
# Real ZFS then rewrites every label (and the MOS config) itself, which shows
#   * that the (edited) pool is importable read-write, not just readable,
#   * what real ZFS writes into the labels afterwards.
# zhack can't do this here: its read-write import asks the kernel module via
# /dev/zfs whether the pool is active, and fails without the module.
#
# Usage: reimport-pool.sh [-L] [-r] [-n] [-H HOSTNAME] [-h HOSTID]
#                         [-x N:KEY=VALUE]... IMAGE[=PATH]...
#   IMAGE=PATH  present IMAGE to ZFS under PATH (must be under /dev/), e.g.
#               rpool.img=/dev/dsk/c1t0d0s0, so the rewritten labels keep
#               that path; without =PATH the image's own path is recorded
#   -L          Linux-like: drop devid/phys_path of 'disk' leaves, as
#               libzutil does on Linux for non-block devices
#   -r          read-only import (writes nothing; pure import check)
#   -n          do not export (labels stay state 0 ACTIVE)
#   -H/-h       hostname/hostid recorded in the labels (default: this host)
#   -x N:KEY=VALUE  after the import let real ZFS set KEY (path, phys_path,
#               devid; empty VALUE drops phys_path/devid) of the leaf vdev of
#               IMAGE number N (0-based); ZFS writes it to all labels AND the
#               MOS config: a golden "same pool, new strings" image.
#               e.g. -x 0:phys_path=/xpvd/xdf@51712:a -x 0:devid=
# Note: the label config is NOT what ZFS keeps: a normal import trusts the
# MOS copy of the vdev tree and only copies 'path' from the labels, so edited
# phys_path/devid in the labels are replaced by the MOS values on export.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/oracle-lib.sh"

OPTS=() HOSTN="" 
while getopts "LrnH:h:x:" o; do
  case $o in
    L|r|n) OPTS+=("-$o");;
    x) OPTS+=(-x "$OPTARG");;
    H) HOSTN=$OPTARG;;
    h) export ZFS_HOSTID=$OPTARG;;
    *) sed -n '2,/^set /{/^set /d;p}' "$0" >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,/^set /{/^set /d;p}' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 2; }
ensure_zfs_deps
BIN=$(build_helper zfs-reimport)

LINKS="" DEVS=() IMGS=()
for a in "$@"; do
  img=$(realpath "${a%%=*}")
  [ -w "$img" ] || { echo "$0: cannot write $img" >&2; exit 2; }
  IMGS+=("$img")
  if [ "$a" != "${a%%=*}" ]; then
    p=${a#*=}
    case "$p" in /dev/?*) ;; *) echo "$0: PATH must be under /dev/" >&2; exit 2;; esac
    LINKS+="$p"$'\t'"$img"$'\n'; DEVS+=("$p")
  else
    DEVS+=("$img")
  fi
done
run_in_devns "$LINKS" "$HOSTN" "$BIN" "${OPTS[@]}" "${DEVS[@]}"
zdb -l "${IMGS[0]}" | sed -n '/^    version/,$p'

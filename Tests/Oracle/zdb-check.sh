#!/bin/bash
# zdb-check.sh - is an (edited) pool image still a good pool, according to
# REAL ZFS code (Debian 12 zdb 2.1.11, userland import, nothing written)?
#
# Usage: zdb-check.sh [-q] [-f] [-i] [-e KEY=VALUE]... DEVICE[@OFFSET[:SIZE]]...
#   DEVICE       a vdev image; give every vdev of the pool.  For a partition
#                or VTOC slice inside a whole-disk image, add @OFFSET:SIZE in
#                bytes (make-disk-image.py prints pool_offset/pool_size); the
#                slice is copied (sparse) to a temporary file first.
#   -e KEY=VALUE expect "KEY: 'VALUE'" (or KEY: VALUE) in the zdb -l output of
#                the FIRST device, e.g. -e phys_path=/pci@0,0/... -e state=1
#   -f           fast: skip the full metadata traversal (zdb -bc)
#   -i           skip the per-label isolation check
#   -q           print only failures and the final verdict
# Checks, each with real ZFS code:
#   1. zdb -l DEVICE            all 4 labels unpack and are identical
#                               ("labels = 0 1 2 3", exit 0).  zdb 2.1 does NOT
#                               verify label checksums here.
#   2. zdb -e -p DIR -C POOL    userland import: label checksums, uberblock
#                               checksums, guid sum, MOS config (exit 0)
#   3. zdb -e -p DIR -bc POOL   + traverse all metadata, verify checksums,
#                               leak check ("No leaks")
#   4. per-label isolation      for each L in 0..3: a scratch copy where the
#                               other three 256 KiB labels are zeroed on every
#                               device must still import (zdb -e -C): proves
#                               label L alone (nvlist + checksum + uberblock
#                               ring) is acceptable to ZFS.  Catches an editor
#                               that fixed only some labels.
# Exit status 0 = all checks passed.  On failure the zfs_dbgmsg lines
# (zdb -G) say why (e.g. "guids mismatch", "no valid uberblock found").
set -uo pipefail

QUIET=0 FAST=0 NOISO=0 EXPECT=()
while getopts "qfie:" o; do
  case $o in
    q) QUIET=1;; f) FAST=1;; i) NOISO=1;; e) EXPECT+=("$OPTARG");;
    *) sed -n '2,/^set /{/^set /d;p}' "$0" >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,/^set /{/^set /d;p}' "$0" >&2; exit 2; }
command -v zdb >/dev/null || { echo "$0: zdb missing (apt-get install zfsutils-linux from contrib)" >&2; exit 2; }

W=$(mktemp -d "${TMPDIR:-/tmp}/zdb-check.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir "$W/dev"
FAIL=0
say() { [ $QUIET = 1 ] || echo "$@"; }
bad() { echo "FAIL: $*"; FAIL=1; }

i=0
DEVS=()
for spec in "$@"; do
  f=${spec%%@*}
  [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
  d="$W/dev/vdev$i.img"
  if [ "$spec" != "$f" ]; then
    range=${spec#*@}; off=${range%%:*}; size=${range#*:}
    [ "$size" = "$range" ] && size=$(( $(stat -c %s "$f") - off ))
    (( off % 512 == 0 && size % 512 == 0 )) || { echo "$0: offset/size must be multiples of 512" >&2; exit 2; }
    dd if="$f" of="$d" bs=512 skip=$((off / 512)) count=$((size / 512)) conv=sparse status=none
  else
    ln -s "$(realpath "$f")" "$d"
  fi
  DEVS+=("$d"); i=$((i + 1))
done

# ---- 1. labels
POOL=""
for n in "${!DEVS[@]}"; do
  out=$(zdb -l "${DEVS[$n]}" 2>&1); rc=$?
  groups=$(printf '%s\n' "$out" | grep -c 'labels = ')
  if [ $rc -ne 0 ] || [ "$groups" -ne 1 ] || ! printf '%s\n' "$out" | grep -q 'labels = 0 1 2 3 *$'; then
    bad "zdb -l ${*:$((n + 1)):1}: rc=$rc, label groups: $(printf '%s\n' "$out" | grep -E 'labels =|failed' | tr -s ' ' | tr '\n' ';')"
  else
    say "ok   zdb -l ${*:$((n + 1)):1}: 4 identical labels"
  fi
  if [ $n = 0 ]; then
    POOL=$(printf '%s\n' "$out" | sed -n "s/^    name: '\(.*\)'$/\1/p" | head -1)
    printf '%s\n' "$out" > "$W/label0.txt"
  fi
done
[ -n "$POOL" ] || { bad "no pool name in the labels of the first device"; echo "RESULT: FAIL"; exit 1; }

for kv in "${EXPECT[@]}"; do
  k=${kv%%=*}; v=${kv#*=}
  if sed 's/^ *//' "$W/label0.txt" | grep -qxF -e "$k: '$v'" -e "$k: $v"; then
    say "ok   label has $k = $v"
  else
    bad "label: expected $k = $v, zdb -l shows: $(grep -E "^ *$k: " "$W/label0.txt" | sed 's/^ *//' | tr '\n' ';')"
  fi
done

# ---- 2./3. import
imp() {  # imp DIR OPTS... -> rc, output in $W/imp.txt
  local dir=$1; shift
  zdb -e -p "$dir" "$@" "$POOL" > "$W/imp.txt" 2>&1
}
why() { zdb -G -e -p "$1" -C "$POOL" 2>&1 | grep -E 'spa_load|vdev|guid|label|uberblock|FAILED' | grep -vE 'LOADING|UNLOADING' | head -6 | sed 's/^/       /'; }
if imp "$W/dev" -C; then
  say "ok   zdb -e -p DIR -C $POOL: imports"
else
  bad "zdb -e -C $POOL: $(grep -E "can't|error|fail" "$W/imp.txt" | head -2 | tr '\n' ' ')"; why "$W/dev"
fi
if [ $FAST = 0 ] && [ $FAIL = 0 ]; then
  if imp "$W/dev" -bc && grep -q 'No leaks' "$W/imp.txt"; then
    say "ok   zdb -e -p DIR -bc $POOL: metadata checksums verified, no leaks"
  else
    bad "zdb -e -bc $POOL: $(grep -iE "leak|error|fail|assert|can't" "$W/imp.txt" | head -3 | tr '\n' ' ')"
  fi
fi

# ---- 4. per-label isolation
if [ $NOISO = 0 ] && [ $FAIL = 0 ]; then
  mkdir "$W/iso" "$W/lab"    # label copies must not sit in the scanned dir
  for n in "${!DEVS[@]}"; do cp --sparse=always "${DEVS[$n]}" "$W/iso/vdev$n.img"; done
  python3 - "$W/iso" "${#DEVS[@]}" "$W/lab" <<'PY'
import os, sys
d, n, lab = sys.argv[1], int(sys.argv[2]), sys.argv[3]
L = 256 * 1024
for i in range(n):
    p = f"{d}/vdev{i}.img"; ps = os.path.getsize(p) & ~(L - 1)
    offs = [0, L, ps - 2 * L, ps - L]
    with open(p, 'rb') as f:
        for l, o in enumerate(offs):
            f.seek(o)
            open(f"{lab}/label{i}.{l}", 'wb').write(f.read(L))
PY
  for L in 0 1 2 3; do
    python3 - "$W/iso" "${#DEVS[@]}" "$L" "$W/lab" <<'PY'
import os, sys
d, n, keep, lab = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
L = 256 * 1024
for i in range(n):
    p = f"{d}/vdev{i}.img"; ps = os.path.getsize(p) & ~(L - 1)
    offs = [0, L, ps - 2 * L, ps - L]
    with open(p, 'r+b') as f:
        for l, o in enumerate(offs):
            f.seek(o)
            f.write(open(f"{lab}/label{i}.{l}", 'rb').read() if l == keep else b'\0' * L)
PY
    if imp "$W/iso" -C; then
      say "ok   label $L alone: imports"
    else
      bad "label $L alone does not import: $(grep -E "can't|error" "$W/imp.txt" | head -1)"; why "$W/iso"
    fi
  done
fi

if [ $FAIL = 0 ]; then echo "RESULT: OK ($POOL)"; else echo "RESULT: FAIL ($POOL)"; fi
exit $FAIL

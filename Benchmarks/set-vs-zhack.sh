#!/bin/bash
# set-vs-zhack.sh - whole-process wall time of `zlabel set` (the installed build) against OpenZFS 2.3's
# `zhack label repair -c`, each run on its own fresh copy of the same pool image. Prints every run and the
# median ratio zlabel/zhack (issue 3's target: <= 1.0).
#
# Usage: Benchmarks/set-vs-zhack.sh [-n RUNS] [-b BATCH] [-d] [IMAGE]
#   IMAGE   a pool image (default: Fixtures/rpool-kvm.img.xz, decompressed)
#   -n      timed runs per tool (default 9); the median is reported
#   -b      process invocations per timed run (default 10): each timed run is one shell loop over BATCH copies,
#           timed with bash's microsecond clock ($EPOCHREALTIME; /usr/bin/time's 10 ms steps were 6 % of a run of 30)
#   -d      damage zhack's copies first (a flipped byte in the unused nvlist tail of all four labels), so zhack
#           also writes four labels (4 pwrite + 4 fsync) instead of only reading a healthy image
# What each side does:
#   zlabel set COPY --path /dev/dsk/c2t0d0s0 --phys-path /xpvd/xdf@51712:a --backup FILE
#       read the 4 labels, plan, save a backup (fsync), write 4 config areas in 2 phases with fsync, read back
#   zhack label repair -c COPY
#       libzpool init, read the 4 labels, verify (and where needed recompute) each checksum
#   zhack runs from the unpacked 2.3 tree that Tests/Oracle/zfs23.sh maintains, with the environment that
#   script sets, but without its bash wrapper, so the wrapper's start-up is not counted against zhack.
# Environment: ZLABEL_BIN (skip the build), ZLABEL_SCRATCH (build directory, default .build-static). zlabel is
# built as scripts/install.sh builds it (scripts/build-zlabel.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=9 BATCH=10 DAMAGE=0
while getopts "n:b:d" o; do
  case $o in
    n) RUNS=$OPTARG;; b) BATCH=$OPTARG;; d) DAMAGE=1;;
    *) sed -n '2,/^set /{/^set /d;p}' "$0" >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
[ -n "${EPOCHREALTIME:-}" ] || { echo "$0: needs bash 5 (EPOCHREALTIME)" >&2; exit 2; }

if [ -n "${ZLABEL_BIN:-}" ]; then
  BIN=$ZLABEL_BIN
else
  BIN=$(bash "$ROOT/scripts/build-zlabel.sh" "${ZLABEL_SCRATCH:-$ROOT/.build-static}")
fi
[ -x "$BIN" ] || { echo "$0: no zlabel at $BIN" >&2; exit 2; }

W=$(mktemp -d -t set-vs-zhack.XXXXXX)
trap 'rm -rf "$W"' EXIT
if [ $# -ge 1 ]; then
  cp --sparse=always -- "$1" "$W/base.img"
else
  xz -dc "$ROOT/Fixtures/rpool-kvm.img.xz" | cp --sparse=always /dev/stdin "$W/base.img"
fi

# First use of zfs23.sh unpacks OpenZFS 2.3; also proves zhack runs on this image.
cp --sparse=always "$W/base.img" "$W/warm.img"
# (zhack exits 1 when it found nothing to repair, as on a healthy image.)
bash "$ROOT/Tests/Oracle/zfs23.sh" zhack label repair -c "$W/warm.img" > "$W/warm.log" 2>&1 || true
grep -q 'label 3: .*checksum: ' "$W/warm.log" || {
  echo "$0: zhack did not read the labels of the image:" >&2; cat "$W/warm.log" >&2; exit 1; }
Z23=${ZORACLE_CACHE:-${TMPDIR:-/tmp}/zlabel-oracle}/zfs23/root
# zhack's libraries are in the unpacked tree; only zhack's loop runs with them on LD_LIBRARY_PATH, since every
# directory there is searched (in vain) for each of zlabel's libraries too.
ZLIBS="$Z23/lib/x86_64-linux-gnu:$Z23/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ZHACK=$Z23/sbin/zhack
"$BIN" set "$W/warm.img" --path /dev/dsk/c2t0d0s0 --phys-path /xpvd/xdf@51712:a --backup "$W/warm.bk" > /dev/null

cp --sparse=always "$W/base.img" "$W/damaged.img"
if [ $DAMAGE = 1 ]; then
  for l in 0 1 2 3; do python3 "$ROOT/Tests/Oracle/label-tool.py" flip "$W/damaged.img" $l 0x5000 > /dev/null; done
fi
copies() {  # copies PREFIX SOURCE: BATCH fresh copies of SOURCE
  local i
  for ((i = 0; i < BATCH; i++)); do cp --sparse=always "$2" "$W/$1.$i.img"; rm -f "$W/$1.$i.bk"; done
}
# The timed loops: the same shell, the same file names, one process per copy.
ZLABEL_LOOP='for ((i = 0; i < B; i++)); do "$BIN" set "$W/z.$i.img" --path /dev/dsk/c2t0d0s0 --phys-path /xpvd/xdf@51712:a --backup "$W/z.$i.bk" > /dev/null || exit 1; done'
ZHACK_LOOP='export LD_LIBRARY_PATH=$ZLIBS ZPOOL_CACHE=/nonexistent/zpool.cache; for ((i = 0; i < B; i++)); do "$ZHACK" label repair -c "$W/h.$i.img" > /dev/null 2>&1; done; exit 0'
export BIN ZHACK ZLIBS W B=$BATCH

timed() {  # timed CMD...: runs CMD, prints its wall time in seconds; fails when CMD does
  local t0=${EPOCHREALTIME/[^0-9]/} t1
  "$@" || return
  t1=${EPOCHREALTIME/[^0-9]/}
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e6 }'
}
ratios=()
printf '%-4s %12s %12s %8s\n' run "zlabel (s)" "zhack (s)" ratio
for ((r = 1; r <= RUNS; r++)); do
  copies z "$W/base.img"; copies h "$W/damaged.img"
  sync
  tz=$(timed bash -c "$ZLABEL_LOOP")
  th=$(timed bash -c "$ZHACK_LOOP")
  ratio=$(awk -v a="$tz" -v b="$th" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
  ratios+=("$ratio")
  printf '%-4s %12s %12s %8s\n' "$r" "$tz" "$th" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
echo "per timed run: $BATCH processes on $BATCH copies of $(basename "${1:-rpool-kvm.img}")$([ $DAMAGE = 1 ] && echo "; zhack's copies damaged in all four labels")"
echo "median whole-process wall-time ratio zlabel set / zhack label repair -c: $median (target <= 1.0)"

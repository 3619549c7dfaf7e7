#!/bin/bash
# make-fixtures.sh - (re)build the golden ZFS images in this directory with
# REAL ZFS code, and rewrite MANIFEST.txt.
#
# Usage: Fixtures/make-fixtures.sh [-o OUTDIR] [GROUP...]
#   GROUP  kvm       rpool-kvm.img and rpool-kvm-to-xen.img (the golden
#                    before/after pair; regenerate `disks` with it)
#          mirror    rpool-mirror-0.img, rpool-mirror-1.img
#          v28       rpool-v28.img
#          raidz     tank-raidz-0/1/2.img
#          disks     disk-gpt.img, disk-gpt-linux.img, disk-gpt-esp.img,
#                    disk-vtoc.img: rpool-kvm.img (the one in OUTDIR unless
#                    `kvm` is rebuilt in the same run) wrapped into whole disks
#          zfs-test  pools written by old ZFS releases (several on SPARC, so
#                    big-endian), copied from Debian's zfs-test package
#          manifest  nothing: only rewrite MANIFEST.txt
#          (default: all groups)
#   -o OUTDIR        default: the directory of this script
# The MANIFEST (sha256 of every compressed file and of its raw image, and the
# view of real ZFS - zdb -l, or zlabel-json.sh on a partition - plus GRUB's
# zfs-bootfs string where GRUB can read the pool) always covers every image in
# OUTDIR, rebuilt or not.
#
# Needs root on Debian 12 (scripts/setup-test-env.sh installs everything).
# Guids and timestamps are random on every run: rebuilding `kvm` changes every
# byte-level hash, so compare decoded fields, not bytes, across runs.  Wrapping
# the same pool into disks again gives identical disk images (fixed GPT seed).
# ~40 s for everything.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ORACLE=$(cd "$HERE/../Tests/Oracle" && pwd)
OUT=$HERE
while getopts "o:" o; do
  case $o in
    o) OUT=$OPTARG;;
    *) sed -n '2,/^set /{/^set /d;p}' "$0" >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
ALL=(kvm mirror v28 raidz disks zfs-test)
GROUPS_=("$@")
[ ${#GROUPS_[@]} -gt 0 ] || GROUPS_=("${ALL[@]}")
for g in "${GROUPS_[@]}"; do
  case " ${ALL[*]} manifest " in *" $g "*) ;; *) echo "$0: unknown group $g" >&2; exit 2;; esac
done
want() { case " ${GROUPS_[*]} " in *" $1 "*) return 0;; esac; return 1; }

mkdir -p "$OUT"; OUT=$(realpath "$OUT")
T=$(mktemp -d "${TMPDIR:-/tmp}/zlabel-fixtures.XXXXXX")
trap 'rm -rf "$T"' EXIT
echo "GRUB 2 fixture file" > "$T/readme"

KVM_PHYS='/pci@0,0/pci1af4,2@4/blkdev@0,0:a'
KVM_DEVID='id1,kdev@AQM00001___________/a'
XEN_PHYS='/xpvd/xdf@51712:a'
BLOCKFILES=/usr/share/zfs/zfs-tests/tests/functional/cli_root

# unpack FILE.img.xz|FILE.dat.bz2 sparse into DIR; prints the raw path
# shellcheck disable=SC2216  # cp reads /dev/stdin, which is the pipe
unpack() {
  local f=$1 dir=$2 raw
  raw="$dir/$(basename "${f%.*}")"
  case $f in
    *.xz) xz -dc "$f" | cp --sparse=always /dev/stdin "$raw";;
    *.bz2) bzip2 -dc "$f" | cp --sparse=always /dev/stdin "$raw";;
  esac
  echo "$raw"
}
# store RAW in OUT compressed: xz -9e, or keep SRC.bz2 when that is smaller
store() {
  local raw=$1 bz=${2:-}
  xz -9e -T1 -c "$raw" > "$T/cand.xz"
  if [ -n "$bz" ] && [ "$(stat -c %s "$bz")" -le "$(stat -c %s "$T/cand.xz")" ]; then
    rm -f "$OUT/$(basename "$raw").xz"; cp "$bz" "$OUT/$(basename "$raw").bz2"
  else
    rm -f "$OUT/$(basename "$raw").bz2"; mv "$T/cand.xz" "$OUT/$(basename "$raw").xz"
  fi
  chmod 644 "$OUT/$(basename "$raw")".*
}

# ---- 1. OmniOS-like single-disk rpool as installed on a KVM/virtio disk; the
#         root dataset gets a ZPL (a file /boot/README) so GRUB can probe it.
#      2. the SAME pool after real ZFS itself switched it to Xen names
#         (phys_path, path), written by ZFS to the labels and the MOS config.
if want kvm; then
  "$ORACLE/make-real-pool.sh" -O -d "$T/rpool-kvm.img" -p /dev/dsk/c1t0d0s0 \
    -P "$KVM_PHYS" -I "$KVM_DEVID" -- -f ":/boot/README=$T/readme" > /dev/null
  cp --sparse=always "$T/rpool-kvm.img" "$T/rpool-kvm-to-xen.img"
  "$ORACLE/reimport-pool.sh" -H omnios -h 0x0badc0de -x "0:phys_path=$XEN_PHYS" \
    -x 0:path=/dev/dsk/c2t0d0s0 "$T/rpool-kvm-to-xen.img=/dev/dsk/c1t0d0s0" > /dev/null
  store "$T/rpool-kvm.img"; store "$T/rpool-kvm-to-xen.img"
fi
# ---- 3. two-way mirror rpool
if want mirror; then
  "$ORACLE/make-real-pool.sh" -O -m -d "$T/rpool-mirror-0.img" -d "$T/rpool-mirror-1.img" > /dev/null
  store "$T/rpool-mirror-0.img"; store "$T/rpool-mirror-1.img"
fi
# ---- 4. legacy pool version 28 (no feature flags), ashift 12
if want v28; then
  "$ORACLE/make-real-pool.sh" -a 12 -d "$T/rpool-v28.img" -- -o version=28 \
    -c ROOT -c ROOT/omnios -b ROOT/omnios -f ":/boot/README=$T/readme" > /dev/null
  store "$T/rpool-v28.img"
fi
# ---- 5. raidz1 of three members (a data pool, not bootable)
if want raidz; then
  "$ORACLE/make-real-pool.sh" -n tank -z 1 -d "$T/tank-raidz-0.img" \
    -d "$T/tank-raidz-1.img" -d "$T/tank-raidz-2.img" -- -c data \
    -f "data:/README=$T/readme" > /dev/null
  for i in 0 1 2; do store "$T/tank-raidz-$i.img"; done
fi
# ---- 6. whole-disk images around pool 1
if want disks; then
  if [ -e "$T/rpool-kvm.img" ]; then kvm=$T/rpool-kvm.img
  else mkdir -p "$T/src"; kvm=$(unpack "$OUT/rpool-kvm.img.xz" "$T/src"); fi
  disk() {  # disk NAME make-disk-image.py-options...
    local name=$1; shift
    (cd "$T" && python3 "$ORACLE/make-disk-image.py" "$@" "$kvm" "$name.img") > "$OUT/$name.json"
    store "$T/$name.img"
  }
  disk disk-gpt --layout gpt --seed fixtures                 # illumos: p1 at LBA 256
  disk disk-gpt-linux --layout gpt --start 2048 --seed fixtures-linux  # Linux: p1 at LBA 2048
  disk disk-gpt-esp --layout gpt --esp 256 --seed fixtures-esp  # zpool create -B: ESP p1, pool p2 (s1)
  disk disk-vtoc --layout mbr-vtoc                           # MBR 0xBF + SMI/VTOC, pool in s0
fi
# ---- 7. pools from Debian's zfs-test package (kept as shipped when bzip2 is smaller)
if want zfs-test; then
  [ -d "$BLOCKFILES" ] || { echo "$0: $BLOCKFILES missing (apt-get install zfs-test)" >&2; exit 1; }
  mkdir -p "$T/bf"
  for b in zpool_upgrade/zfs-pool-v15 \
           zpool_upgrade/zfs-pool-v2mirror1 zpool_upgrade/zfs-pool-v2mirror2 zpool_upgrade/zfs-pool-v2mirror3 \
           zpool_upgrade/zfs-pool-v2raidz1 zpool_upgrade/zfs-pool-v2raidz2 zpool_upgrade/zfs-pool-v2raidz3 \
           zpool_upgrade/zfs-broken-mirror1 zpool_upgrade/zfs-broken-mirror2 \
           zpool_import/cryptv0 zpool_import/unclean_export zpool_upgrade/zfs-pool-v999; do
    src="$BLOCKFILES/${b%%/*}/blockfiles/${b#*/}.dat.bz2"
    store "$(unpack "$src" "$T/bf")" "$src"
  done
fi

# ---- MANIFEST over everything in OUT
mkdir -p "$T/all"
M="$T/MANIFEST.txt"
{
  echo "# Fixtures/MANIFEST.txt - written by make-fixtures.sh; last run $(date -u +%FT%TZ)"
  echo "# with libzpool $(dpkg-query -W -f='${Version}' libzpool5linux 2>/dev/null), grub-emu $(dpkg-query -W -f='${Version}' grub-emu 2>/dev/null)"
  echo "# For each file: its own sha256, the raw image's size and sha256, and what real ZFS"
  echo "# (zdb -l; zlabel-json.sh on the pool partition of whole disks) and GRUB see in it."
  for f in "$OUT"/*.img.xz "$OUT"/*.dat.xz "$OUT"/*.dat.bz2; do
    [ -e "$f" ] || continue
    raw=$(unpack "$f" "$T/all")
    b=$(basename "$raw")
    echo
    echo "== $b"
    echo "file $(basename "$f")  sha256=$(sha256sum "$f" | cut -c1-64)  bytes=$(stat -c %s "$f")"
    echo "raw  $b  sha256=$(sha256sum "$raw" | cut -c1-64)  bytes=$(stat -c %s "$raw")"
    case $b in
      disk-*)
        j="$OUT/${b%.img}.json"
        off=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pool_offset'])" "$j")
        size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pool_size'])" "$j")
        part=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['grub_device'][5:-1])" "$j")
        echo "pool at byte offset $off, size $size, GRUB device (hd0,$part); layout in $(basename "$j")"
        echo "-- zlabel-json.sh -o $off -s $size:"
        "$ORACLE/zlabel-json.sh" -o "$off" -s "$size" "$raw" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = d["labels"][0]["config"]
print("   labels_valid=%d name=%s pool_guid=%d path=%s phys_path=%s" % (d["labels_valid"], c["name"],
      c["pool_guid"], c["vdev_tree"]["path"], c["vdev_tree"]["phys_path"]))' || echo "   (failed)"
        if [ "$part" != "msdos1,sunpc1" ]; then
          echo "-- grub-bootpath.sh -p $part -D ROOT/omnios:"
          "$ORACLE/grub-bootpath.sh" -p "$part" -D ROOT/omnios "$raw" 2>&1 | head -1 || true
        else  # GRUB 2.06 lists the VTOC slice but cannot open it by name
          echo "-- grub-bootpath.sh -D ROOT/omnios IMAGE@$off:$size:"
          "$ORACLE/grub-bootpath.sh" -D ROOT/omnios "$raw@$off:$size" 2>&1 | head -1 || true
        fi ;;
      *)
        echo "-- zdb -l:"
        zdb -l "$raw" 2>&1 | sed -n '/^    version/,$p' || true
        case $b in
          rpool-kvm*|rpool-mirror*|rpool-v28*)
            echo "-- grub-bootpath.sh -D ROOT/omnios:"
            "$ORACLE/grub-bootpath.sh" -D ROOT/omnios "$raw" 2>&1 | head -1 || true ;;
        esac ;;
    esac
    rm -f "$raw"
  done
} > "$M"
mv "$M" "$OUT/MANIFEST.txt"
ls -l "$OUT"

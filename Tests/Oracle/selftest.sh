#!/bin/bash
# selftest.sh - exercise every oracle script once (real ZFS + GRUB), ~45 s.
# Prints one line per check and a closing "N passed, M failed" line; exits 1
# if anything failed.  Needs root on Debian 12 (installs packages on first
# use).  Work files go to a temporary directory that is removed at the end.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/zlabel-selftest.XXXXXX")
trap 'rm -rf "$W"' EXIT
P=0 F=0
check() {  # check NAME CMD...
  local name=$1; shift
  if "$@" > "$W/out" 2>&1; then P=$((P + 1)); echo "ok   $name"
  else F=$((F + 1)); echo "FAIL $name"; sed 's/^/     /' "$W/out" | tail -15; fi
}
checknot() {  # must fail
  local name=$1; shift
  if "$@" > "$W/out" 2>&1; then F=$((F + 1)); echo "FAIL (unexpectedly passed) $name"
  else P=$((P + 1)); echo "ok   $name"; fi
}
has() { grep -q -- "$1" "$W/out"; }

PHYS='/pci@0,0/pci1af4,2@4/blkdev@0,0:a' DEVID='id1,kdev@AQM00001___________/a'
echo readme > "$W/readme"
check "make-real-pool.sh single disk" "$HERE/make-real-pool.sh" -O -d "$W/p.img" \
  -p /dev/dsk/c1t0d0s0 -P "$PHYS" -I "$DEVID" -- -f ":/boot/README=$W/readme"
check "labels carry path/phys_path/devid" "$HERE/zdb-check.sh" -q -e path=/dev/dsk/c1t0d0s0 \
  -e "phys_path=$PHYS" -e "devid=$DEVID" -e state=1 -e hostname=omnios "$W/p.img"
check "make-real-pool.sh mirror" "$HERE/make-real-pool.sh" -m -d "$W/m0.img" -d "$W/m1.img"
check "zdb-check.sh mirror" "$HERE/zdb-check.sh" -q "$W/m0.img" "$W/m1.img"
check "zlabel-json.sh" bash -c "'$HERE/zlabel-json.sh' '$W/p.img' | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"labels_valid\"]==4; assert d[\"labels\"][3][\"config\"][\"vdev_tree\"][\"phys_path\"]==\"$PHYS\"'"
check "zfs-ubload.sh: ZFS's txg = zlabel-json.sh's selected" bash -c "'$HERE/zfs-ubload.sh' '$W/p.img' > '$W/ub.json' && '$HERE/zlabel-json.sh' '$W/p.img' | python3 -c 'import json,sys; d=json.load(sys.stdin); u=json.load(open(\"$W/ub.json\")); assert u[\"imported\"] and u[\"best_txg\"]==d[\"selected\"][\"txg\"]==u[\"uberblock\"][\"txg\"]; assert u[\"uberblock\"][\"timestamp\"]==d[\"selected\"][\"timestamp\"]'"
check "grub-bootpath.sh" bash -c "'$HERE/grub-bootpath.sh' -D ROOT/omnios -c /ROOT/omnios@/etc/motd '$W/p.img' | tee /dev/stderr | grep -qx 'bootpath=$PHYS'"
check "make-disk-image.py gpt" python3 "$HERE/make-disk-image.py" --layout gpt --seed t "$W/p.img" "$W/gpt.img"
check "gpt: zdb on partition 1" "$HERE/zdb-check.sh" -q -f -i "$W/gpt.img@131072:67108864"
check "gpt: GRUB (hd0,gpt1)" bash -c "'$HERE/grub-bootpath.sh' -p gpt1 '$W/gpt.img' | grep -qx 'bootpath=$PHYS'"
check "make-disk-image.py mbr-vtoc" python3 "$HERE/make-disk-image.py" --layout mbr-vtoc "$W/p.img" "$W/vtoc.img"
off=$(python3 -c "import json; print(json.load(open('$W/out'))['pool_offset'])")
check "vtoc: zdb on slice 0" "$HERE/zdb-check.sh" -q -f -i "$W/vtoc.img@$off:67108864"
if command -v sfdisk >/dev/null; then
  check "vtoc: sfdisk sees one 0xbf partition" bash -c "sfdisk -d '$W/vtoc.img' | grep -q 'type=bf'"
fi
cp --sparse=always "$W/p.img" "$W/x.img"
check "reimport-pool.sh -x phys_path (real ZFS rewrites labels+MOS)" "$HERE/reimport-pool.sh" \
  -H omnios -x '0:phys_path=/xpvd/xdf@51712:a' "$W/x.img=/dev/dsk/c1t0d0s0"
check "rewritten pool still good" "$HERE/zdb-check.sh" -q -e 'phys_path=/xpvd/xdf@51712:a' "$W/x.img"
# negative: break the nvlist checksum of labels 0 and 1 only
cp --sparse=always "$W/p.img" "$W/bad.img"
python3 - "$W/bad.img" <<'PY'
import sys
with open(sys.argv[1], 'r+b') as f:
    for off in (0, 256 * 1024):
        f.seek(off + 0x5000); b = f.read(1); f.seek(off + 0x5000); f.write(bytes([b[0] ^ 0xff]))
PY
checknot "zdb-check.sh catches bad checksum in labels 0+1" "$HERE/zdb-check.sh" -q -f "$W/bad.img"
check "make-real-pool.sh raidz1 of 3" "$HERE/make-real-pool.sh" -n tank -z 1 -d "$W/z0.img" -d "$W/z1.img" -d "$W/z2.img"
check "zdb-check.sh raidz1" "$HERE/zdb-check.sh" -q -f "$W/z0.img" "$W/z1.img" "$W/z2.img"
check "label-tool.py verify: 4 good labels" bash -c "python3 '$HERE/label-tool.py' verify '$W/p.img' | grep -c 'nvlist cksum OK' | grep -qx 4"
# OpenZFS 2.3: zhack label repair -c leaves a good label byte-identical and fixes a bad one
cp --sparse=always "$W/p.img" "$W/r.img"
# (zhack exits 1 when it had nothing to repair)
check "zfs23.sh zhack label repair -c: no change on good labels" bash -c "'$HERE/zfs23.sh' zhack label repair -c '$W/r.img'; cmp '$W/p.img' '$W/r.img'"
python3 "$HERE/label-tool.py" flip "$W/r.img" 2 0x5000 > /dev/null
check "zfs23.sh zdb -lll flags label 2 only" bash -c "'$HERE/zfs23.sh' zdb -lll '$W/r.img' | grep -F '(Bad label cksum)' | tr -d ' ' | grep -qx 'LABEL2(Badlabelcksum)'"
check "zfs23.sh zhack label repair -c fixes it" bash -c "'$HERE/zfs23.sh' zhack label repair -c '$W/r.img' && '$HERE/zlabel-json.sh' '$W/r.img' > /dev/null"
echo "$P passed, $F failed"
[ $F = 0 ]

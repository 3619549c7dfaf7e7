#!/usr/bin/env bash
# demo.sh: zlabel's main job on a bundled fixture.
#
# Fixtures/disk-vtoc.img.xz is a whole-disk image as an OmniOS install leaves it: an MBR with a Solaris (0xBF)
# partition, an SMI/VTOC label, and the root pool in slice 0, made by real ZFS code. Its labels name the build
# VM's disk (phys_path /pci@0,0/pci1af4,2@4/blkdev@0,0:a, a virtio devid). This script finds the pool, shows
# the labels, plans and applies the change for an EC2 Xen HVM root disk (/dev/xvda), verifies every label, and
# prints the strings before and after. The fixture in the repository is never modified.
#
#   scripts/demo.sh [TARGET]        TARGET: ec2-xen-hvm (default), ec2-xen-pv or ec2-nitro
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${1:-ec2-xen-hvm}
command -v swift > /dev/null || export PATH="/opt/swift/usr/bin:$PATH"

echo "== building zlabel (the first build fetches and compiles the dependencies)"
swift build --package-path "$ROOT" --product zlabel > /dev/null
ZLABEL="$(swift build --package-path "$ROOT" --show-bin-path)/zlabel"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zlabel-demo.XXXXXX")
IMG="$WORK/disk.img"
xz -dc "$ROOT/Fixtures/disk-vtoc.img.xz" | cp --sparse=always /dev/stdin "$IMG"
echo "== working on a copy: $IMG"

strings_of() {  # the device strings and host fields of every label, from zlabel's JSON
  "$ZLABEL" inspect --json "$IMG" | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vdevs"]:
    for l in v["labels"]:
        c = l.get("config", {}); t = c.get("vdev_tree", {})
        print("  %s L%d %-8s phys_path=%s path=%s devid=%s hostid=%s" % (v["partition"]["name"], l["index"],
              l["status"], t.get("phys_path"), t.get("path"), t.get("devid"), c.get("hostid")))'
}

echo; echo "== zlabel inspect (partition map and labels)"
"$ZLABEL" inspect "$IMG" | head -40
echo "   ..."
echo; echo "== before"; strings_of
echo; echo "== zlabel set --target $TARGET --remove-hostid --dry-run"
"$ZLABEL" set "$IMG" --target "$TARGET" --remove-hostid --dry-run
echo; echo "== zlabel set --target $TARGET --remove-hostid"
"$ZLABEL" set "$IMG" --target "$TARGET" --remove-hostid
echo; echo "== zlabel verify"
"$ZLABEL" verify "$IMG"
echo; echo "== after"; strings_of
echo; echo "The original labels are in $IMG.zlabel-backup; undo with: $ZLABEL restore $IMG --from $IMG.zlabel-backup"

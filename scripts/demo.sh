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
#
# Needs Swift 6.1 or newer, xz and python3 (README.md, "Prerequisites"). The work copy is removed at the end;
# KEEP=1 keeps it (and the backup, for trying `zlabel restore`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${1:-ec2-xen-hvm}
case $TARGET in
  ec2-xen-hvm | ec2-xen-pv | ec2-nitro) ;;
  *) echo "demo.sh: unknown target '$TARGET' (ec2-xen-hvm, ec2-xen-pv or ec2-nitro)" >&2; exit 64 ;;
esac
if ! command -v swift > /dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "== swift is not on PATH; using /opt/swift/usr/bin/swift"
    export PATH="/opt/swift/usr/bin:$PATH"
  else
    echo "demo.sh: swift (6.1 or newer) is not on PATH; install it from https://www.swift.org/install/" >&2
    exit 1
  fi
fi
for tool in xz python3; do
  command -v "$tool" > /dev/null || { echo "demo.sh: $tool is needed (Debian: apt-get install xz-utils python3)" >&2; exit 1; }
done

echo "== building zlabel (the first build fetches the dependencies from the network and compiles them: minutes)"
swift build --package-path "$ROOT" --product zlabel > /dev/null
ZLABEL="$(swift build --package-path "$ROOT" --show-bin-path)/zlabel"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zlabel-demo.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$WORK"' EXIT; fi
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
              l["status"], t.get("phys_path", "absent"), t.get("path", "absent"), t.get("devid", "absent"),
              c.get("hostid", "absent")))'
}

echo; echo "== zlabel inspect (partition map and labels)"
"$ZLABEL" inspect "$IMG" | head -40
echo "   ..."
echo; echo "== before"; strings_of
echo; echo "== zlabel set --target $TARGET --remove-hostid --dry-run"
"$ZLABEL" set "$IMG" --target "$TARGET" --remove-hostid --dry-run
echo; echo "== zlabel set --target $TARGET --remove-hostid"
# (the target's notes were shown with the dry run above)
"$ZLABEL" set "$IMG" --target "$TARGET" --remove-hostid 2> >(grep -v '^target: ' >&2)
echo; echo "== zlabel verify"
"$ZLABEL" verify "$IMG"
echo; echo "== after"; strings_of
echo
if [ "${KEEP:-0}" = 1 ]; then
  echo "The original labels are in $IMG.zlabel-backup; undo with: $ZLABEL restore $IMG --from $IMG.zlabel-backup"
else
  echo "The work copy has been removed (KEEP=1 scripts/demo.sh keeps it, with its backup)."
fi
echo "zlabel is at $ZLABEL (not on PATH: scripts/install.sh installs it). The EC2 commands, \`zlabel ec2 …\`, are a"
echo "second executable: swift build --product zlabel-ec2 builds it, scripts/install.sh installs both;"
echo "scripts/demo-publish.sh runs them against a local moto."

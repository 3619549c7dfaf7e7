#!/bin/bash
# zfs-ubload.sh IMAGE...
# Which uberblock real ZFS takes for the pool whose leaf vdevs are IMAGE...
# (all of one pool, bare vdevs): libzpool's userland import (zdb -e -u -G,
# Debian's zdb 2.1.11) runs vdev_uberblock_load() over every label of every
# leaf and logs "best uberblock found for spa P. txg N" before any check of
# the version, the hostid or MMP.  Prints one JSON object:
#   {"pool":NAME,"best_txg":N|null,"imported":true|false,
#    "failure":"what spa_load said"|null,
#    "uberblock":{"txg":..,"timestamp":..,"version":..,"guid_sum":..}|null}
# "uberblock" is zdb -u's dump of the loaded pool's uberblock (only when the
# import got that far).  Read-only: the images are opened through symlinks
# in a private directory and never written.  ~0.5-5 s.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/oracle-lib.sh"
ensure_zfs_deps >&2
[ $# -ge 1 ] || { echo "usage: zfs-ubload.sh IMAGE..." >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/zfs-ubload.XXXXXX")
trap 'rm -rf "$dir"' EXIT
for f in "$@"; do
  [ -f "$f" ] || { echo "zfs-ubload.sh: $f: no such file" >&2; exit 2; }
  ln -s "$(readlink -f "$f")" "$dir/$(basename "$f")"
done
pool=$( { zdb -l "$1" || true; } | sed -n "s/^ *name: '\(.*\)'$/\1/p" | head -1)
[ -n "$pool" ] || { echo "zfs-ubload.sh: no pool name in the labels of $1" >&2; exit 2; }
out=$(zdb -e -p "$dir" -G -u "$pool" 2>&1 || true)
POOL=$pool python3 -c '
import json, os, re, sys
out = sys.stdin.read()
best = re.findall(r"best uberblock found for spa .*\. txg (\d+)", out)
fail = re.findall(r"FAILED: (.*)", out)
ub = None
m = re.search(r"^Uberblock:\n((?:\t.*\n)+)", out, re.M)
if m:
    f = dict(re.findall(r"^\t(\w+) = (\S+)", m.group(1), re.M))
    ub = {"txg": int(f["txg"]), "timestamp": int(f["timestamp"]), "version": int(f["version"]),
          "guid_sum": int(f["guid_sum"])}
print(json.dumps({"pool": os.environ["POOL"], "best_txg": int(best[-1]) if best else None,
                  "imported": ub is not None, "failure": fail[-1] if fail else None, "uberblock": ub}))
' <<< "$out"

#!/bin/bash
# make-order-file.sh - regenerate scripts/zlabel.order, the list of functions that scripts/build-zlabel.sh asks
# the linker to place together: every function that runs during the label commands on a bundled fixture.
#
#   scripts/make-order-file.sh            (needs valgrind; builds zlabel with scripts/build-zlabel.sh first)
#
# Each command runs once under callgrind (instruction-level, so the list does not depend on timing); the
# functions are listed in the order callgrind first names them. Run it after a change that adds or renames
# much of what inspect, verify, doctor, boot-view, set or restore run, and commit the result with the change.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v valgrind > /dev/null || { echo "$0: valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
bin=$(bash "$ROOT/scripts/build-zlabel.sh" "${ZLABEL_SCRATCH:-$ROOT/.build-static}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# valgrind 3.19 cannot read the DWARF 5 of this toolchain; the symbol table is enough.
strip --strip-debug -o "$work/zlabel" "$bin"
xz -dc "$ROOT/Fixtures/rpool-kvm.img.xz" | cp --sparse=always /dev/stdin "$work/pool.img"
cp --sparse=always "$work/pool.img" "$work/edit.img"
n=0
run() {  # run ARGS...: one zlabel command under callgrind
  n=$((n + 1))
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" "$work/zlabel" "$@" > /dev/null 2> "$work/vg.$n" \
    || [ $? -le 3 ] || { echo "$0: zlabel $* failed under valgrind:" >&2; cat "$work/vg.$n" >&2; exit 1; }
}
run inspect "$work/pool.img"
run inspect --json "$work/pool.img"
run inspect --uberblocks "$work/pool.img"
run verify "$work/pool.img"
run doctor "$work/pool.img"
run boot-view "$work/pool.img"
run set "$work/edit.img" --target ec2-xen-hvm --backup "$work/edit.bk"
run restore "$work/edit.img" --from "$work/edit.bk"
python3 - "$work" "$n" > "$ROOT/scripts/zlabel.order" <<'PY'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
seen = set()
for i in range(1, n + 1):
    for line in open(f"{work}/cg.{i}"):
        m = re.match(r"^c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
        if m and "@" not in m.group(1) and m.group(1) not in seen:
            seen.add(m.group(1))
            print(m.group(1))
PY
echo "scripts/zlabel.order: $(wc -l < "$ROOT/scripts/zlabel.order") functions from $n commands"

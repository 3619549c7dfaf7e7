#!/usr/bin/env bash
# Times the whole `zlabel inspect` process (release build) against `zdb -l` on the same image.
#
#   bash Benchmarks/inspect-vs-zdb.sh [IMAGE] [RUNS]
#
# IMAGE defaults to Fixtures/rpool-kvm.img.xz, unpacked (sparse) into a temporary folder; RUNS defaults to 21.
# Both commands run RUNS times, alternating, after one warm-up each, under `/usr/bin/time -v`. Wall time is
# taken with nanosecond clock reads around each run (time -v reports only hundredths of a second); peak RSS
# is time -v's "Maximum resident set size". Prints the median wall time and peak RSS of each, and the ratios.
# The pairs measured: `zlabel inspect` vs `zdb -l`, `zlabel inspect --uberblocks` vs `zdb -lu`, and
# `zlabel inspect --mos` vs `zdb -e -p DIR -C POOL` (the MOS config).
#
# Set ZLABEL to a built zlabel binary to skip the build; otherwise zlabel is built as scripts/install.sh
# builds it (scripts/build-zlabel.sh; the first build takes several minutes), which is the build the README's
# figures are for. ZLABEL_BUILD_FLAGS builds the root package's `zlabel` product in release mode with those
# `swift build` flags instead, into Benchmarks/.build-zlabel (e.g. ZLABEL_BUILD_FLAGS=-v for the default link).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
image="${1:-$repo/Fixtures/rpool-kvm.img.xz}"
runs="${2:-21}"

if [ ! -x /usr/bin/time ]; then
    echo "== /usr/bin/time is missing; installing Debian's 'time' package"
    apt-get install -y time >/dev/null
fi
zdb="$(command -v zdb || true)"
[ -n "$zdb" ] || { echo "zdb not found (Debian: zfsutils-linux)" >&2; exit 2; }

if [ -z "${ZLABEL:-}" ]; then
    if [ -n "${ZLABEL_BUILD_FLAGS:-}" ]; then
        flags="$ZLABEL_BUILD_FLAGS"
        scratch="$here/.build-zlabel"
        echo "== building zlabel (release, $flags)"
        # shellcheck disable=SC2086
        swift build --package-path "$repo" -c release --product zlabel --scratch-path "$scratch" $flags >&2
        # shellcheck disable=SC2086
        ZLABEL="$(swift build --package-path "$repo" -c release --scratch-path "$scratch" $flags --show-bin-path)/zlabel"
    else
        echo "== building zlabel as scripts/install.sh does (scripts/build-zlabel.sh)"
        ZLABEL="$(bash "$repo/scripts/build-zlabel.sh")"
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
case "$image" in
    *.xz) xz -dc "$image" | cp --sparse=always /dev/stdin "$work/image" ;;
    *.bz2) bzip2 -dc "$image" | cp --sparse=always /dev/stdin "$work/image" ;;
    *) ln -s "$(realpath "$image")" "$work/image" ;;
esac
img="$work/image"

# Both must succeed on the image before their times mean anything.
"$ZLABEL" inspect "$img" >"$work/zlabel.out"
"$zdb" -l "$img" >"$work/zdb.out"

# run NAME CMD...: one timed run; appends "wall_seconds max_rss_kib" to $work/NAME.
run() {
    local name="$1"
    shift
    local t0 t1
    t0="$(date +%s%N)"
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>&1
    t1="$(date +%s%N)"
    local rss
    rss="$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$work/time.txt")"
    echo "$(( (t1 - t0) / 1000 )) $rss" >>"$work/$name"
}

# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# compare LABEL OURS THEIRS [as-is]: each command gets the image path appended (not with "as-is").
compare() {
    local label="$1" ours="$2" theirs="$3"
    if [ "${4:-}" != as-is ]; then ours="$ours @IMG@"; theirs="$theirs @IMG@"; fi
    read -r -a ours_cmd <<<"${ours//@IMG@/$img}"
    read -r -a theirs_cmd <<<"${theirs//@IMG@/$img}"
    rm -f "$work/a" "$work/b"
    "${ours_cmd[@]}" >/dev/null 2>&1
    "${theirs_cmd[@]}" >/dev/null 2>&1
    for _ in $(seq "$runs"); do
        run a "${ours_cmd[@]}"
        run b "${theirs_cmd[@]}"
    done
    local wa wb ra rb
    wa="$(median "$work/a" 1)"; wb="$(median "$work/b" 1)"
    ra="$(median "$work/a" 2)"; rb="$(median "$work/b" 2)"
    awk -v a="${ours_cmd[*]##*/}" -v b="${theirs_cmd[*]##*/}" -v l="$label" \
        -v wa="$wa" -v wb="$wb" -v ra="$ra" -v rb="$rb" 'BEGIN {
        printf "%-34s median wall %8.2f ms   peak RSS %7d KiB\n", a, wa / 1000, ra
        printf "%-34s median wall %8.2f ms   peak RSS %7d KiB\n", b, wb / 1000, rb
        printf "%-34s time ratio (zlabel/zdb) %.2f   RSS ratio %.2f\n\n", l, wa / wb, ra / rb
    }'
}

echo "== zlabel: $ZLABEL ($(stat -c %s "$ZLABEL") bytes, $(ldd "$ZLABEL" 2>/dev/null | grep -c '=>') shared libraries)"
echo "== image $(basename "$image") ($(stat -c %s "$img") bytes), $runs runs each, $(nproc) CPUs"
compare "inspect vs zdb -l" "$ZLABEL inspect" "$zdb -l"
compare "inspect --uberblocks vs zdb -lu" "$ZLABEL inspect --uberblocks" "$zdb -lu"
# The MOS config: zdb imports the pool in userland from a folder holding the image (zdb -e -p DIR -C POOL).
pool="$("$ZLABEL" inspect --json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vdevs"][0]["labels"][0]["config"]["name"])')"
if "$zdb" -e -p "$work" -C "$pool" >"$work/zdb-mos.out" 2>&1; then
    # The same config both ways, or the times mean nothing (zdb starts with an empty line).
    "$ZLABEL" inspect --mos "$img" | diff -q - <(tail -n +2 "$work/zdb-mos.out") >/dev/null \
        || { echo "zlabel inspect --mos and zdb -e -C differ on $(basename "$image")" >&2; exit 1; }
    compare "inspect --mos vs zdb -e -C" "$ZLABEL inspect --mos @IMG@" "$zdb -e -p $work -C $pool" as-is
else
    echo "(zdb -e -C cannot import pool $pool from $(basename "$image"); MOS comparison skipped)"
fi

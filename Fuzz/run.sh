#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer, makes seed corpora from ../Fixtures, and runs
# every target for SECONDS (default 60). Prints execs/s per target; exits 1 if any target found a crash,
# a hang, a leak or an out-of-memory input, 2 if the build or the seeds failed.
#
#   bash Fuzz/run.sh [SECONDS | --total SECONDS] [TARGET...]
#       TARGET: FuzzNVList FuzzLabel FuzzPartitions FuzzMOS
#               FuzzQcow2 FuzzVMDK FuzzVHD FuzzVHDX FuzzCompressedRaw FuzzHTTPResponse (default: all)
#
# Corpora grow in Fuzz/.corpus/<target>/ and findings land in Fuzz/artifacts/<target>/ (both git-ignored;
# the artifacts folder is emptied at the start of each target's run).
# Extra libFuzzer flags can be passed in FUZZ_FLAGS, e.g. FUZZ_FLAGS="-jobs=2 -workers=2".
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
total=""
if [ "${1:-}" = --total ]; then
    total="${2:?--total needs a number of seconds}"
    shift 2
    seconds=""
else
    seconds="${1:-60}"
    shift || true
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzNVList FuzzLabel FuzzPartitions FuzzMOS
    FuzzQcow2 FuzzVMDK FuzzVHD FuzzVHDX FuzzCompressedRaw FuzzHTTPResponse)
# --total SECONDS shares one time budget among the targets (at least 20 s each), so that CI's fuzz phase
# does not grow with every target added.
if [ -n "$total" ]; then
    seconds=$((total / ${#targets[@]}))
    [ "$seconds" -ge 20 ] || seconds=20
fi

# The Swift runtime's crash backtracer would otherwise take the signal before libFuzzer and no crash
# file would be written.
export SWIFT_BACKTRACE=enable=no

echo "== building fuzz targets (release, -sanitize=fuzzer,address)"
if ! swift build --package-path "$here" -c release \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld; then
    echo "fuzz: build failed" >&2
    exit 2
fi
bin="$(swift build --package-path "$here" -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld \
    --show-bin-path)"

echo "== seeds from Fixtures/"
rm -rf "$here/.corpus/seeds"
if ! python3 "$here/make-seeds.py" "$here/.corpus/seeds"; then
    echo "fuzz: could not make seeds" >&2
    exit 2
fi
# The container targets' seeds come from qemu-img and the compressors (scripts/setup-test-env.sh installs them).
if ! python3 "$here/make-container-seeds.py" "$here/.corpus/seeds"; then
    echo "fuzz: could not make container seeds" >&2
    exit 2
fi

seeds_for() {
    case "$1" in
        FuzzNVList) echo nvlist ;;
        FuzzLabel) echo label ;;
        FuzzPartitions) echo partitions ;;
        FuzzMOS) echo mos ;;
        FuzzQcow2) echo qcow2 ;;
        FuzzVMDK) echo vmdk ;;
        FuzzVHD) echo vhd ;;
        FuzzVHDX) echo vhdx ;;
        FuzzCompressedRaw) echo compressed ;;
        FuzzHTTPResponse) echo http ;;
    esac
}
max_len_for() {
    case "$1" in
        FuzzNVList) echo 65536 ;;
        FuzzLabel) echo 262144 ;;  # header, bootenv, config area, uberblock ring
        FuzzPartitions) echo 131072 ;;
        FuzzMOS) echo 135168 ;;  # header, a block pointer, up to 128 KiB of block
        FuzzQcow2 | FuzzVMDK | FuzzVHD | FuzzVHDX) echo 65536 ;;  # sparse pieces of a container file
        FuzzCompressedRaw) echo 16384 ;;
        FuzzHTTPResponse) echo 8192 ;;
    esac
}

status=0
summary=()
for target in "${targets[@]}"; do
    seeds="$here/.corpus/seeds/$(seeds_for "$target")"
    corpus="$here/.corpus/$target"
    artifacts="$here/artifacts/$target"
    log="$here/artifacts/$target.log"
    # Findings of an earlier run are not this run's: start with an empty folder.
    rm -rf "$artifacts"
    mkdir -p "$seeds" "$corpus" "$artifacts"
    echo "== $target: ${seconds}s, seeds $(ls "$seeds" | wc -l), corpus $(ls "$corpus" | wc -l)"
    # -timeout: an input that takes 10 s is a hang. Seeds come first so a broken seed shows up at once.
    # shellcheck disable=SC2086
    "$bin/$target" "$corpus" "$seeds" \
        -max_total_time="$seconds" -max_len="$(max_len_for "$target")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    execs="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)"
    found="$(ls "$artifacts" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | grep -v '^slow-unit-' || true)"
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        status=1
        echo "!! $target: libFuzzer exited $rc; findings in $artifacts:"
        echo "$found" | sed 's/^/   /'
        grep -E -A30 'ERROR: |deadly signal|fuzz invariant broken|Fatal error' "$log" | head -60
        summary+=("$target: FOUND A PROBLEM (exit $rc) after ${runs:-?} runs, ${execs:-?} exec/s")
    else
        summary+=("$target: ${execs:-?} exec/s, ${runs:-?} runs in ${seconds}s, ${cov:-cov ?}, no findings")
    fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$status"

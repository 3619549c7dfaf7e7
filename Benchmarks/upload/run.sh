#!/usr/bin/env bash
# Upload benchmark (a script, not a timed test): an 8 GiB sparse image holding 1 GiB of data, uploaded to one
# local moto_server by `zlabel ec2 upload`, by a boto3 thread-pool reference uploader, and by a client that
# measures moto's ceiling (ceiling_client.py: every request prepared in memory before its clock starts).
# Prints, per client: wall time, throughput, client CPU seconds per GiB uploaded, peak RSS, bytes read from
# the image; and moto's CPU time per run. Then the ratios: zlabel's throughput over moto's ceiling (the
# ceiling's timed seconds against zlabel's whole run), and zlabel's client CPU over boto3's. The three
# clients' order rotates from round to round. Afterwards zlabel and boto3 run again against keepalive_sink.py,
# which keeps connections alive as AWS does, for their CPU without moto's connection per request.
#
# Usage: Benchmarks/upload/run.sh [ZLABEL_EC2_BINARY]  (default: .build/release/zlabel-ec2, the program behind
#        `zlabel ec2`; build it with swift build -c release --product zlabel-ec2)
# Env:   WORKERS (zlabel --workers, default 8), THREADS (boto3 threads, default 8), CONNECTIONS (ceiling client
#        connections, default 8), DATA_GIB (1), IMAGE_GIB (8), ROUNDS (rounds of zlabel, boto3 and ceiling runs,
#        default 1; the ratios use medians), PIN (1, the default: moto on CPU 0, clients on the others),
#        CACHE (cold, the default: the page cache is dropped before each run, when this user may; written:
#        dropped, then the data extents alone are read into it, as when the image has just been written and
#        its holes never read; warm: the whole image, holes too, is read into it first),
#        SINK=0 skips the keep-alive runs, KEEP=1 keeps the work directory,
#        FORMATS (e.g. "qcow2 zst"): each round also uploads the image converted to these with zlabel
#        (qcow2: qemu-img convert; zst: zstd -3; vmdk: streamOptimized), and the summary compares each with
#        the raw upload and with moto's ceiling.
# Needs: moto[server], boto3, /usr/bin/time (Debian package "time"), python3; qemu-img and zstd for FORMATS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ZLABEL="${1:-$root/.build/release/zlabel-ec2}"
WORKERS="${WORKERS:-8}"; THREADS="${THREADS:-8}"; CONNECTIONS="${CONNECTIONS:-8}"; DATA_GIB="${DATA_GIB:-1}"; IMAGE_GIB="${IMAGE_GIB:-8}"
[ -x "$ZLABEL" ] || { echo "no zlabel-ec2 binary at $ZLABEL (swift build -c release --product zlabel-ec2)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/zlabel-bench.XXXXXX")"
moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# moto on CPU 0, the clients on the others (PIN=0 turns this off): the clients then measure how well they keep
# the server busy, as against AWS, instead of how much CPU they take from it; moto, a Python process bound by
# its interpreter lock, also runs faster on one CPU than spread over two.
server_cpu=(); client_cpu=()
ncpu="$(nproc)"
if [ "${PIN:-1}" = 1 ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpu=(taskset -c 0); client_cpu=(taskset -c "1-$((ncpu - 1))")
fi
MOTO_EC2_LOAD_DEFAULT_AMIS=false "${server_cpu[@]}" python3 -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
ep="http://127.0.0.1:$port"
for _ in $(seq 1 300); do curl -sf "$ep/moto-api/config" >/dev/null 2>&1 && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

# Warm moto up (its EBS and EC2 modules load lazily on first use) so neither client pays for that.
python3 - "$ep" <<'PY'
import base64, hashlib, sys, boto3
ebs = boto3.client("ebs", endpoint_url=sys.argv[1])
s = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
b = bytes(524288); d = hashlib.sha256(b).digest()
ebs.put_snapshot_block(SnapshotId=s, BlockIndex=0, BlockData=b, DataLength=524288,
                       Checksum=base64.b64encode(d).decode(), ChecksumAlgorithm="SHA256")
ebs.complete_snapshot(SnapshotId=s, ChangedBlocksCount=1)
PY

img="$work/image.raw"
python3 - "$img" "$IMAGE_GIB" "$DATA_GIB" <<'PY'
import os, sys
path, image_gib, data_gib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
B = 524288
nblocks, ndata = image_gib * 2048, data_gib * 2048
step = nblocks // ndata
with open(path, "wb") as f:
    f.truncate(image_gib << 30)
    chunk = os.urandom(B * 16)
    for k in range(ndata):          # every `step`-th block holds random data
        f.seek(k * step * B)
        off = (k * 7919 % 16) * B
        f.write((chunk + chunk)[off:off + B])
PY
echo "image: $IMAGE_GIB GiB sparse, $DATA_GIB GiB data ($(du -k "$img" | cut -f1) KiB allocated); moto $ep" >&2
formats=()
for f in ${FORMATS:-}; do
  case "$f" in
    qcow2) qemu-img convert -f raw -O qcow2 "$img" "$work/image.qcow2" ;;
    vmdk) qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$img" "$work/image.vmdk" ;;
    zst) zstd -q -3 -T0 "$img" -o "$work/image.zst" ;;
    *) echo "unknown format $f in FORMATS (qcow2, vmdk, zst)" >&2; exit 2 ;;
  esac
  formats+=("$f")
  echo "image.$f: $(du -k "$work/image.$f" | cut -f1) KiB" >&2
done
[ ${#server_cpu[@]} -gt 0 ] && echo "moto pinned to CPU 0, clients to CPUs 1-$((ncpu - 1))" >&2

cpu_of() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }   # utime+stime in seconds (USER_HZ=100)
field() { sed -n "s/^[[:space:]]*$1: //p" "$2"; }

run() {  # name, command...
  local name="$1"; shift
  [ -n "$reset_url" ] && curl -sf -X POST "$reset_url" >/dev/null
  case "${CACHE:-cold}" in
    warm) cat "$img" >/dev/null ;;
    written)  # as just written: the data in the page cache, the holes never read
      sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
      python3 "$here/extents.py" --cache "$img"
      ;;
    *) sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true ;;
  esac
  local s0; s0="$(cpu_of "$server_pid")"
  "${client_cpu[@]}" /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err"
  local s1; s1="$(cpu_of "$server_pid")"
  python3 - "$name" "$work/$name.time" "$work/$name.out" "$s0" "$s1" "$DATA_GIB" <<'PY'
import json, re, sys
name, tfile, ofile, s0, s1, gib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
t = open(tfile).read()
def f(k): return re.search(r"^\s*" + re.escape(k) + r": (.*)$", t, re.M).group(1)
wall = f("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
cpu = float(f("User time (seconds)")) + float(f("System time (seconds)"))
rss = int(f("Maximum resident set size (kbytes)")) / 1024
out = open(ofile).read().strip()
try:
    o = json.loads(out[out.index("{"):])
except Exception:
    o = {}
read = o.get("bytes_read", -1)
if "seconds" in o:  # the ceiling client times itself, without its preparation
    secs = o["seconds"]
with open(tfile.rsplit("/", 1)[0] + "/results.jsonl", "a") as r:
    r.write(json.dumps({"name": name, "wall": secs, "cpu": cpu, "rss": rss, "read": read, "moto": s1 - s0}) + "\n")
print(f"{name:10s} wall {secs:7.2f} s  {gib*1024/secs:7.1f} MiB/s  client CPU {cpu:6.2f} s = {cpu/gib:5.2f} s/GiB  "
      f"peak RSS {rss:7.1f} MiB  bytes read {read/2**20:9.1f} MiB  blocks {o.get('blocks_uploaded','?')}  "
      f"retries {o.get('retries','-')}  moto CPU {s1-s0:6.2f} s")
PY
}

server_pid="$moto_pid"; reset_url="$ep/moto-api/reset"
ROUNDS="${ROUNDS:-1}"
# The order of the three clients rotates from round to round, so that none always follows the same one.
for r in $(seq 1 "$ROUNDS"); do
  case $((r % 3)) in
    1) order="zlabel boto3 ceiling" ;;
    2) order="boto3 ceiling zlabel" ;;
    *) order="ceiling zlabel boto3" ;;
  esac
  for f in "${formats[@]}"; do order="$order zlabel-$f"; done
  for client in $order; do
    case "$client" in
      zlabel)
        rm -rf "$work/state"
        run zlabel "$ZLABEL" upload "$img" --endpoint-url "$ep" --workers "$WORKERS" --json --no-progress \
            --state-dir "$work/state" ;;
      boto3) run boto3 python3 "$here/boto3_uploader.py" "$img" --endpoint-url "$ep" --threads "$THREADS" ;;
      ceiling) run ceiling python3 "$here/ceiling_client.py" "$img" --endpoint-url "$ep" --connections "$CONNECTIONS" ;;
      zlabel-*)
        rm -rf "$work/state"
        run "$client" "$ZLABEL" upload "$work/image.${client#zlabel-}" --endpoint-url "$ep" --workers "$WORKERS" \
            --json --no-progress --state-dir "$work/state" ;;
    esac
  done
done

# The same two clients against a sink that keeps connections alive, as AWS does (moto closes each one), on
# the same CPU as moto; SINK=0 skips this.
if [ "${SINK:-1}" = 1 ]; then
  coproc SINKPROC { exec "${server_cpu[@]}" python3 "$here/keepalive_sink.py"; }
  server_pid="$SINKPROC_PID"; reset_url=""
  read -r sink_line <&"${SINKPROC[0]}"
  sink="http://127.0.0.1:$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["port"])' "$sink_line")"
  for _ in $(seq 1 "$ROUNDS"); do
    rm -rf "$work/state"
    run zlabel-ka "$ZLABEL" upload "$img" --endpoint-url "$sink" --workers "$WORKERS" --json --no-progress \
        --state-dir "$work/state"
    run boto3-ka python3 "$here/boto3_uploader.py" "$img" --endpoint-url "$sink" --threads "$THREADS"
  done
  kill "$server_pid" 2>/dev/null || true
fi

python3 - "$work/results.jsonl" "$DATA_GIB" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
gib = float(sys.argv[2])
def med(name, key): return statistics.median(r[key] for r in rows if r["name"] == name)
z_wall, c_wall = med("zlabel", "wall"), med("ceiling", "wall")
z_cpu, b_cpu = med("zlabel", "cpu"), med("boto3", "cpu")
def busy(name): return statistics.median(r["moto"] / r["wall"] for r in rows if r["name"] == name)
print(f"ratios (medians of {sum(r['name'] == 'zlabel' for r in rows)} rounds):")
print(f"  zlabel throughput / moto's ceiling: {c_wall / z_wall:.2f}  (target >= 0.95; {gib*1024/z_wall:.1f} vs {gib*1024/c_wall:.1f} MiB/s)")
print(f"  zlabel client CPU / boto3's:        {z_cpu / b_cpu:.2f}  (target <= 0.30; {z_cpu/gib:.2f} vs {b_cpu/gib:.2f} s/GiB)")
print(f"  zlabel hole bytes read:             {max(0, med('zlabel', 'read') - gib * 2**30):.0f}")
print(f"  moto busy (its CPU seconds over the client's wall seconds): zlabel {busy('zlabel'):.2f}, "
      f"ceiling {busy('ceiling'):.2f}, boto3 {busy('boto3'):.2f}")
print(f"  moto CPU per run: zlabel {med('zlabel', 'moto'):.2f} s, ceiling {med('ceiling', 'moto'):.2f} s, "
      f"boto3 {med('boto3', 'moto'):.2f} s")
for fmt in sorted({r["name"][7:] for r in rows if r["name"].startswith("zlabel-") and r["name"] != "zlabel-ka"}):
    n = "zlabel-" + fmt
    print(f"  upload from {fmt}: wall {med(n, 'wall'):.2f} s ({med(n, 'wall') / z_wall:.2f}x raw's, throughput / ceiling "
          f"{c_wall / med(n, 'wall'):.2f}), client CPU {med(n, 'cpu')/gib:.2f} s/GiB ({med(n, 'cpu') / z_cpu:.2f}x raw's), "
          f"peak RSS {med(n, 'rss'):.1f} MiB (raw {med('zlabel', 'rss'):.1f})")
if any(r["name"] == "zlabel-ka" for r in rows):
    zk, bk = med("zlabel-ka", "cpu"), med("boto3-ka", "cpu")
    print(f"  with connections kept alive (keepalive_sink.py), zlabel client CPU / boto3's: {zk / bk:.2f}  "
          f"({zk/gib:.2f} vs {bk/gib:.2f} s/GiB)")
PY

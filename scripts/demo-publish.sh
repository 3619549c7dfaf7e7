#!/usr/bin/env bash
# demo-publish.sh: the main job all the way to an AMI, against a local moto instead of AWS.
#
# Starts moto_server behind the repository's strict peer (Tests/Peers/strict_ebs_peer.py: it checks every
# request as AWS would, keeps AMIs pending for a moment, and offers fake Amazon PV-GRUB kernels), then runs
#   zlabel ec2 publish disk.img --target TARGET --name ... --wait --copy-to us-west-2
# on a copy of Fixtures/disk-vtoc.img.xz. The image's labels are edited in flight only: the copy's SHA-256 is
# printed before and after. Needs python3 with moto[server] and boto3 (scripts/setup-test-env.sh installs them).
#
#   scripts/demo-publish.sh [TARGET]        TARGET: ec2-xen-hvm (default), ec2-xen-pv or ec2-nitro
#
# With ec2-xen-pv, publish refuses this fixture before sending anything (exit 3): the pool was written by
# OpenZFS 2.1, whose feature flags and 4096-byte MOS object set the ZFS-enabled pv-grub cannot read
# (`zlabel boot-view IMAGE --loader pv-grub` says why). That refusal is the demo's answer for that target.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${1:-ec2-xen-hvm}
if ! command -v swift > /dev/null; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    echo "== swift is not on PATH; using /opt/swift/usr/bin/swift"
    export PATH="/opt/swift/usr/bin:$PATH"
  else
    echo "demo-publish.sh: swift (6.1 or newer) is not on PATH; install it from https://www.swift.org/install/" >&2
    exit 1
  fi
fi
if ! command -v moto_server > /dev/null && ! python3 -c 'import moto.server' 2> /dev/null; then
  echo "moto is not installed: pip install 'moto[server]' boto3 (or run scripts/setup-test-env.sh)" >&2
  exit 1
fi

echo "== building zlabel and zlabel-ec2 (the program behind zlabel ec2)"
swift build --package-path "$ROOT" --product zlabel > /dev/null
swift build --package-path "$ROOT" --product zlabel-ec2 > /dev/null
ZLABEL="$(swift build --package-path "$ROOT" --show-bin-path)/zlabel"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zlabel-publish.XXXXXX")
IMG="$WORK/disk.img"
xz -dc "$ROOT/Fixtures/disk-vtoc.img.xz" | cp --sparse=always /dev/stdin "$IMG"

echo "== starting moto behind the strict peer"
# The peer runs until its standard input closes: file descriptor 3 holds it open until this script exits.
mkfifo "$WORK/peer.in"
python3 "$ROOT/Tests/Peers/strict_ebs_peer.py" --spawn-moto --kernels --image-delay 2 \
  < "$WORK/peer.in" > "$WORK/peer.out" &
PEER_PID=$!
exec 3> "$WORK/peer.in"
stop_peer() {  # and remove the work copy (KEEP=1 keeps it)
  exec 3>&-
  wait "$PEER_PID" 2> /dev/null || true
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap stop_peer EXIT
for _ in $(seq 300); do [ -s "$WORK/peer.out" ] && break; sleep 0.2; done
PORT=$(head -1 "$WORK/peer.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["port"])')
echo "   peer on http://127.0.0.1:$PORT"

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_EC2 AWS_ENDPOINT_URL_EBS

echo "== input: $IMG"
echo "   sha256 before: $(sha256sum "$IMG" | cut -d' ' -f1)"
echo "== zlabel ec2 publish --target $TARGET --wait --copy-to us-west-2"
"$ZLABEL" ec2 publish "$IMG" --target "$TARGET" --name "omnios demo $TARGET" --wait --copy-to us-west-2 \
  --state-dir "$WORK/state" --tag Name=omnios-demo
echo "   sha256 after:  $(sha256sum "$IMG" | cut -d' ' -f1)"
echo
echo "The two lines before the second hash are the AMI ids (us-east-1, then us-west-2), as publish prints them."
echo "Running the same publish command again would find that snapshot and those AMIs instead of making new ones."

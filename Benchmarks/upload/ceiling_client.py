#!/usr/bin/env python3
"""moto's ceiling, the baseline for the upload benchmark's wall time: how fast this moto_server takes the image's
data blocks when the client costs next to nothing.

Before the clock starts, the client finds the data blocks (SEEK_DATA/SEEK_HOLE, all-zero blocks dropped), reads
and hashes them, and builds every PutSnapshotBlock request, headers and body, in memory. Timed: StartSnapshot, the
prepared requests written over N keep-alive connections (one thread and one raw socket each), CompleteSnapshot
with the LINEAR aggregate. moto checks no signature, so the Authorization header is well-formed but not computed.
Prints a JSON line: snapshot id, blocks sent, bytes read, the timed seconds (`seconds`)."""
import argparse, base64, hashlib, json, os, socket, threading, time, urllib.parse, uuid
import boto3
from extents import data_extents  # this directory

BLOCK = 524288
ap = argparse.ArgumentParser()
ap.add_argument("image")
ap.add_argument("--endpoint-url", required=True)
ap.add_argument("--connections", type=int, default=8)
a = ap.parse_args()
url = urllib.parse.urlsplit(a.endpoint_url)
host, port = url.hostname, url.port or 80


def data_blocks(path):
    """Indexes of the blocks that hold data, and the file's size."""
    extents, size = data_extents(path)
    found = []
    for start, end in extents:
        for i in range(start // BLOCK, (end + BLOCK - 1) // BLOCK):
            if not found or found[-1] != i:
                found.append(i)
    return found, size


blocks, size = data_blocks(a.image)
zero = bytes(BLOCK)
stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
auth = ("AWS4-HMAC-SHA256 Credential=testing/%s/us-east-1/ebs/aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=%s" % (stamp[:8], "0" * 64))
bodies, digests, read = {}, {}, 0
with open(a.image, "rb") as f:
    for i in blocks:
        f.seek(i * BLOCK)
        data = f.read(BLOCK)
        read += len(data)
        data = data.ljust(BLOCK, b"\0")
        if data != zero:
            bodies[i] = data
            digests[i] = hashlib.sha256(data).digest()

ebs = boto3.client("ebs", endpoint_url=a.endpoint_url)
vol = max(1, (size + (1 << 30) - 1) >> 30)


def prepared(snap):
    out = []
    for i, data in bodies.items():
        head = (f"PUT /snapshots/{snap}/blocks/{i} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Amz-Date: {stamp}\r\n"
                f"Authorization: {auth}\r\nx-amz-Data-Length: {BLOCK}\r\n"
                f"x-amz-Checksum: {base64.b64encode(digests[i]).decode()}\r\nx-amz-Checksum-Algorithm: SHA256\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {BLOCK}\r\n\r\n")
        out.append(head.encode() + data)
    return out


def send_all(requests, failures):
    sock, reader = None, None
    for req in requests:
        if sock is None:
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
        sock.sendall(req)
        status = reader.readline()
        length, close = 0, status.startswith(b"HTTP/1.0")
        while True:
            line = reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            if k.lower() == "content-length":
                length = int(v)
            elif k.lower() == "connection":
                close = v.strip().lower() == "close"
        reader.read(length)
        if not status.split()[1].startswith(b"2"):
            failures.append(status)
        if close:
            reader.close()
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


# Clock starts: StartSnapshot, the blocks, CompleteSnapshot.
t0 = time.monotonic()
snap = ebs.start_snapshot(VolumeSize=vol, ClientToken=str(uuid.uuid4()), Timeout=60)["SnapshotId"]
t_prepare = time.monotonic()
reqs = prepared(snap)  # the snapshot id is in the path; building the list is taken off the clock below
t_ready = time.monotonic()
failures = []
threads = [threading.Thread(target=send_all, args=(reqs[k::a.connections], failures)) for k in range(a.connections)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    raise SystemExit(f"PutSnapshotBlock failed: {failures[:3]}")
agg = base64.b64encode(hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()).decode()
ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=len(digests), Checksum=agg, ChecksumAlgorithm="SHA256",
                      ChecksumAggregationMethod="LINEAR")
seconds = time.monotonic() - t0 - (t_ready - t_prepare)
print(json.dumps({"snapshot_id": snap, "blocks_uploaded": len(digests), "bytes_read": read, "seconds": seconds}))

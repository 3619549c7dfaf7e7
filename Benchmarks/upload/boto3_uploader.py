#!/usr/bin/env python3
"""Reference uploader for the benchmark: boto3, a thread pool, coldsnap's approach (read every 512 KiB block,
skip all-zero ones, PutSnapshotBlock with a SHA-256 checksum, CompleteSnapshot with the LINEAR aggregate).
Prints a JSON line: snapshot id, blocks sent, bytes read."""
import argparse, base64, concurrent.futures as cf, hashlib, json, os, threading, uuid
import boto3, botocore.config

BLOCK = 524288
ap = argparse.ArgumentParser()
ap.add_argument("image")
ap.add_argument("--endpoint-url", required=True)
ap.add_argument("--threads", type=int, default=16)
a = ap.parse_args()
cfg = botocore.config.Config(max_pool_connections=a.threads + 4, retries={"max_attempts": 5, "mode": "standard"})
ebs = boto3.client("ebs", endpoint_url=a.endpoint_url, config=cfg)
size = os.path.getsize(a.image)
vol = max(1, (size + (1 << 30) - 1) >> 30)
snap = ebs.start_snapshot(VolumeSize=vol, ClientToken=str(uuid.uuid4()), Timeout=60)["SnapshotId"]
digests, lock, read = {}, threading.Lock(), [0]
zero = bytes(BLOCK)


def put(i):
    with open(a.image, "rb") as f:
        f.seek(i * BLOCK)
        data = f.read(BLOCK)
    with lock:
        read[0] += len(data)
    data = data.ljust(BLOCK, b"\0")
    if data == zero:
        return
    d = hashlib.sha256(data).digest()
    ebs.put_snapshot_block(SnapshotId=snap, BlockIndex=i, BlockData=data, DataLength=BLOCK,
                           Checksum=base64.b64encode(d).decode(), ChecksumAlgorithm="SHA256")
    with lock:
        digests[i] = d


with cf.ThreadPoolExecutor(a.threads) as ex:
    list(ex.map(put, range((size + BLOCK - 1) // BLOCK)))
agg = base64.b64encode(hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()).decode()
ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=len(digests), Checksum=agg, ChecksumAlgorithm="SHA256",
                      ChecksumAggregationMethod="LINEAR")
print(json.dumps({"snapshot_id": snap, "blocks_uploaded": len(digests), "bytes_read": read[0]}))

#!/usr/bin/env python3
"""Reads an EBS snapshot back from moto with boto3 (an implementation independent of zlabel's) and compares
it, block by block, with the image it should hold.

The snapshot's content is its own written blocks, then (for an incremental upload) those of --parents in
order, since moto does not make a child inherit its parent's blocks as AWS does. Every written block must
equal the image's block (zero padded past the end); every block nobody wrote must be all zeros in the image.

With --write-to FILE the snapshot's content is also written to FILE, a sparse file of the image's size, so
that other tools (zdb, GRUB) can read what the snapshot holds.

Prints JSON: {"blocks_compared", "written", "mismatches": [index...], "nonzero_unwritten": [index...]}; with
--snapshot given several times (one process, one boto3 import, for many snapshots of the same image),
{"results": {SNAPSHOT: that object, ...}}.
"""
import argparse, json, os, sys
import boto3

ap = argparse.ArgumentParser()
ap.add_argument("--endpoint", required=True)
ap.add_argument("--snapshot", required=True, action="append",
                help="repeatable: each snapshot is compared with the image on its own")
ap.add_argument("--parents", default="")
ap.add_argument("--image", required=True)
ap.add_argument("--region", default="us-east-1")
ap.add_argument("--write-to", help="also write the snapshot's content to this file")
a = ap.parse_args()
BLOCK = 524288
ebs = boto3.client("ebs", endpoint_url=a.endpoint, region_name=a.region, aws_access_key_id="testing",
                   aws_secret_access_key="testing")


def blocks(snap):
    out, token = {}, None
    while True:
        kw = {"SnapshotId": snap}
        if token:
            kw["NextToken"] = token
        r = ebs.list_snapshot_blocks(**kw)
        for b in r.get("Blocks", []):
            out[int(b["BlockIndex"])] = (snap, b["BlockToken"])
        token = r.get("NextToken")
        if not token:
            return out


def compare(snapshot, parents, write_to):
    effective = {}
    for snap in [snapshot] + parents:
        for i, v in blocks(snap).items():
            effective.setdefault(i, v)

    size = os.path.getsize(a.image)
    mismatches, nonzero_unwritten, compared = [], [], 0
    out = None
    if write_to:
        out = open(write_to, "wb")
        out.truncate(size)
    with open(a.image, "rb") as f:
        for i in sorted(effective):
            f.seek(i * BLOCK)
            want = f.read(BLOCK).ljust(BLOCK, b"\0")
            snap, token = effective[i]
            got = ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=i, BlockToken=token)["BlockData"].read()
            compared += 1
            if out and i * BLOCK < size:
                out.seek(i * BLOCK)
                out.write(got[:size - i * BLOCK])
            if got != want:
                mismatches.append(i)
        # Blocks nobody wrote must be zero in the image; look only at its data extents.
        pos = 0
        while pos < size:
            try:
                d = os.lseek(f.fileno(), pos, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(f.fileno(), d, os.SEEK_HOLE)
            for i in range(d // BLOCK, (h + BLOCK - 1) // BLOCK):
                if i in effective:
                    continue
                f.seek(i * BLOCK)
                if f.read(BLOCK).strip(b"\0"):
                    nonzero_unwritten.append(i)
            pos = h
    if out:
        out.close()
    return {"blocks_compared": compared, "written": len(effective), "mismatches": mismatches,
            "nonzero_unwritten": sorted(set(nonzero_unwritten))}


parents = [p for p in a.parents.split(",") if p]
if len(a.snapshot) == 1:
    print(json.dumps(compare(a.snapshot[0], parents, a.write_to)))
else:
    if a.write_to:
        sys.exit("--write-to takes one --snapshot")
    print(json.dumps({"results": {s: compare(s, parents, None) for s in a.snapshot}}))

#!/usr/bin/env python3
"""Signs the requests zlabel sends (EBS direct API and EC2 Query API) with botocore's SigV4Auth at a fixed
time, and prints one JSON document: {"cases": [{"name", "spec", "canonical_request", "string_to_sign",
"signature", "authorization"}]}.

The oracle itself is Tests/Oracle/sigv4_botocore.py (or $SIGV4_ORACLE).
botocore-sigv4.json beside this script is the committed output; the Swift tests compare the signer with it
always, and with a fresh run of this script when botocore is installed.

Usage: botocore_sigv4_vectors.py [--check FILE]   (--check: exit 1 if FILE differs from a fresh run)
"""
import base64, hashlib, importlib.util, json, os, sys

here = os.path.dirname(os.path.realpath(__file__))
oracle = os.environ.get("SIGV4_ORACLE") or os.path.normpath(
    os.path.join(here, "..", "..", "Oracle", "sigv4_botocore.py"))
spec = importlib.util.spec_from_file_location("sigv4_botocore", oracle)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+example/token=="
block = bytes((i * 7 + 3) & 0xFF for i in range(524288))
checksum = base64.b64encode(hashlib.sha256(block).digest()).decode()
agg = base64.b64encode(hashlib.sha256(hashlib.sha256(block).digest()).digest()).decode()
start_body = json.dumps({"VolumeSize": 8, "ClientToken": "3f1c6a52-5b8e-4d7e-9b7a-2d0c1e9f4a11",
                         "Description": "omnios r151050 (zlabel)", "Timeout": 60,
                         "Tags": [{"Key": "Name", "Value": "omnios"}]}, separators=(",", ":"))

def case(name, method, url, headers=None, body=None, body_b64=None, region="us-east-1", service="ebs",
         unsigned=False):
    out = []
    for tok in (None, TOKEN):
        s = {"method": method, "url": url, "headers": headers or {}, "region": region, "service": service,
             "access_key": AK, "secret_key": SK, "session_token": tok, "timestamp": "20260115T093012Z",
             "unsigned_payload": unsigned}
        if body is not None: s["body"] = body
        if body_b64 is not None: s["body_b64"] = body_b64
        r = mod.sign(s)
        out.append({"name": name + ("+token" if tok else ""), "spec": s,
                    "canonical_request": r["canonical_request"], "string_to_sign": r["string_to_sign"],
                    "signature": r["signature"], "authorization": r["authorization"]})
    return out

cases = []
for base in ("https://ebs.us-east-1.amazonaws.com", "http://127.0.0.1:45011"):
    tag = "aws" if base.startswith("https") else "loopback"
    cases += case(f"PutSnapshotBlock/{tag}", "PUT", base + "/snapshots/snap-0123456789abcdef0/blocks/7",
                  headers={"x-amz-Data-Length": "524288", "x-amz-Checksum": checksum,
                           "x-amz-Checksum-Algorithm": "SHA256"},
                  body_b64=base64.b64encode(block).decode(), unsigned=True)
    cases += case(f"PutSnapshotBlock+progress/{tag}", "PUT", base + "/snapshots/snap-0123456789abcdef0/blocks/16383",
                  headers={"x-amz-Data-Length": "524288", "x-amz-Checksum": checksum,
                           "x-amz-Checksum-Algorithm": "SHA256", "x-amz-Progress": "42"},
                  body_b64=base64.b64encode(block).decode(), unsigned=True)
    cases += case(f"StartSnapshot/{tag}", "POST", base + "/snapshots",
                  headers={"Content-Type": "application/json"}, body=start_body)
    cases += case(f"CompleteSnapshot/{tag}", "POST", base + "/snapshots/completion/snap-0123456789abcdef0",
                  headers={"x-amz-ChangedBlocksCount": "1", "x-amz-Checksum": agg,
                           "x-amz-Checksum-Algorithm": "SHA256", "x-amz-Checksum-Aggregation-Method": "LINEAR"})
    cases += case(f"ListSnapshotBlocks/{tag}", "GET",
                  base + "/snapshots/snap-0123456789abcdef0/blocks?maxResults=10000&pageToken=AAE%2Babc%2F%3D%3D"
                  "&startingBlockIndex=0")
    cases += case(f"GetSnapshotBlock/{tag}", "GET",
                  base + "/snapshots/snap-0123456789abcdef0/blocks/7?blockToken=EXAMPLEc2U%2BdG9rZW4%2F%3D")
ec2 = "Action=DescribeSnapshots&Version=2016-11-15&SnapshotId.1=snap-0123456789abcdef0"
cases += case("DescribeSnapshots/aws", "POST", "https://ec2.eu-west-1.amazonaws.com/",
              headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body=ec2,
              region="eu-west-1", service="ec2")
cases += case("DescribeSnapshots/loopback", "POST", "http://127.0.0.1:45011/",
              headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body=ec2,
              service="ec2")
reg = ("Action=RegisterImage&Version=2016-11-15&Name=omnios-r151050&Architecture=x86_64&VirtualizationType=hvm"
       "&RootDeviceName=%2Fdev%2Fxvda&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fxvda"
       "&BlockDeviceMapping.1.Ebs.SnapshotId=snap-0123456789abcdef0&Description=OmniOS%20r151050%20%28test%29")
cases += case("RegisterImage/aws", "POST", "https://ec2.us-east-1.amazonaws.com/",
              headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body=reg, service="ec2")
# Header values that need trimming and collapsing, and a path with dot and empty segments, for the signer's
# slow paths (the usual requests take a fast path that returns values and paths unchanged).
cases += case("Whitespace+dots/loopback", "GET", "http://127.0.0.1:45011/a/./b/../c//d/",
              headers={"X-Amz-Meta-Spaces": "  two  inner\tspaces  ", "X-Amz-Meta-Plain": "one value",
                       "X-Amz-Meta-Lines": "first\r\n second", "X-Amz-Meta-Empty": ""})

doc = {"cases": cases}
# Bodies of PutSnapshotBlock are 512 KiB; keep the committed file small by describing the block instead.
for c in doc["cases"]:
    if c["spec"].get("body_b64") and len(c["spec"]["body_b64"]) > 1000:
        c["spec"]["body_b64"] = None
        c["spec"]["body_pattern"] = "i*7+3 mod 256, 524288 bytes"
text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
if len(sys.argv) == 3 and sys.argv[1] == "--check":
    same = open(sys.argv[2]).read() == text
    print("botocore vectors:", "identical" if same else "DIFFERENT")
    sys.exit(0 if same else 1)
sys.stdout.write(text)

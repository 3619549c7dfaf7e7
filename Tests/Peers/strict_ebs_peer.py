#!/usr/bin/env python3
"""A strict, fault-injecting EBS/EC2 peer that stands in front of moto_server (Python stdlib only).

moto accepts almost anything on the EBS direct APIs. This peer rejects what AWS rejects, with AWS-shaped JSON
errors, and otherwise forwards to moto:
  * every EBS request: a SigV4 Authorization header whose signature verifies (secret --secret), a credential
    scope for service `ebs`, an x-amz-date within 15 minutes, and the headers each call must sign;
  * StartSnapshot: VolumeSize 1..65536; ClientToken idempotency (same token, same snapshot; different
    parameters with a used token: 409 ConflictException); answers 201 with BlockSize 524288;
  * PutSnapshotBlock: known, pending snapshot; 0 <= index < VolumeSize*2048; x-amz-Data-Length 524288 and a
    524288-byte body; SHA256 checksum that matches the body;
  * CompleteSnapshot: x-amz-ChangedBlocksCount equal to the blocks written, LINEAR aggregate checksum equal
    to SHA-256 over the raw block digests in index order; the snapshot goes pending -> completed after
    --complete-delay seconds, and EC2 DescribeSnapshots reports that state (moto says completed at once).
Faults are injected on a seeded schedule (--seed, --faults): the decision for the k-th attempt of one
operation on one key (snapshot token or block index) is a hash of (seed, op, key, k), so it does not depend on
how concurrent requests interleave. At most --max-faults-per-key faults hit one key, so a client that retries
correctly always finishes.
  throttle  400 RequestThrottledException (x-amzn-ErrorType with a ':' suffix, as AWS sends it)
  5xx       500 InternalServerException (JSON) or 503 with an HTML page (as moto/ELB do)
  reset     TCP reset (SO_LINGER 0) before or after the request reached moto
  stall     no answer for --stall-seconds, then the connection is closed
  notfound  (--notfound-window S) PutSnapshotBlock gets 404 ResourceNotFoundException for S seconds from
            the snapshot's first block, as EBS does right after a snapshot is created
--deny put|start|complete answers that call with 403 AccessDeniedException every time.
--ignore-client-token makes StartSnapshot behave as moto does (every request starts a new snapshot, whatever its
ClientToken), which is also what a client meets when AWS no longer remembers a token: a client must then find
its snapshot by other means.
--lose-start-answers N: the first N StartSnapshot requests that create a snapshot are carried out and then the
connection is reset, so the client never sees the id (deterministic, unlike the seeded `reset` fault).

AMIs (moto stores only Name and Description of RegisterImage, accepts snapshots that do not exist and makes
every image available at once, so the peer keeps the AMIs itself and forwards only to keep moto's copy for
CopyImage, ModifyImageAttribute and DescribeImageAttribute):
  * RegisterImage: Name 3..128 characters of letters, digits and ()[] ./-'@_, unique per region
    (InvalidAMIName.Duplicate); VirtualizationType and Architecture present and valid; RootDeviceName among the
    mappings; every Ebs.SnapshotId a snapshot started through this peer, in this region, completed; VolumeSize
    at least the snapshot's and within the type's limits; paravirtual needs an existing aki- KernelId of the
    same architecture and takes no EnaSupport or BootMode; hvm takes no KernelId or RamdiskId;
  * DescribeImages is answered from the peer's store: ImageId, Owner (self, amazon, account), filters name
    (with * and ?), image-type, architecture, state, image-id; pages of --images-page-size with NextToken;
    an image is pending for --image-delay seconds and for the first --image-pending-polls listings of it
    (so a test can count on seeing it pending), then available, or failed when its name contains --image-fail
    or it is a copy into a region of --copy-fail;
  * CopyImage: the source must exist in SourceRegion and be available; ClientToken idempotency (same token,
    same image; other parameters: IdempotentParameterMismatch);
  * ModifyImageAttribute: a known image, 12-digit account ids; CreateTags recorded on known images;
  * --deny-register-times N: the first N RegisterImage requests get 403 UnauthorizedOperation (an interrupted
    publish, for resume tests).
--kernels seeds fake Amazon PV-GRUB kernel images (hd0/hd00, versions 1.04 and 1.05, x86_64 and i386, plus a
look-alike from another owner) in every region of --kernel-regions. --unlisted-kernel REGION:ARCH:AKI adds a kernel
that RegisterImage accepts but DescribeImages lists only when asked for by id (a region whose listing has none).
--ec2-faults throttle=P,5xx=P,lost=P injects faults into those EC2 actions: 503 RequestLimitExceeded, a 500
InternalError or a 503 HTML page, or `lost`: the action is carried out and then the connection is reset, so
the client's retry must be idempotent.

Control: GET /_peer/stats (JSON counters, snapshots, images, kernels), POST /_peer/delete?snapshot=ID (the
snapshot disappears).
Start: prints one JSON line {"port": P, "upstream": URL} on stdout when ready; exits when stdin closes (so it
never outlives the test that started it). With --spawn-moto it starts moto_server itself on a free loopback
port and stops it on exit; exit code 77 when moto is not installed.
"""
import argparse, base64, hashlib, hmac, http.client, http.server, json, os, random, re, shutil, signal
import socket, socketserver, struct, subprocess, sys, threading, time, urllib.parse, urllib.request
import fnmatch
from xml.sax.saxutils import escape as xml_escape

BLOCK = 524288
ACCOUNT = "123456789012"   # moto's default account
AMI_NAME_RE = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$")
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
REQUIRED_SIGNED = {
    "PutSnapshotBlock": {"host", "x-amz-date", "x-amz-checksum", "x-amz-checksum-algorithm", "x-amz-data-length",
                         "x-amz-content-sha256"},
    "CompleteSnapshot": {"host", "x-amz-date", "x-amz-changedblockscount", "x-amz-checksum",
                         "x-amz-checksum-algorithm", "x-amz-checksum-aggregation-method"},
    "StartSnapshot": {"host", "x-amz-date", "content-type"},
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.snaps = {}        # id -> dict(volume, state, written{idx: digest}, started, completing_at, token)
        self.tokens = {}       # client token -> (params, start response dict)
        self.token_locks = {}  # client token -> lock
        self.attempts = {}     # (op, key) -> attempts seen
        self.faults = {}       # kind -> count
        self.requests = {}     # op -> count
        self.rejections = []   # strings
        self.deleted = set()
        self.faulted_keys = {}  # (op,key) -> faults injected
        self.denied = 0
        self.faults_spec = self.parse_spec(args.faults)
        self.ec2_faults_spec = self.parse_spec(args.ec2_faults)
        self.images = {}       # image id -> dict (see register_image)
        self.copy_tokens = {}  # (region, client token) -> (params, image id)
        self.kernels = {}      # region -> [image ids]
        if args.kernels:
            for region in args.kernel_regions.split(","):
                self.seed_kernels(region)
        for spec in args.unlisted_kernel or []:
            region, arch, kid = spec.split(":")
            self.images[kid] = {
                "id": kid, "region": region, "name": f"pv-grub-hd0_1.05-{arch}.gz", "description": "unlisted",
                "owner": "amazon", "type": "kernel", "arch": arch, "virt": "paravirtual", "kernel": None,
                "root": None, "mappings": [], "ena": False, "boot_mode": None, "imds": None, "tags": {},
                "created": time.time(), "ready_at": 0, "fail": None, "launch_users": [], "source": None,
                "deregistered": False, "unlisted": True}

    @staticmethod
    def parse_spec(text):
        spec = {}
        for part in filter(None, (text or "").split(",")):
            k, _, v = part.partition("=")
            spec[k.strip()] = float(v)
        return spec

    def seed_kernels(self, region):
        ids = []
        specs = [(f"pv-grub-{v}_{ver}-{arch}.gz", arch, "amazon")
                 for v in ("hd0", "hd00") for ver in ("1.04", "1.05") for arch in ("x86_64", "i386")]
        specs.append(("pv-grub-hd0_9.99-x86_64.gz", "x86_64", "210987654321"))  # a look-alike, not Amazon's
        specs.append(("pv-grub-hd00_9.99-x86_64.gz", "x86_64", "210987654321"))
        for name, arch, owner in specs:
            kid = "aki-" + os.urandom(4).hex()
            self.images[kid] = {
                "id": kid, "region": region, "name": name, "description": "PV-GRUB " + name, "owner": owner,
                "type": "kernel", "arch": arch, "virt": "paravirtual", "kernel": None, "root": None,
                "mappings": [], "ena": False, "boot_mode": None, "imds": None, "tags": {}, "created": time.time(),
                "ready_at": 0, "fail": None, "launch_users": [], "source": None, "deregistered": False}
            if owner == "amazon":
                ids.append(kid)
        self.kernels[region] = ids

    def image_state(self, img):
        if img["deregistered"]:
            return "deregistered"
        if time.time() < img["ready_at"] or img.get("pending_polls", 0) > 0:
            return "pending"
        return "failed" if img["fail"] else "available"

    def snapshot_state(self, s):
        if s["state"] == "completing" and time.time() - s["completing_at"] >= self.args.complete_delay:
            s["state"] = "completed"
        return s["state"]

    def fault_for(self, op, key, spec=None, kinds=("throttle", "5xx", "reset", "stall")):
        """The fault (or None) for the next attempt of op on key."""
        spec = self.faults_spec if spec is None else spec
        with self.lock:
            n = self.attempts.get((op, key), 0) + 1
            self.attempts[(op, key)] = n
            if self.faulted_keys.get((op, key), 0) >= self.args.max_faults_per_key:
                return None, n
            h = hashlib.sha256(f"{self.args.seed}:{op}:{key}:{n}".encode()).digest()
            u = int.from_bytes(h[:8], "big") / 2**64
            acc = 0.0
            for kind in kinds:
                p = spec.get(kind, 0.0)
                if u < acc + p:
                    self.faulted_keys[(op, key)] = self.faulted_keys.get((op, key), 0) + 1
                    self.faults[kind] = self.faults.get(kind, 0) + 1
                    return (kind, h[8]), n
                acc += p
            return None, n


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "strict-ebs-peer"

    def log_message(self, fmt, *a):
        if self.server.state.args.verbose:
            sys.stderr.write("peer: " + fmt % a + "\n")

    # ---- plumbing -------------------------------------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def aws_error(self, status, etype, message, reason=None, suffix=""):
        body = {"Message": message}
        if reason:
            body["Reason"] = reason
        self.send(status, json.dumps(body).encode(),
                  [("x-amzn-ErrorType", etype + suffix), ("Content-Type", "application/json"),
                   ("x-amzn-RequestId", "peer-" + hashlib.sha1(os.urandom(8)).hexdigest()[:12])])

    def reject(self, op, status, etype, message, reason=None):
        st = self.server.state
        with st.lock:
            st.rejections.append(f"{op}: {etype} {reason or ''} {message}")
        self.aws_error(status, etype, message, reason)

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def forward(self, body):
        up = self.server.state.args.upstream_parsed
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        hdrs["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        out = (r.status, [(k, v) for k, v in r.getheaders()
                          if k.lower() not in ("content-length", "connection", "transfer-encoding")], data)
        conn.close()
        return out

    def relay(self, resp):
        status, headers, data = resp
        self.send(status, data, headers)

    # ---- SigV4 check ----------------------------------------------------------------------------------
    def check_signature(self, op, service, body):
        """Returns an error message, or None when the request is signed as AWS requires."""
        auth = self.headers.get("Authorization")
        if not auth:
            return "no Authorization header"
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$", auth)
        if not m:
            return "malformed Authorization header"
        ak, day, region, svc, signed, sig = m.groups()
        if svc != service:
            return f"credential scope names service {svc}, expected {service}"
        amz_date = self.headers.get("X-Amz-Date") or ""
        if not amz_date.startswith(day):
            return "X-Amz-Date does not match the credential scope date"
        try:
            t = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
        except ValueError:
            return "bad X-Amz-Date"
        if abs(time.time() - t) > 900:
            return "RequestTimeTooSkewed"
        names = signed.split(";")
        need = set(REQUIRED_SIGNED.get(op, {"host", "x-amz-date"}))
        if self.headers.get("X-Amz-Security-Token"):
            need.add("x-amz-security-token")
        missing = need - set(names)
        if missing:
            return "headers not signed: " + ",".join(sorted(missing))
        path, _, query = self.path.partition("?")
        canon_path = urllib.parse.quote(path, safe="/~")
        pairs = sorted(tuple(p.partition("=")[::2]) for p in query.split("&")) if query else []
        canon_query = "&".join(f"{k}={v}" for k, v in pairs)
        lines = []
        for n in names:
            vals = self.headers.get_all(n) or []
            if not vals:
                return f"signed header {n} is missing"
            lines.append(n + ":" + ",".join(" ".join(v.split()) for v in vals))
        payload = self.headers.get("X-Amz-Content-SHA256") or hashlib.sha256(body).hexdigest()
        creq = "\n".join([self.command, canon_path, canon_query, "\n".join(lines) + "\n", signed, payload])
        scope = f"{day}/{region}/{svc}/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
        key = ("AWS4" + self.server.state.args.secret).encode()
        for part in (day, region, svc, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if want != sig:
            return "SignatureDoesNotMatch"
        return None

    # ---- fault injection ------------------------------------------------------------------------------
    def maybe_fault(self, op, key, body, before_forward=True):
        """Injects the scheduled fault. Returns True when the request has been answered (or killed)."""
        st = self.server.state
        fault, attempt = st.fault_for(op, key)
        if not fault:
            return False
        kind, bits = fault
        after = bits & 1 == 1 and op in ("StartSnapshot", "PutSnapshotBlock")
        if after:  # the request reaches moto, then the answer is lost: the retry must be idempotent
            try:
                self.forward(body)
            except OSError:
                pass
        if kind == "throttle":
            self.aws_error(400, "RequestThrottledException", "Rate exceeded", "RESOURCE_LEVEL_THROTTLE",
                           suffix=":http://internal.amazon.com/coral/com.amazon.coral.service/")
        elif kind == "5xx":
            if bits & 2:
                self.aws_error(500, "InternalServerException", "We encountered an internal error")
            else:
                self.send(503, b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                          [("Content-Type", "text/html")])
        elif kind == "reset":
            self.reset()
        elif kind == "stall":
            time.sleep(st.args.stall_seconds)
            self.reset()
        return True

    # ---- routes ---------------------------------------------------------------------------------------
    def do_GET(self):
        st = self.server.state
        if self.path.startswith("/_peer/stats"):
            with st.lock:
                per_block = [n for (op, _), n in st.attempts.items() if op == "PutSnapshotBlock"]
                doc = {"requests": st.requests, "faults": st.faults, "rejections": st.rejections,
                       "denied": st.denied,
                       "max_put_attempts_per_block": max(per_block) if per_block else 0,
                       "snapshots": {k: {"state": st.snapshot_state(v), "written": len(v["written"]),
                                         "volume": v["volume"]} for k, v in st.snaps.items()},
                       "images": {k: self.image_json(v) for k, v in st.images.items() if v["type"] == "machine"},
                       "kernels": {r: [self.image_json(st.images[i]) for i in ids] for r, ids in st.kernels.items()}}
            return self.send(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        self.count("GET")
        self.relay(self.forward(b""))

    def do_PUT(self):
        body = self.read_body()
        if len(body) < int(self.headers.get("Content-Length") or 0):
            # The client went away mid-request (the kill-and-resume test kills it): AWS would never see a
            # whole request either, so nothing is answered and nothing counts as a rejection.
            self.close_connection = True
            return
        m = re.match(r"^/snapshots/([^/?]+)/blocks/([^/?]+)$", self.path)
        if not m:
            return self.relay(self.forward(body))
        self.put_block(m.group(1), m.group(2), body)

    def do_POST(self):
        body = self.read_body()
        st = self.server.state
        if self.path.startswith("/_peer/delete"):
            sid = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["snapshot"][0]
            with st.lock:
                st.deleted.add(sid)
            return self.send(200, b"{}")
        if self.path == "/snapshots":
            return self.start_snapshot(body)
        m = re.match(r"^/snapshots/completion/([^/?]+)$", self.path)
        if m:
            return self.complete_snapshot(m.group(1), body)
        if self.path == "/" and b"Action=DescribeSnapshots" in body:
            return self.describe_snapshots(body)
        if self.path == "/":
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace"),
                                                                 keep_blank_values=True).items()}
            if params.get("Action") in self.EC2_ACTIONS:
                return self.ec2_action(params, body)
        self.count("POST other")
        self.relay(self.forward(body))

    def count(self, op):
        st = self.server.state
        with st.lock:
            st.requests[op] = st.requests.get(op, 0) + 1

    def start_snapshot(self, body):
        op = "StartSnapshot"
        self.count(op)
        st = self.server.state
        err = self.check_signature(op, "ebs", body)
        if err:
            return self.reject(op, 403, "AccessDeniedException", err)
        if st.args.deny == "start":
            st.denied += 1
            return self.aws_error(403, "AccessDeniedException", "not authorized", "UNAUTHORIZED_ACCOUNT")
        try:
            req = json.loads(body)
        except ValueError:
            return self.reject(op, 400, "ValidationException", "body is not JSON", "INVALID_PARAMETER_VALUE")
        vol = req.get("VolumeSize")
        if not isinstance(vol, int) or not 1 <= vol <= 65536:
            return self.reject(op, 400, "ValidationException", "bad VolumeSize", "INVALID_VOLUME_SIZE")
        token = req.get("ClientToken")
        if not token:
            return self.reject(op, 400, "ValidationException", "no ClientToken (zlabel always sends one)",
                               "INVALID_PARAMETER_VALUE")
        params = {k: v for k, v in req.items() if k != "ClientToken"}
        # Requests with one token are handled one at a time, as AWS's idempotency does: a retry that arrives
        # while the first attempt is still inside moto waits for it and then gets the same snapshot.
        with st.lock:
            tlock = st.token_locks.setdefault(token, threading.Lock())
        with tlock:
            self.start_snapshot_locked(op, st, req, vol, token, params, body)

    def start_snapshot_locked(self, op, st, req, vol, token, params, body):
        with st.lock:
            seen = None if st.args.ignore_client_token else st.tokens.get(token)
        if seen:
            if seen[0] != params:
                return self.reject(op, 409, "ConflictException", "ClientToken reused with other parameters")
            if self.maybe_fault(op, token, b""):
                return
            return self.send(201, json.dumps(seen[1]).encode(), [("Content-Type", "application/json")])
        # A fault before forwarding loses the request; after forwarding (inside maybe_fault) loses the answer,
        # and then the snapshot exists in moto but the peer remembers the token only once it has the id.
        fault, _ = st.fault_for(op, token)
        if fault and not (fault[1] & 1):
            return self.inject(fault[0], fault[1])
        status, headers, data = self.forward(body)
        if status not in (200, 201):
            return self.send(status, data, headers)
        out = json.loads(data)
        out["BlockSize"] = BLOCK
        sid = out["SnapshotId"]
        with st.lock:
            st.snaps[sid] = {"volume": vol, "state": "pending", "written": {}, "started": time.time(),
                             "region": self.scope_region(),
                             "completing_at": None, "encrypted": bool(req.get("Encrypted"))}
            st.tokens[token] = (params, out)
        if fault:  # the answer is lost; the retry with the same token must get the same snapshot
            return self.inject(fault[0], fault[1] & ~1)
        with st.lock:
            lose = st.args.lose_start_answers > 0
            if lose:
                st.args.lose_start_answers -= 1
                st.faults["lost-start"] = st.faults.get("lost-start", 0) + 1
        if lose:
            return self.reset()
        self.send(201, json.dumps(out).encode(), [("Content-Type", "application/json")])

    def inject(self, kind, bits):
        if kind == "throttle":
            self.aws_error(400, "RequestThrottledException", "Rate exceeded", "ACCOUNT_THROTTLED")
        elif kind == "5xx":
            self.aws_error(500, "InternalServerException", "internal error")
        elif kind == "reset":
            self.reset()
        else:
            time.sleep(self.server.state.args.stall_seconds)
            self.reset()

    def lookup(self, op, sid):
        st = self.server.state
        with st.lock:
            s = st.snaps.get(sid)
            gone = sid in st.deleted
        if s is None or gone:
            self.aws_error(404, "ResourceNotFoundException", f"The snapshot '{sid}' does not exist.",
                           "SNAPSHOT_NOT_FOUND")
            return None
        return s

    def put_block(self, sid, index, body):
        op = "PutSnapshotBlock"
        self.count(op)
        st = self.server.state
        err = self.check_signature(op, "ebs", body)
        if err:
            return self.reject(op, 403, "AccessDeniedException", err)
        s = self.lookup(op, sid)
        if s is None:
            return
        if st.args.deny == "put":
            with st.lock:
                st.denied += 1
                st.attempts[(op, index)] = st.attempts.get((op, index), 0) + 1
            return self.aws_error(403, "AccessDeniedException", "User is not authorized to perform "
                                  "ebs:PutSnapshotBlock", "UNAUTHORIZED_ACCOUNT")
        # The window opens at the snapshot's first PutSnapshotBlock rather than at StartSnapshot, so that a client
        # slowed down by a busy machine still meets it (the client's own window runs from StartSnapshot and is
        # longer).
        with st.lock:
            first_put = s.setdefault("first_put", time.time())
        if time.time() - first_put < st.args.notfound_window:
            with st.lock:
                st.faults["notfound"] = st.faults.get("notfound", 0) + 1
                st.attempts[(op, index)] = st.attempts.get((op, index), 0) + 1
            return self.aws_error(404, "ResourceNotFoundException", f"The snapshot '{sid}' does not exist.",
                                  "SNAPSHOT_NOT_FOUND")
        if st.snapshot_state(s) != "pending":
            return self.reject(op, 400, "ValidationException", "snapshot is not pending", "INVALID_SNAPSHOT_ID")
        if not re.fullmatch(r"\d+", index) or int(index) >= s["volume"] * 2048:
            return self.reject(op, 400, "ValidationException", f"block index {index} out of range", "INVALID_BLOCK")
        if self.headers.get("x-amz-Data-Length") != str(BLOCK) or len(body) != BLOCK:
            return self.reject(op, 400, "ValidationException",
                               f"data length {self.headers.get('x-amz-Data-Length')}/{len(body)} is not {BLOCK}",
                               "INVALID_PARAMETER_VALUE")
        if self.headers.get("x-amz-Checksum-Algorithm") != "SHA256":
            return self.reject(op, 400, "ValidationException", "checksum algorithm must be SHA256",
                               "INVALID_PARAMETER_VALUE")
        digest = hashlib.sha256(body).digest()
        if self.headers.get("x-amz-Checksum") != base64.b64encode(digest).decode():
            return self.reject(op, 400, "ValidationException", "checksum does not match the data", "INVALID_BLOCK")
        if self.maybe_fault(op, index, body):
            return
        status, headers, data = self.forward(body)
        if status == 201:
            with st.lock:
                s["written"][int(index)] = digest
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        self.send(status, data, headers)

    def complete_snapshot(self, sid, body):
        op = "CompleteSnapshot"
        self.count(op)
        st = self.server.state
        err = self.check_signature(op, "ebs", body)
        if err:
            return self.reject(op, 403, "AccessDeniedException", err)
        s = self.lookup(op, sid)
        if s is None:
            return
        if st.args.deny == "complete":
            st.denied += 1
            return self.aws_error(403, "AccessDeniedException", "not authorized", "UNAUTHORIZED_ACCOUNT")
        state = st.snapshot_state(s)
        if state in ("completing", "completed"):  # idempotent repeat
            return self.send(202, json.dumps({"Status": "pending" if state == "completing" else state}).encode())
        with st.lock:
            written = dict(s["written"])
        count = self.headers.get("x-amz-ChangedBlocksCount")
        if count != str(len(written)):
            return self.reject(op, 400, "ValidationException",
                               f"ChangedBlocksCount {count} but {len(written)} blocks were written",
                               "INVALID_PARAMETER_VALUE")
        if (self.headers.get("x-amz-Checksum-Algorithm") != "SHA256"
                or self.headers.get("x-amz-Checksum-Aggregation-Method") != "LINEAR"):
            return self.reject(op, 400, "ValidationException", "aggregate checksum must be SHA256/LINEAR",
                               "INVALID_PARAMETER_VALUE")
        agg = base64.b64encode(hashlib.sha256(b"".join(written[i] for i in sorted(written))).digest()).decode()
        if self.headers.get("x-amz-Checksum") != agg:
            return self.reject(op, 400, "ValidationException", "aggregate checksum does not match the blocks",
                               "INVALID_PARAMETER_VALUE")
        if self.maybe_fault(op, sid, body):
            return
        status, headers, data = self.forward(body)
        if status not in (200, 202):
            return self.send(status, data, headers)
        with st.lock:
            s["state"] = "completing"
            s["completing_at"] = time.time()
        self.send(202, json.dumps({"Status": "pending"}).encode(), [("Content-Type", "application/json")])

    def describe_snapshots(self, body):
        op = "DescribeSnapshots"
        self.count(op)
        st = self.server.state
        err = self.check_signature(op, "ec2", body)
        if err:
            return self.reject(op, 403, "AuthFailure", err)
        ids = [v[0] for k, v in urllib.parse.parse_qs(body.decode()).items() if k.startswith("SnapshotId.")]
        with st.lock:
            gone = [i for i in ids if i in st.deleted]
        if gone:
            xml = ('<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidSnapshot.NotFound'
                   f'</Code><Message>The snapshot \'{gone[0]}\' does not exist.</Message></Error></Errors>'
                   '<RequestID>peer</RequestID></Response>')
            return self.send(400, xml.encode(), [("Content-Type", "text/xml")])
        status, headers, data = self.forward(body)
        text = data.decode()
        with st.lock:
            for sid, s in st.snaps.items():
                state = st.snapshot_state(s)
                if state == "completing":  # the peer's own name; EC2 says pending until the snapshot is done
                    state = "pending"
                prog = "100%" if state == "completed" else "42%"
                text = re.sub(r"(<snapshotId>%s</snapshotId>.*?<status>)\w+(</status>.*?<progress>)[^<]*(</progress>)"
                              % re.escape(sid), r"\g<1>%s\g<2>%s\g<3>" % (state, prog), text, flags=re.S)
        self.send(status, text.encode(), headers)

    # ---- EC2 images -----------------------------------------------------------------------------------
    EC2_ACTIONS = ("RegisterImage", "DescribeImages", "CopyImage", "ModifyImageAttribute", "CreateTags",
                   "DeregisterImage")

    def scope_region(self):
        m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", self.headers.get("Authorization") or "")
        return m.group(1) if m else "us-east-1"

    def ec2_xml(self, status, action, inner):
        doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
               f'<requestId>peer-{os.urandom(6).hex()}</requestId>{inner}</{action}Response>')
        return status, doc.encode()

    @staticmethod
    def ec2_error_body(code, message):
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s'
                '</Message></Error></Errors><RequestID>peer-%s</RequestID></Response>'
                % (xml_escape(code), xml_escape(message), os.urandom(6).hex())).encode()

    def ec2_reject(self, action, code, message, status=400, record=True):
        """An EC2 error; recorded as a rejection (something AWS refuses that zlabel should never send)."""
        if record:
            st = self.server.state
            with st.lock:
                st.rejections.append(f"{action}: {code} {message}")
        return status, self.ec2_error_body(code, message)

    def ec2_action(self, params, body):
        st = self.server.state
        action = params["Action"]
        self.count(action)
        err = self.check_signature(action, "ec2", body)
        if err:
            with st.lock:
                st.rejections.append(f"{action}: AuthFailure {err}")
            return self.send(401, self.ec2_error_body("AuthFailure", err), [("Content-Type", "text/xml")])
        key = {"RegisterImage": params.get("Name"), "CopyImage": params.get("ClientToken"),
               "ModifyImageAttribute": params.get("ImageId"), "CreateTags": params.get("ResourceId.1"),
               }.get(action) or "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        fault, _ = st.fault_for(action, key, st.ec2_faults_spec, kinds=("throttle", "5xx", "lost"))
        if fault and fault[0] == "throttle":
            return self.send(503, self.ec2_error_body("RequestLimitExceeded", "Request limit exceeded."),
                             [("Content-Type", "text/xml")])
        if fault and fault[0] == "5xx":
            if fault[1] & 2:
                return self.send(500, self.ec2_error_body("InternalError", "An internal error has occurred"),
                                 [("Content-Type", "text/xml")])
            return self.send(503, b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                             [("Content-Type", "text/html")])
        region = self.scope_region()
        handler = getattr(self, "ec2_" + re.sub(r"(?<!^)([A-Z])", r"_\1", action).lower())
        status, payload = handler(params, region, body)
        if fault and fault[0] == "lost" and status == 200:
            return self.reset()   # done, but the answer never arrives
        self.send(status, payload, [("Content-Type", "text/xml;charset=UTF-8")])

    def forward_ec2(self, body):
        status, _, data = self.forward(body)
        return status, data

    @staticmethod
    def indexed(params, prefix):
        """Values of prefix.1, prefix.2, … in order."""
        out, i = [], 1
        while f"{prefix}.{i}" in params:
            out.append(params[f"{prefix}.{i}"])
            i += 1
        return out

    def tag_spec(self, params):
        tags = {}
        i = 1
        while f"TagSpecification.{i}.ResourceType" in params:
            j = 1
            while f"TagSpecification.{i}.Tag.{j}.Key" in params:
                tags[params[f"TagSpecification.{i}.Tag.{j}.Key"]] = params.get(f"TagSpecification.{i}.Tag.{j}.Value", "")
                j += 1
            i += 1
        return tags

    def image_json(self, img):
        return {"id": img["id"], "region": img["region"], "name": img["name"], "state": self.server.state.image_state(img),
                "type": img["type"], "architecture": img["arch"], "virtualization": img["virt"],
                "kernel": img["kernel"], "root": img["root"], "mappings": img["mappings"], "ena": img["ena"],
                "boot_mode": img["boot_mode"], "imds": img["imds"], "tags": img["tags"], "owner": img["owner"],
                "launch_users": img["launch_users"], "source": img["source"], "description": img["description"]}

    def ec2_register_image(self, params, region, body):
        act = "RegisterImage"
        st = self.server.state
        with st.lock:
            deny = st.args.deny_register_times > 0
            if deny:
                st.args.deny_register_times -= 1
                st.denied += 1
        if deny:
            return 403, self.ec2_error_body("UnauthorizedOperation", "You are not authorized to perform this "
                                            "operation (peer: --deny-register-times)")
        name = params.get("Name", "")
        if not AMI_NAME_RE.match(name):
            return self.ec2_reject(act, "InvalidAMIName.Malformed", f"AMI name {name!r} is not valid")
        if len(params.get("Description", "")) > 255:
            return self.ec2_reject(act, "InvalidParameterValue", "Description is longer than 255 characters")
        virt = params.get("VirtualizationType")
        if virt not in ("hvm", "paravirtual"):
            return self.ec2_reject(act, "InvalidParameterValue",
                                   f"VirtualizationType {virt!r} (zlabel always sends hvm or paravirtual)")
        arch = params.get("Architecture")
        if arch not in ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"):
            return self.ec2_reject(act, "InvalidParameterValue", f"Architecture {arch!r} (zlabel always sends it)")
        mappings, i = [], 1
        while f"BlockDeviceMapping.{i}.DeviceName" in params:
            pre = f"BlockDeviceMapping.{i}."
            mappings.append({"device": params[pre + "DeviceName"], "snapshot": params.get(pre + "Ebs.SnapshotId"),
                             "size": params.get(pre + "Ebs.VolumeSize"),
                             "type": params.get(pre + "Ebs.VolumeType", "standard"),
                             "delete_on_termination": params.get(pre + "Ebs.DeleteOnTermination")})
            i += 1
        root = params.get("RootDeviceName")
        if not root or root not in [m["device"] for m in mappings]:
            return self.ec2_reject(act, "InvalidBlockDeviceMapping",
                                   f"the root device {root!r} is not among the block device mappings")
        if len({m["device"] for m in mappings}) != len(mappings):
            return self.ec2_reject(act, "InvalidBlockDeviceMapping", "a device name is mapped twice")
        for m in mappings:
            sid = m["snapshot"]
            if not sid:
                return self.ec2_reject(act, "InvalidBlockDeviceMapping", f"{m['device']} has no snapshot")
            with st.lock:
                snap = st.snaps.get(sid)
                gone = sid in st.deleted
            if snap is None or gone or snap.get("region") != region:
                return self.ec2_reject(act, "InvalidSnapshot.NotFound", f"The snapshot '{sid}' does not exist.")
            if st.snapshot_state(snap) != "completed":
                return self.ec2_reject(act, "IncorrectState", f"Snapshot '{sid}' is not completed")
            if m["type"] not in ("standard", "gp2", "gp3", "io1", "io2"):
                return self.ec2_reject(act, "InvalidParameterValue",
                                       f"volume type {m['type']!r} cannot be a boot volume")
            if m["size"] is not None:
                limit = 1024 if m["type"] == "standard" else 16384
                if not re.fullmatch(r"\d+", m["size"]) or not snap["volume"] <= int(m["size"]) <= limit:
                    return self.ec2_reject(act, "InvalidBlockDeviceMapping",
                                           f"volume size {m['size']} must be {snap['volume']}..{limit} GiB")
                m["size"] = int(m["size"])
            else:
                m["size"] = snap["volume"]
        kernel = params.get("KernelId")
        if virt == "paravirtual":
            if not kernel:
                return self.ec2_reject(act, "InvalidParameterCombination", "a paravirtual image needs a KernelId")
            k = st.images.get(kernel)
            if not kernel.startswith("aki-") or not k or k["type"] != "kernel" or k["region"] != region:
                return self.ec2_reject(act, "InvalidAKIID.NotFound", f"The kernel '{kernel}' does not exist")
            if k["arch"] != arch:
                return self.ec2_reject(act, "InvalidParameterCombination",
                                       f"kernel {kernel} is {k['arch']}, the image is {arch}")
            if params.get("EnaSupport") == "true" or params.get("BootMode"):
                return self.ec2_reject(act, "InvalidParameterCombination",
                                       "EnaSupport and BootMode are for hvm images")
        else:
            if kernel or params.get("RamdiskId"):
                return self.ec2_reject(act, "InvalidParameterCombination", "an hvm image takes no KernelId/RamdiskId")
        with st.lock:
            dup = [i for i in st.images.values() if i["name"] == name and i["region"] == region
                   and i["owner"] == ACCOUNT and not i["deregistered"]]
        if dup:   # expected after a lost answer; not counted as a rejection
            return self.ec2_reject(act, "InvalidAMIName.Duplicate",
                                   f"AMI name {name} is already in use by AMI {dup[0]['id']}", record=False)
        status, data = self.forward_ec2(body)
        if status != 200:
            return status, data
        m = re.search(rb"<imageId>(ami-[0-9a-f]+)</imageId>", data)
        if not m:
            return 500, self.ec2_error_body("InternalError", "moto returned no imageId")
        iid = m.group(1).decode()
        with st.lock:
            st.images[iid] = {
                "id": iid, "region": region, "name": name, "description": params.get("Description"),
                "owner": ACCOUNT, "type": "machine", "arch": arch, "virt": virt, "kernel": kernel, "root": root,
                "mappings": mappings, "ena": params.get("EnaSupport") == "true", "boot_mode": params.get("BootMode"),
                "imds": params.get("ImdsSupport"), "tags": self.tag_spec(params), "created": time.time(),
                "ready_at": time.time() + st.args.image_delay, "pending_polls": st.args.image_pending_polls,
                "fail": "injected failure" if st.args.image_fail and st.args.image_fail in name else None,
                "launch_users": [], "source": None, "deregistered": False}
        return self.ec2_xml(200, act, f"<imageId>{iid}</imageId>")

    def ec2_describe_images(self, params, region, body):
        act = "DescribeImages"
        st = self.server.state
        ids = self.indexed(params, "ImageId")
        owners = self.indexed(params, "Owner")
        filters, i = [], 1
        while f"Filter.{i}.Name" in params:
            filters.append((params[f"Filter.{i}.Name"], self.indexed(params, f"Filter.{i}.Value")))
            i += 1
        for iid in ids:
            if not re.fullmatch(r"a[mk]i-[0-9a-f]{8,17}", iid):
                return self.ec2_reject(act, "InvalidAMIID.Malformed", f'Invalid id: "{iid}"')
        with st.lock:
            known = {k: v for k, v in st.images.items() if v["region"] == region}
        missing = [iid for iid in ids if iid not in known]
        if missing:
            return self.ec2_reject(act, "InvalidAMIID.NotFound", f"The image id '[{missing[0]}]' does not exist",
                                   record=False)
        out = []
        for img in sorted(known.values(), key=lambda x: x["created"]):
            state = st.image_state(img)
            if ids and img["id"] not in ids:
                continue
            if not ids and (state == "deregistered" or img.get("unlisted")):
                continue
            if owners and not any(o == img["owner"] or (o == "self" and img["owner"] == ACCOUNT) for o in owners):
                continue
            ok = True
            for fname, values in filters:
                have = {"name": img["name"], "image-type": img["type"], "architecture": img["arch"],
                        "state": state, "image-id": img["id"], "virtualization-type": img["virt"]}.get(fname)
                if fname.startswith("tag:"):
                    have = img["tags"].get(fname[4:])
                elif fname not in ("name", "image-type", "architecture", "state", "image-id",
                                   "virtualization-type"):
                    return self.ec2_reject(act, "InvalidParameterValue", f"filter {fname} is not supported by the peer")
                if have is None or not any(fnmatch.fnmatchcase(have, v) for v in values):
                    ok = False
            if ok:
                out.append(img)
        start = int(params.get("NextToken") or 0)
        page = st.args.images_page_size or len(out) or 1
        chunk = out[start:start + page]
        token = f"<nextToken>{start + page}</nextToken>" if start + page < len(out) else ""
        items = "".join(self.image_item(img) for img in chunk)
        with st.lock:
            for img in chunk:  # each listing uses up one of the polls an image stays pending for
                if img.get("pending_polls", 0) > 0:
                    img["pending_polls"] -= 1
        return self.ec2_xml(200, act, f"<imagesSet>{items}</imagesSet>{token}")

    def image_item(self, img):
        st = self.server.state
        state = st.image_state(img)
        e = lambda v: xml_escape(str(v))  # noqa: E731
        x = [f"<item><imageId>{img['id']}</imageId><imageLocation>{e(img['owner'])}/{e(img['name'])}</imageLocation>",
             f"<imageState>{state}</imageState><imageOwnerId>{img['owner']}</imageOwnerId>",
             "<creationDate>%s</creationDate>" % time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(img["created"])),
             f"<isPublic>false</isPublic><architecture>{img['arch']}</architecture><imageType>{img['type']}</imageType>"]
        if img["kernel"]:
            x.append(f"<kernelId>{img['kernel']}</kernelId>")
        x.append(f"<name>{e(img['name'])}</name>")
        if img["description"] is not None:
            x.append(f"<description>{e(img['description'])}</description>")
        if img["type"] == "machine":
            x.append(f"<rootDeviceType>ebs</rootDeviceType><rootDeviceName>{e(img['root'])}</rootDeviceName>")
            x.append("<blockDeviceMapping>")
            for m in img["mappings"]:
                x.append(f"<item><deviceName>{e(m['device'])}</deviceName><ebs><snapshotId>{m['snapshot']}</snapshotId>"
                         f"<volumeSize>{m['size']}</volumeSize><deleteOnTermination>"
                         f"{m['delete_on_termination'] or 'false'}</deleteOnTermination><volumeType>{m['type']}"
                         "</volumeType><encrypted>false</encrypted></ebs></item>")
            x.append("</blockDeviceMapping>")
        x.append(f"<virtualizationType>{img['virt']}</virtualizationType><hypervisor>xen</hypervisor>")
        if img["ena"]:
            x.append("<enaSupport>true</enaSupport>")
        if img["boot_mode"]:
            x.append(f"<bootMode>{img['boot_mode']}</bootMode>")
        if img["imds"]:
            x.append(f"<imdsSupport>{img['imds']}</imdsSupport>")
        if img["tags"]:
            x.append("<tagSet>" + "".join(f"<item><key>{e(k)}</key><value>{e(v)}</value></item>"
                                          for k, v in img["tags"].items()) + "</tagSet>")
        if state == "failed":
            x.append(f"<stateReason><code>Client.PeerInjected</code><message>{e(img['fail'])}</message></stateReason>")
        x.append("</item>")
        return "".join(x)

    def ec2_copy_image(self, params, region, body):
        act = "CopyImage"
        st = self.server.state
        src_id, src_region = params.get("SourceImageId"), params.get("SourceRegion")
        name, token = params.get("Name", ""), params.get("ClientToken")
        if not AMI_NAME_RE.match(name):
            return self.ec2_reject(act, "InvalidAMIName.Malformed", f"AMI name {name!r} is not valid")
        if token is not None and not 1 <= len(token) <= 64:
            return self.ec2_reject(act, "InvalidParameterValue", "ClientToken must be 1..64 characters")
        with st.lock:
            src = st.images.get(src_id)
            seen = st.copy_tokens.get((region, token)) if token else None
        fields = {k: v for k, v in params.items() if k not in ("Action", "Version")}
        if seen:
            if seen[0] != fields:
                return self.ec2_reject(act, "IdempotentParameterMismatch", "ClientToken reused with other parameters")
            return self.ec2_xml(200, act, f"<imageId>{seen[1]}</imageId>")
        if not src or src["region"] != src_region or src["type"] != "machine":
            return self.ec2_reject(act, "InvalidAMIID.NotFound", f"The image id '[{src_id}]' does not exist")
        if st.image_state(src) != "available":
            return self.ec2_reject(act, "IncorrectState", f"Image {src_id} is {st.image_state(src)}, not available")
        with st.lock:
            dup = [i for i in st.images.values() if i["name"] == name and i["region"] == region
                   and i["owner"] == ACCOUNT and not i["deregistered"]]
        if dup:
            return self.ec2_reject(act, "InvalidAMIName.Duplicate", f"AMI name {name} is already in use", record=False)
        status, data = self.forward_ec2(body)
        if status != 200:
            return status, data
        m = re.search(rb"<imageId>(ami-[0-9a-f]+)</imageId>", data)
        if not m:
            return 500, self.ec2_error_body("InternalError", "moto returned no imageId")
        iid = m.group(1).decode()
        fail = st.args.copy_fail and region in st.args.copy_fail.split(",")
        with st.lock:
            st.images[iid] = dict(src, id=iid, region=region, name=name, description=params.get("Description"),
                                  mappings=[dict(mm, snapshot="snap-" + os.urandom(8).hex()) for mm in src["mappings"]],
                                  tags=self.tag_spec(params), created=time.time(),
                                  ready_at=time.time() + st.args.image_delay,
                                  pending_polls=st.args.image_pending_polls,
                                  fail="injected copy failure" if fail else None, launch_users=[],
                                  source=f"{src_region}/{src_id}", deregistered=False)
            if token:
                st.copy_tokens[(region, token)] = (fields, iid)
        return self.ec2_xml(200, act, f"<imageId>{iid}</imageId>")

    def ec2_modify_image_attribute(self, params, region, body):
        act = "ModifyImageAttribute"
        st = self.server.state
        iid = params.get("ImageId")
        with st.lock:
            img = st.images.get(iid)
        if not img or img["region"] != region or img["type"] != "machine":
            return self.ec2_reject(act, "InvalidAMIID.NotFound", f"The image id '[{iid}]' does not exist")
        if st.image_state(img) in ("failed", "deregistered"):
            return self.ec2_reject(act, "IncorrectState", f"Image {iid} is {st.image_state(img)}")
        users = [params[k] for k in sorted(params) if re.fullmatch(r"LaunchPermission\.Add\.\d+\.UserId", k)]
        for u in users:
            if not re.fullmatch(r"\d{12}", u):
                return self.ec2_reject(act, "InvalidUserID.Malformed", f"User ID '{u}' is invalid")
        status, data = self.forward_ec2(body)
        if status != 200:
            return status, data
        with st.lock:
            img["launch_users"] = sorted(set(img["launch_users"]) | set(users))
        return self.ec2_xml(200, act, "<return>true</return>")  # moto leaves <return> out; AWS sends it

    def ec2_create_tags(self, params, region, body):
        st = self.server.state
        status, data = self.forward_ec2(body)
        if status == 200:
            data = self.ec2_xml(200, "CreateTags", "<return>true</return>")[1]
            tags, j = {}, 1
            while f"Tag.{j}.Key" in params:
                tags[params[f"Tag.{j}.Key"]] = params.get(f"Tag.{j}.Value", "")
                j += 1
            with st.lock:
                for rid in self.indexed(params, "ResourceId"):
                    if rid in st.images:
                        st.images[rid]["tags"].update(tags)
        return status, data

    def ec2_deregister_image(self, params, region, body):
        st = self.server.state
        status, data = self.forward_ec2(body)
        with st.lock:
            img = st.images.get(params.get("ImageId"))
            if img and img["region"] == region:
                img["deregistered"] = True
                status, data = self.ec2_xml(200, "DeregisterImage", "<return>true</return>")
        return status, data


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Clients that time out or get killed close their connections: expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


def start_moto():
    exe = shutil.which("moto_server")
    try:
        import moto  # noqa: F401
        have_module = True
    except ImportError:
        have_module = False
    if not exe and not have_module:
        print(json.dumps({"error": "moto_server is not installed (pip install 'moto[server]')"}), flush=True)
        sys.exit(77)
    port = free_port()
    cmd = [exe, "-H", "127.0.0.1", "-p", str(port)] if exe else [sys.executable, "-m", "moto.server", "-H",
                                                                  "127.0.0.1", "-p", str(port)]
    env = dict(os.environ, MOTO_EC2_LOAD_DEFAULT_AMIS="false")

    def die_with_parent():
        try:
            import ctypes
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except Exception:
            pass
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            print(json.dumps({"error": f"moto_server exited with {p.returncode}"}), flush=True)
            sys.exit(4)
        try:
            with urllib.request.urlopen(url + "/moto-api/config", timeout=2):
                return p, url
        except OSError:
            time.sleep(0.2)
    p.kill()
    print(json.dumps({"error": "moto_server did not answer within 60 s"}), flush=True)
    sys.exit(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", help="moto URL (else --spawn-moto)")
    ap.add_argument("--spawn-moto", action="store_true")
    ap.add_argument("--moto-only", action="store_true", help="start moto, print its URL, no peer")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default="", help="e.g. throttle=0.05,5xx=0.05,reset=0.03,stall=0.01")
    ap.add_argument("--max-faults-per-key", type=int, default=3)
    ap.add_argument("--lose-start-answers", type=int, default=0,
                    help="reset the connection after the first N StartSnapshot requests created their snapshot")
    ap.add_argument("--ignore-client-token", action="store_true",
                    help="StartSnapshot ignores ClientToken, as moto does")
    ap.add_argument("--stall-seconds", type=float, default=4.0)
    ap.add_argument("--notfound-window", type=float, default=0.0)
    ap.add_argument("--complete-delay", type=float, default=1.0)
    ap.add_argument("--deny", choices=["put", "start", "complete"])
    ap.add_argument("--secret", default="testing")
    ap.add_argument("--image-delay", type=float, default=1.0, help="seconds an AMI stays pending")
    ap.add_argument("--image-pending-polls", type=int, default=0,
                    help="an AMI is also pending for the first N DescribeImages that list it")
    ap.add_argument("--image-fail", default="", help="AMIs whose name contains this end in state failed")
    ap.add_argument("--copy-fail", default="", help="comma-separated regions where copies end in state failed")
    ap.add_argument("--images-page-size", type=int, default=0, help="DescribeImages page size (0: one page)")
    ap.add_argument("--deny-register-times", type=int, default=0,
                    help="answer the first N RegisterImage requests with 403 UnauthorizedOperation")
    ap.add_argument("--kernels", action="store_true", help="seed fake Amazon PV-GRUB kernel images")
    ap.add_argument("--kernel-regions", default="us-east-1,us-west-2,eu-west-1")
    ap.add_argument("--unlisted-kernel", action="append", metavar="REGION:ARCH:AKI",
                    help="a kernel RegisterImage accepts but DescribeImages never lists (repeatable)")
    ap.add_argument("--ec2-faults", default="", help="e.g. throttle=0.2,5xx=0.2,lost=0.2 on the AMI actions")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    moto = None
    if args.spawn_moto or args.moto_only:
        moto, args.upstream = start_moto()
    if not args.upstream:
        ap.error("--upstream or --spawn-moto is required")
    if args.moto_only:
        print(json.dumps({"upstream": args.upstream, "moto_pid": moto.pid}), flush=True)
    else:
        args.upstream_parsed = urllib.parse.urlsplit(args.upstream)
        srv = Server(("127.0.0.1", args.port), Handler)
        srv.state = State(args)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        print(json.dumps({"port": srv.server_address[1], "upstream": args.upstream}), flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        if moto:
            moto.terminate()
            try:
                moto.wait(5)
            except subprocess.TimeoutExpired:
                moto.kill()


if __name__ == "__main__":
    main()

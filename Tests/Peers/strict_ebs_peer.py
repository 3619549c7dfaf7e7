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
  notfound  (--notfound-window S) PutSnapshotBlock gets 404 ResourceNotFoundException for S seconds after
            StartSnapshot, as EBS does right after a snapshot is created
--deny put|start|complete answers that call with 403 AccessDeniedException every time.

Control: GET /_peer/stats (JSON counters), POST /_peer/delete?snapshot=ID (the snapshot disappears).
Start: prints one JSON line {"port": P, "upstream": URL} on stdout when ready; exits when stdin closes (so it
never outlives the test that started it). With --spawn-moto it starts moto_server itself on a free loopback
port and stops it on exit; exit code 77 when moto is not installed.
"""
import argparse, base64, hashlib, hmac, http.client, http.server, json, os, random, re, shutil, signal
import socket, socketserver, struct, subprocess, sys, threading, time, urllib.parse, urllib.request

BLOCK = 524288
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
        self.faults_spec = {}
        for part in filter(None, (args.faults or "").split(",")):
            k, _, v = part.partition("=")
            self.faults_spec[k.strip()] = float(v)

    def snapshot_state(self, s):
        if s["state"] == "completing" and time.time() - s["completing_at"] >= self.args.complete_delay:
            s["state"] = "completed"
        return s["state"]

    def fault_for(self, op, key):
        """The fault (or None) for the next attempt of op on key."""
        with self.lock:
            n = self.attempts.get((op, key), 0) + 1
            self.attempts[(op, key)] = n
            if self.faulted_keys.get((op, key), 0) >= self.args.max_faults_per_key:
                return None, n
            h = hashlib.sha256(f"{self.args.seed}:{op}:{key}:{n}".encode()).digest()
            u = int.from_bytes(h[:8], "big") / 2**64
            acc = 0.0
            for kind in ("throttle", "5xx", "reset", "stall"):
                p = self.faults_spec.get(kind, 0.0)
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
                                         "volume": v["volume"]} for k, v in st.snaps.items()}}
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
            seen = st.tokens.get(token)
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
                             "completing_at": None, "encrypted": bool(req.get("Encrypted"))}
            st.tokens[token] = (params, out)
        if fault:  # the answer is lost; the retry with the same token must get the same snapshot
            return self.inject(fault[0], fault[1] & ~1)
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
        if time.time() - s["started"] < st.args.notfound_window:
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
                prog = "100%" if state == "completed" else "42%"
                text = re.sub(r"(<snapshotId>%s</snapshotId>.*?<status>)\w+(</status>.*?<progress>)[^<]*(</progress>)"
                              % re.escape(sid), r"\g<1>%s\g<2>%s\g<3>" % (state, prog), text, flags=re.S)
        self.send(status, text.encode(), headers)


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
    ap.add_argument("--stall-seconds", type=float, default=4.0)
    ap.add_argument("--notfound-window", type=float, default=0.0)
    ap.add_argument("--complete-delay", type=float, default=1.0)
    ap.add_argument("--deny", choices=["put", "start", "complete"])
    ap.add_argument("--secret", default="testing")
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

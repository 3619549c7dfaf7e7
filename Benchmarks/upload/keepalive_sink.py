#!/usr/bin/env python3
"""An EBS direct API sink that keeps connections alive, as AWS does and moto does not.

It answers StartSnapshot, PutSnapshotBlock and CompleteSnapshot just well enough for `zlabel-ec2 upload`
(no signature, checksum or state checks; blocks are read and dropped), so that the upload benchmark can show
the client's CPU without a TCP connection per request. Prints {"port": P} on stdout, then serves until
killed. Not a test peer: the strict peer in Tests/Peers is that."""
import json, socket, threading

BLOCK = 524288


def serve(conn):
    reader = conn.makefile("rb")
    sink = bytearray(1 << 20)
    try:
        while True:
            line = reader.readline()
            if not line:
                return
            method, path, _ = line.decode("latin-1").split(" ", 2)
            length = 0
            while True:
                h = reader.readline()
                if h in (b"\r\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            left = length
            view = memoryview(sink)
            while left > 0:
                n = reader.readinto(view[:min(left, len(sink))])
                if not n:
                    return
                left -= n
            if method == "POST" and path == "/snapshots":
                body = json.dumps({"SnapshotId": "snap-0123456789abcdef0", "Status": "pending",
                                   "BlockSize": BLOCK, "VolumeSize": 8}).encode()
            elif method == "POST" and path.startswith("/snapshots/completion/"):
                body = b'{"Status":"completed"}'
            else:
                body = b"{}"
            status = "201 Created" if method in ("POST", "PUT") else "200 OK"
            conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    except (ConnectionError, ValueError):
        pass
    finally:
        conn.close()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

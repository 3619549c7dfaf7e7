#!/usr/bin/env python3
"""An HTTP/1.1 server with deliberate misbehaviour, for AWSCore's socket transport tests (stdlib only).

Raw sockets rather than http.server, so that each case controls exactly which bytes go out and when the
connection closes. The request path picks the behaviour:

  /echo            200, keep-alive; the body is JSON: connection number, request count on it, method, body
                   length, SHA-256 of the body, and the request's header names
  /close-after     200 with keep-alive framing, then closes the connection at once (as a server's idle timeout
                   racing the client would)
  /drop-next       200, keep-alive; the next request on this connection is read and the connection closed
                   without an answer
  /stall           reads the request and answers nothing until the client goes
  /chunked         200 with a chunked body sent in pieces, with a trailer
  /until-close     200 without a length; the body ends when the connection does
  /interim         a 100 Continue and a 103, then 200
  /bad-length      200 with "Content-Length: 12x"
  /truncated       200 with Content-Length 100 and 10 bytes, then close
  /big             200 with Content-Length 1 GiB (nothing sent after the head)

Options: --tls CERT KEY serves HTTPS. Prints {"port": P} when ready; exits when stdin closes.
"""
import hashlib
import json
import socket
import ssl
import sys
import threading
import time

conn_counter = [0]
counter_lock = threading.Lock()


def read_request(f):
    line = f.readline(65537)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = []
    length = 0
    while True:
        h = f.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers.append(name.strip())
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = f.read(length) if length else b""
    return method, target, headers, body


def respond(sock, status, body, extra=b""):
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra)
    sock.sendall(head + body)


def serve(sock):
    with counter_lock:
        conn_counter[0] += 1
        number = conn_counter[0]
    f = sock.makefile("rb")
    served = 0
    drop_next = False
    try:
        while True:
            req = read_request(f)
            if req is None:
                return
            method, target, headers, body = req
            served += 1
            if drop_next:
                return
            if target == "/echo" or target.startswith("/echo?"):
                doc = {"connection": number, "request": served, "method": method, "length": len(body),
                       "sha256": hashlib.sha256(body).hexdigest(), "headers": headers}
                respond(sock, 200, json.dumps(doc).encode())
            elif target == "/close-after":
                respond(sock, 200, b"bye")
                return
            elif target == "/drop-next":
                respond(sock, 200, b"armed")
                drop_next = True
            elif target == "/stall":
                while sock.recv(1):
                    pass
                return
            elif target == "/chunked":
                sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for piece in (b"5;ext=1\r\nhello\r\n", b"1", b"\r\n ", b"\r\n", b"0\r\nX-Trailer: t\r\n\r\n"):
                    sock.sendall(piece)
                    time.sleep(0.01)
            elif target == "/until-close":
                sock.sendall(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
                return
            elif target == "/interim":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
                respond(sock, 200, b"final")
            elif target == "/bad-length":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n")
                return
            elif target == "/truncated":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                return
            elif target == "/big":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
                time.sleep(2)
                return
            else:
                respond(sock, 404, b"no such case")
    except (OSError, ssl.SSLError, ValueError):
        return
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    context = None
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def accept_loop():
        while True:
            s, _ = listener.accept()
            if context is not None:
                def handshake_then_serve(raw=s):
                    try:
                        serve(context.wrap_socket(raw, server_side=True))
                    except (OSError, ssl.SSLError):
                        raw.close()
                threading.Thread(target=handshake_then_serve, daemon=True).start()
            else:
                threading.Thread(target=serve, args=(s,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The front door from outside (CONTRACT.md v3, "The front door under load"), against a real
`laterbase` binary, as a new user's client would meet it. The floods (ops/flood.sh silent,
multipart, idle-http) cover the rest.

Usage: front_door_check.py --bin PATH

1. An eager client (Python's urllib: the whole body first, then `Connection: close`) posting 9 MiB
   gets its 413 within a second.
5. A peer whose head has two origins at 2^63-1: GET /metrics answers, and again after a restart.
6. A reader's live feed ends within a second of SIGHUP removing the reader.
7. A reader holds at most --max-live-feeds-per-principal live feeds; the next is 429 with
   Retry-After.

Prints a line per check and exits 1 if any failed.
"""
import argparse
import hashlib
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

failures = []


def check(name, ok, detail=""):
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""), flush=True)
    if not ok:
        failures.append(name)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    def __init__(self, binary, data, args=(), env=None):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log = open(data + ".log", "ab")
        self.process = subprocess.Popen(
            [binary, "serve", "--data", data, "--http", "127.0.0.1:%d" % self.port, "--root", "notes",
             "--ingest", "none", "--publish", "none", "--log-level", "warning"] + list(args),
            stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the node did not start")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def request(base, path, token=None, data=None, headers=None, timeout=5):
    req = urllib.request.Request(base + path, data=data, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def eager_client(binary, folder):
    node = Node(binary, folder + "/eager")
    try:
        body = b'{"aggregate":"x","type":"t","data":{"p":"' + b"x" * (9 << 20) + b'"}}'
        started = time.time()
        try:
            status, _, answer = request(node.base, "/e/notes", data=body, headers={"Content-Type": "application/json"}, timeout=15)
        except OSError as e:
            status, answer = None, repr(e).encode()
        took = time.time() - started
        check("1. an eager client over the body limit gets 413", status == 413 and took < 1 and b"too_large" in answer,
              "%s in %.2f s" % (status, took))
    finally:
        node.stop()


class FakePeer(http.server.BaseHTTPRequestHandler):
    """A peer answering /node, and every feed request with a head of two origins at 2^63-1."""
    huge = "peer-x:9223372036854775807,peer-y:9223372036854775807"

    def do_GET(self):
        if self.path.startswith("/node"):
            body = {"replica": "peer-x", "roots": ["notes"], "ingest": None, "publish": None}
        elif "since=" in self.path:
            body = {"events": [], "next": "00000000000000aa:0", "more": False, "digest": "0000000000000001", "head_digest": "0000000000000002"}
        else:
            body = {"events": [], "vv": "", "head": self.huge, "more": False, "position": "00000000000000aa:0"}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def huge_head(binary, folder):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePeer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    peer = "http://127.0.0.1:%d" % server.server_address[1]
    data = folder + "/huge"
    try:
        for attempt in ("first run", "after a restart"):
            node = Node(binary, data, ["--peer", peer, "--peer-probe-seconds", "0.2"])
            try:
                request(node.base, "/e/notes", data=b'{"aggregate":"a","type":"t"}')
                lag = None
                for _ in range(50):
                    status, _, text = request(node.base, "/metrics")
                    lines = [l for l in text.decode().splitlines() if l.startswith("laterbase_sync_lag_events{") and 'direction="pull"' in l]
                    if status != 200:
                        break
                    if lines and not lines[0].endswith(" 0.0"):
                        lag = float(lines[0].split()[-1])
                        break
                    time.sleep(0.2)
                alive = node.process.poll() is None
                check("5. a peer's head at 2^63-1: /metrics answers (%s)" % attempt, status == 200 and alive and lag is not None and lag >= 9.2e18,
                      "status %s, pull lag %s" % (status, lag))
            finally:
                node.stop()
    finally:
        server.shutdown()


def entry(name, role, token, **extra):
    e = {"name": name, "role": role, "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
    e.update(extra)
    return e


def open_feed(base, token):
    """A live feed's response, its first bytes read (the stream is open)."""
    req = urllib.request.Request(base + "/e/notes", headers={"Accept": "text/event-stream", "Authorization": "Bearer " + token})
    r = urllib.request.urlopen(req, timeout=20)
    r.readline()
    return r


def live_feeds(binary, folder):
    admin, reader = secrets.token_hex(32), secrets.token_hex(32)
    credentials = folder + "/credentials.json"
    principals = [entry("ops", "admin", admin), entry("dashboard", "reader", reader, read=["notes"])]
    with open(credentials, "w") as f:
        json.dump({"principals": principals}, f)
    node = Node(binary, folder + "/feeds", ["--credentials", credentials, "--max-live-feeds-per-principal", "3"])
    try:
        feeds = [open_feed(node.base, reader) for _ in range(3)]
        status, headers, answer = request(node.base, "/e/notes", token=reader, headers={"Accept": "text/event-stream"})
        check("7. the fourth live feed of a reader allowed three is 429", status == 429 and headers.get("Retry-After") == "1" and b"too_many_requests" in answer,
              "%s %s" % (status, answer[:80].decode(errors="replace")))
        for r in feeds[1:]:
            r.close()
        feed = feeds[0]
        with open(credentials, "w") as f:
            json.dump({"principals": principals[:1]}, f)
        ended = threading.Event()

        def drain():
            try:
                while feed.readline():
                    pass
            except OSError:
                pass
            ended.set()

        threading.Thread(target=drain, daemon=True).start()
        started = time.time()
        node.process.send_signal(signal.SIGHUP)
        ended.wait(5)
        took = time.time() - started
        check("6. SIGHUP removing a reader ends its live feed within a second", ended.is_set() and took < 1, "%.2f s" % took)
        status, _, _ = request(node.base, "/e/notes", token=reader)
        check("6. and its token is refused", status == 401, str(status))
    finally:
        node.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    args = p.parse_args()
    folder = tempfile.mkdtemp(prefix="laterbase-front-door-")
    try:
        eager_client(args.bin, folder)
        huge_head(args.bin, folder)
        live_feeds(args.bin, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("front door: %d failed" % len(failures))
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()

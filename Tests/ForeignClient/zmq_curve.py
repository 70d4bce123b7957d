#!/usr/bin/env python3
"""A device written in another language, on a node with credentials: pyzmq with CURVE.

Usage: zmq_curve.py HTTP_BASE TOKEN CURVE_PUBLIC CURVE_SECRET ORIGIN

Reads /node with its bearer token (the node's CURVE public key and ingest endpoint), pushes a
batch over CURVE with its own key pair, a batch recorded under another origin, and a batch from a
socket without CURVE; checks through the feed that only the first is stored. Exits 0 when every
check holds; otherwise prints what failed and exits 1.
"""
import json
import sys
import time
import urllib.request
import uuid

import zmq


def get(base, path, token):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def stored_ids(base, token):
    page = get(base, "/e/notes?limit=10000", token)
    return {e["id"] for e in page["events"]}


def main():
    base, token, public, secret, origin = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    node = get(base, "/node", token)
    if node.get("curve") is not True or not node.get("curve_public_key"):
        fail("the node does not say its sockets are CURVE servers: %r" % node)
    ctx = zmq.Context()

    def pusher(curve):
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 1000)
        if curve:
            s.curve_serverkey = node["curve_public_key"].encode()
            s.curve_publickey = public.encode()
            s.curve_secretkey = secret.encode()
        s.connect(node["ingest"])
        return s

    good = [str(uuid.uuid4()) for _ in range(5)]
    forged = str(uuid.uuid4())
    plain_ids = [str(uuid.uuid4()) for _ in range(2)]
    curve = pusher(True)
    curve.send_multipart([b"notes", json.dumps([{"id": i, "aggregate": "py", "type": "noted"} for i in good]).encode()])
    curve.send_multipart([b"notes", json.dumps([{"id": forged, "aggregate": "py", "type": "noted", "origin": origin + "-other",
                                                 "seq": 1, "hlc": "0001934f5a2b0000"}]).encode()])
    plain = pusher(False)
    try:
        plain.send_multipart([b"notes", json.dumps([{"id": i, "aggregate": "py", "type": "noted"} for i in plain_ids]).encode()], flags=zmq.NOBLOCK)
    except zmq.Again:
        pass  # never connected: nothing can be queued, which is the point

    deadline = time.time() + 10
    while time.time() < deadline and not set(good) <= stored_ids(base, token):
        time.sleep(0.1)
    ids = stored_ids(base, token)
    if not set(good) <= ids:
        fail("the CURVE batch was not stored")
    time.sleep(0.5)
    ids = stored_ids(base, token)
    if forged in ids:
        fail("a batch recorded as another origin was stored")
    if set(plain_ids) & ids:
        fail("a batch from a socket without CURVE was stored")
    print("OK: %d events over CURVE, the forged origin and the plain socket refused" % len(good))
    ctx.destroy(linger=0)


if __name__ == "__main__":
    main()

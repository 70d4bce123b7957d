#!/usr/bin/env python3
"""A foreign client of the Laterbase wire contract: pyzmq and the standard library only.

Usage: zmq_contract.py HTTP_BASE

Finds the ZeroMQ endpoints from GET /node, pushes batches as [root, body] on the ingest socket,
subscribes to deltas, and checks them against GET /e. Exits 0 when every check holds; otherwise
prints what failed and exits 1.
"""
import json
import sys
import time
import urllib.request
import uuid

import zmq


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def main():
    base = sys.argv[1].rstrip("/")
    node = get(base, "/node")
    if not node.get("ingest") or not node.get("publish"):
        fail("/node has no ingest or publish endpoint: %r" % node)

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(node["publish"])
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    push.connect(node["ingest"])

    # A subscription takes a moment to reach the publisher: write over HTTP until a delta comes.
    for _ in range(100):
        post(base, "/e/notes", {"aggregate": "poke", "type": "poked"})
        if sub.poll(100):
            break
    else:
        fail("no delta ever arrived on the subscription")
    while sub.poll(200):
        sub.recv_multipart()

    ids = []
    for b in range(5):
        batch = []
        for i in range(20):
            event_id = str(uuid.uuid4())
            ids.append(event_id)
            batch.append({"id": event_id, "aggregate": "py-%d" % (i % 4), "type": "noted", "data": {"batch": b, "i": i}})
        push.send_multipart([b"notes", json.dumps(batch).encode()])
    bad_id = str(uuid.uuid4())
    push.send_multipart([b"notes", json.dumps([{"id": bad_id, "aggregate": "x", "type": "t", "origin": "py-dev",
                                                 "seq": 3, "hlc": "0001934f5a2b0000"}]).encode()])
    push.send_multipart([b"notes"])  # one frame

    deltas, rejected = [], []
    seen = set()
    deadline = time.time() + 20
    while time.time() < deadline and (len(seen) < len(ids) or len(rejected) < 2):
        if not sub.poll(100):
            continue
        topic, body = sub.recv_multipart()
        message = json.loads(body)
        if topic == b"_rejected":
            rejected.append(message)
        elif topic == b"notes":
            deltas.append(message)
            seen.update(e["id"] for e in message["events"])
        else:
            fail("unexpected topic %r" % topic)
    if not set(ids) <= seen:
        fail("deltas carried %d of the %d pushed events" % (len(set(ids) & seen), len(ids)))

    # Each message was one batch: one delta each, in order, with hlc order inside.
    ours = [d for d in deltas if any(e["id"] in ids for e in d["events"])]
    if [e["id"] for d in ours for e in d["events"]] != ids:
        fail("deltas did not carry the batches whole and in order")
    for d in ours:
        hlcs = [e["hlc"] for e in d["events"]]
        if hlcs != sorted(hlcs):
            fail("a delta's events are not in hlc order")
        for e in d["events"]:
            for field in ("id", "aggregate", "type", "version", "data", "time", "hlc", "origin", "seq"):
                if field not in e:
                    fail("a published event lacks %s" % field)

    # The deltas agree with the changes feed, chain by position (v3: no head), and the last
    # one's position is where the feed by position ends.
    feed = get(base, "/e/notes?limit=10000")
    by_id = {e["id"]: e for e in feed["events"]}
    for d in ours:
        for e in d["events"]:
            if by_id.get(e["id"]) != e:
                fail("event %s differs between delta and feed" % e["id"])
    for a, b in zip(deltas, deltas[1:]):
        if b["previous"] != a["position"]:
            fail("a delta's previous %s is not the position %s of the one before" % (b["previous"], a["position"]))
    if any("head" in d for d in deltas):
        fail("a delta carries a head (contract v3: previous and position only)")
    by_position = get(base, "/e/notes?since=")
    if deltas[-1]["position"] != by_position["next"]:
        fail("last delta position %s is not the feed's next %s" % (deltas[-1]["position"], by_position["next"]))

    errors = sorted(r["error"] for r in rejected)
    if errors != ["bad_request", "gap"]:
        fail("rejections were %r" % rejected)
    gap = next(r for r in rejected if r["error"] == "gap")
    if gap["ids"] != [bad_id] or gap["root"] != "notes":
        fail("the gap rejection does not name the event: %r" % gap)
    if bad_id in by_id:
        fail("a refused event was stored")

    push.close()
    sub.close()
    ctx.term()
    print("OK: %d events pushed and seen in %d deltas, %d rejections" % (len(ids), len(ours), len(rejected)))


main()

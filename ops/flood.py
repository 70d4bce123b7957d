#!/usr/bin/env python3
"""Floods a running Laterbase node from many connections and reports the most memory it held.

Usage: flood.py --pid PID --http http://127.0.0.1:8080 [--connections 500] [--seconds 20]
                [--phase zmq|http|both|silent|multipart|idle-http] [--body-mib 8]

zmq and http: each connection sends batches as large as the body limit allows (events of about
8 KB, no ids, so every batch stores new events): ZeroMQ PUSH sockets to the node's ingest endpoint
(read from /node), then raw HTTP/1.1 connections posting to /e/notes.

What costs an attacker nothing but a socket (CONTRACT.md v3, "The front door under load"):
silent, TCP connections to the ingest endpoint that never greet, while a real device pushes a
batch (how long until it is stored); multipart, raw ZMTP senders sending 1 MiB frames marked
"more" and never the last one (does the node drop them); idle-http, connections to the HTTP port,
half of them with a request started and never finished, while /healthz is asked.

The node's VmRSS and RssAnon are read from /proc every 50 ms; the peak of each phase is printed
with what was stored.
"""
import argparse
import asyncio
import json
import socket
import threading
import time
import urllib.request

import zmq


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.loads(r.read())


def memory(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                fields[key] = int(value.split()[0]) // 1024  # MiB
    return fields


class Sampler(threading.Thread):
    """The node's peak memory, every 50 ms, and its slowest /healthz, every 500 ms."""

    def __init__(self, pid, base):
        super().__init__(daemon=True)
        self.pid, self.base, self.running = pid, base, True
        self.peak, self.slowest_health, self.health_failures = {"VmRSS": 0, "RssAnon": 0}, 0.0, 0

    def run(self):
        last_health = 0.0
        while self.running:
            try:
                for key, value in memory(self.pid).items():
                    self.peak[key] = max(self.peak[key], value)
            except FileNotFoundError:
                return
            if time.time() - last_health >= 0.5:
                last_health = time.time()
                try:
                    with urllib.request.urlopen(self.base + "/healthz", timeout=10) as r:
                        r.read()
                except OSError:
                    self.health_failures += 1
                self.slowest_health = max(self.slowest_health, time.time() - last_health)
            time.sleep(0.05)


def batch(limit_bytes, tag):
    """A JSON array of events for the notes root, just under limit_bytes."""
    text = "x" * 8000
    one = json.dumps({"aggregate": "flood-%s-%%d" % tag, "type": "noted", "data": {"text": text}})
    count = min(10_000, (limit_bytes - 1024) // (len(one) + 8))
    return ("[" + ",".join(one.replace("%d", str(i % 1000)) for i in range(count)) + "]").encode(), count


def notes_events(base):
    """Events the notes root holds: the sum of its head's seqs."""
    head = get(base, "/e/notes?limit=1")["head"]
    return sum(int(part.rsplit(":", 1)[1]) for part in head.split(",") if part)


def zmq_flood(endpoint, connections, seconds, body):
    ctx = zmq.Context(io_threads=2)
    ctx.setsockopt(zmq.MAX_SOCKETS, connections + 64)
    sockets = []
    for _ in range(connections):
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, 1)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        sockets.append(s)
    frame = zmq.Frame(body)
    poller = zmq.Poller()
    for s in sockets:
        poller.register(s, zmq.POLLOUT)
    sent, deadline = 0, time.time() + seconds
    while time.time() < deadline:
        for s, _ in poller.poll(100):
            try:
                s.send_multipart([b"notes", frame], flags=zmq.NOBLOCK, copy=False)
                sent += 1
            except zmq.Again:
                pass
    for s in sockets:
        s.close(0)
    ctx.term()
    return sent


async def http_client(host, port, body, deadline, counts):
    head = ("POST /e/notes HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (host, len(body))).encode()
    while time.time() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            while time.time() < deadline:
                writer.write(head)
                writer.write(body)
                await writer.drain()
                status = await asyncio.wait_for(reader.readline(), timeout=max(0.1, deadline - time.time()))
                if not status:
                    break
                code = status.split()[1].decode() if len(status.split()) > 1 else "?"
                counts[code] = counts.get(code, 0) + 1
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            counts["dropped"] = counts.get("dropped", 0) + 1
            await asyncio.sleep(0.05)


async def http_flood(base, connections, seconds, body):
    host, port = base.split("//")[1].split(":")
    counts, deadline = {}, time.time() + seconds
    await asyncio.gather(*(http_client(host, int(port), body, deadline, counts) for _ in range(connections)))
    return counts


def raw_connections(host, port, count):
    out = []
    for _ in range(count):
        c = socket.socket()
        c.settimeout(10)
        c.connect((host, port))
        out.append(c)
    return out


def closed_by_node(connections):
    """How many of the connections the node closed (what it sent first is read and dropped)."""
    closed = 0
    for c in connections:
        c.setblocking(False)
        try:
            while c.recv(65536) != b"":
                pass
            closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return closed


def silent_flood(base, connections, seconds):
    """Silent ingest connections; a real device's batch meanwhile. Returns the outcome."""
    endpoint = get(base, "/node")["ingest"]
    host, port = endpoint.split("//")[1].rsplit(":", 1)
    silent = raw_connections(host, int(port), connections)
    before = notes_events(base)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(endpoint)
    started = time.time()
    push.send_multipart([b"notes", json.dumps([{"aggregate": "device-1", "type": "noted"}]).encode()])
    stored_after = None
    while time.time() - started < seconds:
        if notes_events(base) > before:
            stored_after = time.time() - started
            break
        time.sleep(0.05)
    time.sleep(max(0.0, 12 - (time.time() - started)))  # past the 10 s handshake limit
    closed = closed_by_node(silent)
    push.close(0)
    ctx.term()
    for c in silent:
        c.close()
    return "%d silent connections; the device's batch stored after %s; %d silent ones closed by the node after %.0f s" % (
        connections, "%.2f s" % stored_after if stored_after is not None else "never (%g s)" % seconds, closed, time.time() - started)


def zmtp_null_sender(host, port):
    """A raw ZMTP 3.0 client (NULL mechanism, PUSH) past its handshake."""
    c = socket.create_connection((host, port), timeout=10)
    c.sendall(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16 + b"\x00" + b"\x00" * 31)
    greeting = b""
    while len(greeting) < 64:
        part = c.recv(64 - len(greeting))
        if not part:
            raise OSError("closed in the greeting")
        greeting += part
    ready = b"\x05READY" + b"\x0bSocket-Type" + (4).to_bytes(4, "big") + b"PUSH"
    c.sendall(b"\x04" + bytes([len(ready)]) + ready)
    # The node's READY: a message before it breaks the handshake.
    head = c.recv(2, socket.MSG_WAITALL)
    if len(head) < 2 or head[0] != 0x04 or len(c.recv(head[1], socket.MSG_WAITALL)) < head[1]:
        raise OSError("no READY from the node")
    return c


def multipart_flood(base, connections, seconds):
    """Senders of frames marked "more", never the last: what the node holds, and whether it drops them."""
    host, port = get(base, "/node")["ingest"].split("//")[1].rsplit(":", 1)
    frame = b"\x03" + (1 << 20).to_bytes(8, "big") + b"x" * (1 << 20)  # MORE | LONG, 1 MiB
    senders, sent, dropped = [], 0, 0
    for _ in range(connections):
        try:
            senders.append(zmtp_null_sender(host, int(port)))
        except OSError:
            dropped += 1
    deadline = time.time() + seconds
    while senders and time.time() < deadline:
        for c in list(senders):
            try:
                c.sendall(frame)
                sent += 1
            except OSError:
                senders.remove(c)
                dropped += 1
    for c in senders:
        c.close()
    return "%d senders, %d frames of 1 MiB sent marked more (%d MiB); %d senders dropped by the node" % (
        connections, sent, sent, dropped)


def idle_http_flood(base, connections, seconds):
    """Idle and half-sent HTTP connections; /healthz meanwhile."""
    host, port = base.split("//")[1].split(":")
    held = []
    for i in range(connections):
        c = socket.socket()
        c.settimeout(10)
        try:
            c.connect((host, int(port)))
        except OSError:
            continue
        if i % 2:
            c.sendall(b"GET /e/notes HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(c)
    slowest, failed, deadline = 0.0, 0, time.time() + seconds
    while time.time() < deadline:
        t = time.time()
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                r.read()
            slowest = max(slowest, time.time() - t)
        except OSError:
            failed += 1
        time.sleep(0.2)
    closed = closed_by_node(held)
    for c in held:
        c.close()
    return "%d connections held (half with a request half sent); /healthz slowest %.3f s, %d failed; %d closed by the node" % (
        len(held), slowest, failed, closed)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--http", required=True)
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--phase", choices=["zmq", "http", "both", "silent", "multipart", "idle-http"], default="both")
    p.add_argument("--body-mib", type=float, default=8)
    args = p.parse_args()
    base = args.http.rstrip("/")
    body, count = batch(int(args.body_mib * 1024 * 1024), "z")
    print("flood: %d connections, batches of %d events (%.1f MiB), %g s a phase" % (args.connections, count, len(body) / 1048576, args.seconds))
    print("flood: idle node: %s" % memory(args.pid))
    phases = ["zmq", "http"] if args.phase == "both" else [args.phase]
    for phase in phases:
        before = notes_events(base)
        sampler = Sampler(args.pid, base)
        sampler.start()
        started = time.time()
        if phase == "zmq":
            outcome = "%d messages sent" % zmq_flood(get(base, "/node")["ingest"], args.connections, args.seconds, body)
        elif phase == "silent":
            outcome = silent_flood(base, args.connections, args.seconds)
        elif phase == "multipart":
            outcome = multipart_flood(base, args.connections, args.seconds)
        elif phase == "idle-http":
            outcome = idle_http_flood(base, args.connections, args.seconds)
        else:
            outcome = "responses %s" % asyncio.run(http_flood(base, args.connections, args.seconds, body))
        # Let the node drain what it took, then read what it stored.
        time.sleep(3)
        sampler.running = False
        sampler.join()
        stored = notes_events(base) - before
        print("flood %s: %s; %d events stored (%.0f MiB) in %.0f s; peak VmRSS %d MiB, peak RssAnon %d MiB;"
              " slowest /healthz %.3f s, %d failed"
              % (phase, outcome, stored, stored * 8070 / 1048576, time.time() - started, sampler.peak["VmRSS"],
                 sampler.peak["RssAnon"], sampler.slowest_health, sampler.health_failures))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Floods a running Laterbase node from many connections and reports the most memory it held.

Usage: flood.py --pid PID --http http://127.0.0.1:8080 [--connections 500] [--seconds 20]
                [--phase zmq|http|both] [--body-mib 8]

Each connection sends batches as large as the body limit allows (events of about 8 KB, no ids, so
every batch stores new events): ZeroMQ PUSH sockets to the node's ingest endpoint (read from
/node), then raw HTTP/1.1 connections posting to /e/notes. The node's VmRSS and RssAnon are read
from /proc every 50 ms; the peak of each phase is printed with what was stored.
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--http", required=True)
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--phase", choices=["zmq", "http", "both"], default="both")
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

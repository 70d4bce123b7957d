#!/usr/bin/env python3
"""Checks docker/compose.yaml and docker/Dockerfile without a Docker engine.

`docker-compose config` validates the file; then every service's command (the image's ENTRYPOINT
plus the service's command) runs as a real `laterbase` process, with /data, ports, peer host
names and /run/secrets/* mapped to local ones: three nodes in a full mesh and an edge device,
credentials and CURVE keys from docker/make-secrets.sh. The script writes to each node and
requires all four to converge, the healthcheck command to pass, and SIGTERM to stop each with 0.

Usage: compose_check.py LATERBASE_BINARY
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.request

import yaml

import support
from support import check, failures, free_port, stop

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
binary = sys.argv[1]
work = tempfile.mkdtemp(prefix="laterbase-compose-")
# The secrets, made as the README says.
secrets_dir = os.path.join(work, "secrets")
subprocess.run([os.path.join(repo, "docker/make-secrets.sh"), secrets_dir], check=True, env={**os.environ, "LATERBASE": binary})

compose_file = os.path.join(repo, "docker/compose.yaml")
env = {**os.environ, "LATERBASE_SECRETS": secrets_dir}
subprocess.run(["docker-compose", "-f", compose_file, "config", "-q"], check=True, env=env)
config = yaml.safe_load(subprocess.run(["docker-compose", "-f", compose_file, "config"], check=True, env=env, capture_output=True, text=True).stdout)

# The Dockerfile: non-root, a healthcheck through `laterbase health`, a volume at /data.
dockerfile = open(os.path.join(repo, "docker/Dockerfile")).read()
entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))
user = re.findall(r"^USER (\S+)$", dockerfile, re.M)
check(user and user[-1] not in ("root", "0"), f"the image runs as a non-root user (USER {user})")
check(re.search(r'^HEALTHCHECK .*CMD \["laterbase", "health"', dockerfile, re.M), "the image's HEALTHCHECK runs `laterbase health`")
check(re.search(r"^VOLUME /data$", dockerfile, re.M), "the image declares the /data volume")
check(entrypoint[:2] == ["laterbase", "serve"] and "/data" in entrypoint, f"the entrypoint serves /data: {entrypoint}")

services = config["services"]
check(set(services) == {"hq-1", "hq-2", "hq-3", "truck-7"}, f"three nodes and a device: {sorted(services)}")
raw = open(compose_file).read()
check(not re.search(r"[0-9a-f]{64}", raw), "no token in the compose file")
for name, service in services.items():
    check(str(service.get("user")) not in ("None", "root", "0"), f"{name} runs as a non-root user")
    check(service.get("healthcheck", {}).get("test", [])[1:3] == ["laterbase", "health"], f"{name}'s healthcheck runs `laterbase health`")
    check(any((v.get("target") if isinstance(v, dict) else v.split(":")[1]) == "/data" for v in service.get("volumes", [])), f"{name} keeps /data on a volume")
    for secret in service.get("secrets", []):
        check(os.path.exists(config["secrets"][secret["source"]]["file"]), f"{name}'s secret {secret['source']} exists")

# Every service's command, as a process.
ports = {name: (free_port(), free_port(), free_port()) for name in services}
def local(arg, name):
    http, ingest, publish = ports[name]
    if arg == "/data":
        return os.path.join(work, name)
    arg = arg.replace("0.0.0.0:8080", f"127.0.0.1:{http}").replace("http://127.0.0.1:8080", f"http://127.0.0.1:{http}").replace("tcp://0.0.0.0:5555", f"tcp://127.0.0.1:{ingest}").replace("tcp://0.0.0.0:5556", f"tcp://127.0.0.1:{publish}")
    m = re.fullmatch(r"http://([a-z0-9-]+):8080", arg)
    if m and m.group(1) in ports:
        return f"http://127.0.0.1:{ports[m.group(1)][0]}"
    m = re.fullmatch(r"/run/secrets/(.+)", arg)
    if m:
        return config["secrets"][m.group(1)]["file"]
    return arg

processes = {}
for name, service in services.items():
    args = [binary] + [local(a, name) for a in entrypoint[1:] + service["command"]] + ["--peer-probe-seconds", "0.2"]
    log = open(os.path.join(work, name + ".log"), "w")
    processes[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

token = open(os.path.join(secrets_dir, "ops.token")).read().strip()
def call(name, method, path, body=None):
    return support.call(ports[name][0], token, method, path, body)

def health(name):
    probe = [binary] + [local(a, name) for a in services[name]["healthcheck"]["test"][2:]]
    return subprocess.run(probe, capture_output=True).returncode == 0

deadline = time.time() + 60
while time.time() < deadline and not all(health(n) for n in services):
    time.sleep(0.2)
for name in services:
    check(health(name), f"{name} is healthy by its healthcheck command")

try:
    check(call("hq-2", "POST", "/e/shipments", {"aggregate": "SHP-1", "type": "shipment.created", "data": {"origin": "AKL", "destination": "WLG"}})[0] == 201, "hq-2 takes a write")
    check(call("truck-7", "POST", "/e/shipments", {"aggregate": "SHP-1", "type": "shipment.departed", "data": {"location": "AKL"}})[0] == 201, "truck-7 takes a write")
    check(call("hq-3", "POST", "/e/inventory", {"aggregate": "SKU-1@AKL", "type": "stock.received", "data": {"qty": 5}})[0] == 201, "hq-3 takes a write")
    heads = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        heads = {n: (call(n, "GET", "/e/shipments?limit=0")[1]["head"], call(n, "GET", "/e/inventory?limit=0")[1]["head"]) for n in services}
        if len(set(heads.values())) == 1 and "truck-7:1" in heads["hq-1"][0] and "hq-3:1" in heads["hq-1"][1]:
            break
        time.sleep(0.2)
    check(len(set(heads.values())) == 1, f"the four nodes converge: {heads}")
    status, shipment = call("hq-3", "GET", "/a/shipments/SHP-1")
    check(status == 200 and shipment["events"] == 2, f"hq-3 folds the device's and hq-2's events: {shipment}")
    status, node = call("hq-1", "GET", "/node")
    check(node.get("curve") is True and node.get("replica") == "hq-1", f"hq-1 is hq-1 with CURVE sockets: {node}")
finally:
    stop(processes)

support.finish({n: os.path.join(work, n + ".log") for n in services}, "compose check: 4 services ran from their compose commands, converged, healthy, stopped cleanly")

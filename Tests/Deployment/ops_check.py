#!/usr/bin/env python3
"""Checks ops/: Prometheus rules and config (promtool), the alerts' unit tests, the Grafana
dashboard's queries, the systemd unit (systemd-analyze), and that every laterbase_* metric the
rules and the dashboard name is exported by live nodes started from the unit's ExecStart (one of
them with a peer, so the per-peer series exist): the files cannot drift from the code.

Usage: ops_check.py LATERBASE_BINARY
"""
import json, os, re, shlex, subprocess, sys, tempfile, time, urllib.request

from support import check, failures, finish, free_port, stop

repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
binary = os.path.abspath(sys.argv[1])
ops = os.path.join(repo, "ops")
work = tempfile.mkdtemp(prefix="laterbase-ops-")
def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


rules = os.path.join(ops, "prometheus/laterbase-rules.yml")
r = run(["promtool", "check", "rules", rules])
check(r.returncode == 0, f"promtool check rules: {r.stdout}{r.stderr}")
r = run(["promtool", "check", "config", "--syntax-only", os.path.join(ops, "prometheus/prometheus.yml")])
check(r.returncode == 0, f"promtool check config: {r.stdout}{r.stderr}")
r = run(["promtool", "test", "rules", os.path.join(ops, "prometheus/laterbase-rules.test.yml")])
check(r.returncode == 0, f"promtool test rules: {r.stdout}{r.stderr}")

# The dashboard's queries parse: promtool checks them as recording rules.
dashboard = json.load(open(os.path.join(ops, "grafana/laterbase-dashboard.json")))
exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
check(len(exprs) >= 10, f"the dashboard has its panels ({len(exprs)} queries)")
recording = os.path.join(work, "dashboard-rules.yml")
with open(recording, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
r = run(["promtool", "check", "rules", recording])
check(r.returncode == 0, f"the dashboard's queries parse: {r.stdout}{r.stderr}")

# The systemd unit: verified with the binary in place of /usr/local/bin/laterbase, and hardened.
unit_text = open(os.path.join(ops, "systemd/laterbase.service")).read()
unit = os.path.join(work, "laterbase.service")
open(unit, "w").write(unit_text.replace("/usr/local/bin/laterbase", binary))
r = run(["systemd-analyze", "verify", unit])
problems = [l for l in (r.stdout + r.stderr).splitlines() if "laterbase.service" in l]
check(not problems, f"systemd-analyze verify: {problems}")
for setting in ["User=laterbase", "ProtectSystem=strict", "ReadWritePaths=/var/lib/laterbase", "LimitNOFILE=", "NoNewPrivileges=true"]:
    check(setting in unit_text, f"the unit sets {setting}")
r = run(["systemd-analyze", "security", "--offline=true", unit])
level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
check(level and float(level.group(1)) <= 4.0, f"systemd-analyze security rates the unit OK (≤ 4.0): {level.group(1) if level else r.stdout[-300:]}")

# Two nodes from ExecStart (data, credentials and addresses mapped to local ones), the second a peer of the first.
execstart = shlex.split(re.search(r"^ExecStart=(.*)$", unit_text, re.M).group(1))
credentials = os.path.join(work, "credentials.json")
def add(name, role):
    out = run([binary, "credentials", "add", name, "--role", role, "--file", credentials]).stdout
    return re.search(r"^token: (\S+)$", out, re.M).group(1)
monitor, peer = add("prometheus", "monitor"), add("hq-2", "peer")
open(os.path.join(work, "peer.token"), "w").write(peer + "\n")

nodes = []  # (process, http port)
for i in range(2):
    http, ingest, publish = free_port(), free_port(), free_port()
    mapping = {"/var/lib/laterbase": os.path.join(work, f"data-{i}"), "/etc/laterbase/credentials.json": credentials,
               "0.0.0.0:8080": f"127.0.0.1:{http}", "tcp://0.0.0.0:5555": f"tcp://127.0.0.1:{ingest}", "tcp://0.0.0.0:5556": f"tcp://127.0.0.1:{publish}"}
    args = [binary] + [mapping.get(a, a) for a in execstart[1:]] + ["--replica-id", f"hq-{i + 1}", "--peer-probe-seconds", "0.2"]
    if i == 1:
        args += ["--peer", f"http://127.0.0.1:{nodes[0][1]}", "--token-file", os.path.join(work, "peer.token")]
    nodes.append((subprocess.Popen(args, stdout=open(os.path.join(work, f"node-{i}.log"), "w"), stderr=subprocess.STDOUT), http))

def metrics(port):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {monitor}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return r.read().decode()

exported = set()
try:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            text = metrics(nodes[1][1])
            if 'laterbase_sync_peer_up{peer=' in text and "laterbase_sync_lag_events" in text:
                break
        except Exception:
            pass
        time.sleep(0.2)
    for _, port in nodes:
        text = metrics(port)
        exported |= {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", l).group(0) for l in text.splitlines() if l and not l.startswith("#")}
finally:
    stop({f"node {i} from ExecStart": p for i, (p, _) in enumerate(nodes)})

named = set(re.findall(r"laterbase_[a-z_]+", open(rules).read())) | {n for e in exprs for n in re.findall(r"laterbase_[a-z_]+", e)}
check(len(named) >= 10, f"the rules and dashboard name the node's metrics: {sorted(named)}")
missing = sorted(named - exported)
check(not missing, f"named in the alert rules or the dashboard but not exported by a node: {missing}")

finish({f"node-{i}.log": os.path.join(work, f"node-{i}.log") for i in range(len(nodes))},
       f"ops check: promtool and systemd-analyze pass; {len(named)} metric names in rules and dashboard, all exported")

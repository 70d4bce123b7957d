"""What the deployment and console checks share: recording failures, free ports, calling a
node's API, stopping processes."""
import json, signal, socket, subprocess, urllib.error, urllib.request

failures = []


def check(condition, message):
    """Records a failure (and prints it) unless `condition` holds."""
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def free_port():
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, token, method, path, body=None):
    """(status, JSON body) of a request to a node on 127.0.0.1; (0, None) when it cannot be reached."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body and json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except OSError:
        return 0, None


def finish(logs, success):
    """Exits 1 after printing the last lines of each log file when a check failed; else prints `success`."""
    if failures:
        for name, path in logs.items():
            print(f"--- {name} (last lines)")
            print("".join(open(path).readlines()[-15:]))
        raise SystemExit(1)
    print(success)


def stop(processes):
    """SIGTERM to each `name: Popen`, then requires each to exit 0 within 30 s."""
    for p in processes.values():
        p.send_signal(signal.SIGTERM)
    for name, p in processes.items():
        try:
            code = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            code = None
        check(code == 0, f"{name} stops with 0 on SIGTERM (got {code})")

"""What the deployment checks share: recording failures, free ports, stopping processes."""
import signal, socket, subprocess

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

"""What the benchmarks that start their own servers share: a free port, waiting for a server,
starting and stopping uvicorn apps in their own process group, and the CPU seconds a phase costs
by part (the machine is often shared, so a phase's load-independent cost is reported beside its
wall time). Imported by the bench scripts as a sibling module (they run as `python bench/<x>.py`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, host: str | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib3.request("GET", url, headers={"Host": host} if host else None, retries=False, timeout=1)
            return
        except Exception:  # not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def serve(app: str, port: int, *, workers: int = 1, app_dir: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "warning", "--no-access-log", "--lifespan", "off"]
    if app_dir:
        command += ["--app-dir", app_dir]
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(servers: dict[str, subprocess.Popen], *, own: bool = False) -> Counter:
    """CPU seconds so far, by part: this process (`run`, when `own`: work done in process), its
    finished children (`workers`, once joined), each server's process tree and this run's
    PostgreSQL (`postgres`: its postmaster, whose reaped backends count in its children's times,
    and the live backends). A phase's cost is the difference of two readings."""
    import psutil

    mine = os.times()
    parts: Counter = Counter({"workers": mine[2] + mine[3]})
    if own:
        parts["run"] = mine[0] + mine[1]
    roots = {name: proc.pid for name, proc in servers.items()}
    pid_file = Path(os.environ.get("TEST_DATA_DIR", ".data/test")) / "pg" / "postmaster.pid"
    if pid_file.exists():
        roots["postgres"] = int(pid_file.read_text().split()[0])
    for name, pid in roots.items():
        try:
            root = psutil.Process(pid)
            for one in [root, *root.children(recursive=True)]:
                times = one.cpu_times()
                parts[name] += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:  # gone meanwhile
            continue
    return parts


def cpu_text(parts: Counter, units: int, unit: str = "each") -> str:
    total = sum(parts.values())
    each = ", ".join(f"{name} {1000 * seconds / units:.2f}" for name, seconds in sorted(parts.items()))
    return f"CPU {total:.1f} s = {1000 * total / units:.2f} ms {unit} ({each})"

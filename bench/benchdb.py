"""Shared by the benchmark scripts: a fresh PostgreSQL database on loopback, management
commands, and a gunicorn server to measure."""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def recreate_database(url: str) -> None:
    """Drop and create the database of ``url``; only a loopback one named with "bench"."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to drop {name!r}: the benchmark database name must contain 'bench'")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the benchmark runs against PostgreSQL on loopback only")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def bench_env(database_url: str) -> dict[str, str]:
    """The environment of a measured process: production settings on ``database_url``, no
    Redis, a throw-away secret key, loopback only, warnings only in the log."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 6 * 3600) -> None:
    """``manage.py <args>`` in the project root with ``env``; fails loudly."""
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=timeout
    )


def setup_django(env: dict[str, str]) -> None:
    """Django set up in this process with ``env`` (a profile, or a service timed directly)."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    env: dict[str, str],
    port: int,
    workers: int,
    *,
    ready_path: str = "/health/",
    settings_module: str | None = None,
    ready_seconds: float = 240,
    timeout: int = 60,
) -> subprocess.Popen:
    """gunicorn serving the project on loopback, once ``ready_path`` answers 200.

    Each worker imports Django on its own; on a busy two-core machine four of them can take
    more than a minute to answer, hence the generous ``ready_seconds``. ``timeout`` is
    gunicorn's worker timeout, above the longest request measured.
    """
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        str(timeout),
    ]
    if settings_module:
        command += ["--env", f"DJANGO_SETTINGS_MODULE={settings_module}"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", ready_path)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    stop(server)
    raise RuntimeError(f"gunicorn did not answer within {ready_seconds:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """Stop gunicorn and its workers (its own process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)

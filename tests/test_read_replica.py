"""The read replica: results reads go to a real hot standby, everything else to the primary.

The test makes its own small PostgreSQL primary (``initdb``), a hot standby of it
(``pg_basebackup -R``), migrates the primary and runs ``tests/replica_probe.py`` against the
pair. PostgreSQL will not run as root, so as root the servers run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction

from config import db_router
from config.db_router import PRIMARY_ONLY_APPS, ReplicaRouter, replica_reads

ROOT = Path(__file__).resolve().parent.parent
BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user() -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    return []


def _postgres_available() -> str | None:
    if not BINDIRS:
        return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run the servers"
    return None


class Cluster:
    """A throw-away PostgreSQL server on loopback."""

    def __init__(self, bindir: str, directory: Path, port: int) -> None:
        self.bindir, self.directory, self.port = bindir, directory, port

    def run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*_as_server_user(), f"{self.bindir}/{program}", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, *settings: str) -> None:
        options = f"-p {self.port} -k {self.directory.parent} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {setting}" for setting in settings)
        log = self.directory.parent / f"{self.directory.name}.log"
        self.run("pg_ctl", "-D", str(self.directory), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.directory), "-m", "immediate", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="module")
def primary_and_standby() -> Iterator[tuple[Cluster, Cluster]]:
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="sipas-replica-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary = Cluster(BINDIRS[0], base / "primary", _free_port())
    standby = Cluster(BINDIRS[0], base / "standby", _free_port())
    started: list[Cluster] = []
    try:
        primary.run("initdb", "-D", str(primary.directory), "-A", "trust", "-U", "postgres")
        primary.start("wal_level=replica", "fsync=off")
        started.append(primary)
        primary.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(standby.directory), "-R", "-X", "stream",
        )  # fmt: skip
        standby.start("hot_standby=on", "fsync=off")
        started.append(standby)
        yield primary, standby
    finally:
        for cluster in reversed(started):
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def _manage_env(primary: Cluster, standby: Cluster) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": primary.url,
        "DATABASE_REPLICA_URL": standby.url,
        "ALLOWED_HOSTS": "testserver",
    }


@pytest.mark.postgres
def test_results_are_read_from_the_standby_and_everything_else_from_the_primary(
    primary_and_standby: tuple[Cluster, Cluster],
) -> None:
    env = _manage_env(*primary_and_standby)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True, timeout=600,
    )  # fmt: skip
    probe = subprocess.run(
        [sys.executable, "tests/replica_probe.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])

    # The read API and the dashboard read the standby only (the session and user included:
    # an anonymous reader has none to look up).
    for read in ("scores", "dashboard", "runs", "scores_csv"):
        assert seen[read]["status"] == 200, (read, seen[read]["body"][:500])
        assert seen[read]["replica"] > 0 and seen[read]["primary"] == 0, (
            read,
            seen[read]["primary_sql"],
        )
    # A submission writes on the primary (the standby is read-only: a write there would fail)
    # and reads nothing from the standby; pages outside the results too.
    submit = seen["submit"]
    assert submit["status"] == 201, submit["body"][:500]
    assert submit["replica"] == 0 and "INSERT" in submit["primary_writes"]
    assert seen["admin_login_page"]["status"] == 200
    assert seen["admin_login_page"]["replica"] == 0

    # An export streams the answers from the standby; the analyst's account and session
    # are read on the primary.
    export = seen["responses_csv"]
    assert export["status"] == 200, export["body"][:500]
    assert export["replica"] > 0
    assert not [sql for sql in export["primary_sql"] if "feedback_" in sql]
    assert len(export["body"].splitlines()) == export["stored"] + 1  # header, row per response

    # While the standby lags, the runs it lists are the earlier ones, whole; once it has
    # replayed, the new publication is there.
    lagging = json.loads(seen["lagging_runs"]["body"])
    replayed = json.loads(seen["replayed_runs"]["body"])
    assert seen["lagging_runs"]["replica"] > 0 and seen["lagging_runs"]["primary"] == 0
    assert len(replayed["results"]) == len(lagging["results"]) + 1


class _Meta:
    def __init__(self, app_label: str) -> None:
        self.app_label = app_label


class _Model:
    def __init__(self, app_label: str) -> None:
        self._meta = _Meta(app_label)


def test_without_a_replica_every_read_stays_on_the_primary(settings) -> None:
    assert "replica" not in settings.DATABASES
    router = ReplicaRouter()
    with replica_reads():
        assert router.db_for_read(_Model("scoring")) == "default"


def test_the_router_sends_only_marked_reads_to_the_replica(monkeypatch) -> None:
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)
    router = ReplicaRouter()
    assert router.db_for_read(_Model("scoring")) == "default"  # not inside replica_reads()
    with replica_reads():
        assert router.db_for_read(_Model("scoring")) == "replica"
        assert router.db_for_read(_Model("feedback")) == "replica"
        for app in PRIMARY_ONLY_APPS:  # sessions, accounts: a writer reads them back
            assert router.db_for_read(_Model(app)) == "default"
        assert router.db_for_write(_Model("scoring")) == "default"
    assert router.allow_migrate("replica", "scoring") is False
    assert router.allow_migrate("default", "scoring") is True


def test_a_read_inside_a_transaction_on_the_primary_stays_there(monkeypatch, db) -> None:
    monkeypatch.setattr(db_router, "replica_configured", lambda: True)
    router = ReplicaRouter()
    with replica_reads(), transaction.atomic():
        assert router.db_for_read(_Model("scoring")) == "default"


def test_with_a_replica_each_read_asks_which_run_is_published(monkeypatch) -> None:
    """A process does not keep publications learnt from the primary's NOTIFY: the standby
    may not have replayed the run yet (``results.publications``)."""
    from types import SimpleNamespace

    from results import publications

    persistent = SimpleNamespace(
        vendor="postgresql", settings_dict={"CONN_MAX_AGE": 60}, in_atomic_block=False
    )
    assert publications.PublicationWatch.usable(persistent) is True
    monkeypatch.setattr(publications, "replica_configured", lambda: True)
    assert publications.PublicationWatch.usable(persistent) is False

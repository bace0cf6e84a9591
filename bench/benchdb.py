"""Shared by the benchmark scripts: a fresh PostgreSQL database on loopback."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg


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

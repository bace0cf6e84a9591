"""Servers and tools a test needs: skipped with the reason outside CI, failed in CI."""

from __future__ import annotations

import os

import pytest
import redis


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def require(reason: str) -> None:
    """Skip this test for ``reason``, or fail it in CI, where nothing may pass by skipping."""
    if in_ci():
        pytest.fail(f"CI requires this: {reason}", pytrace=False)
    pytest.skip(reason)


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False

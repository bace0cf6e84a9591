"""A Redis cache that keeps the service up while Redis is down: reads miss, writes are dropped.

``ResilientRedisCache`` is Django's ``RedisCache`` with every operation guarded. When Redis
refuses, times out or answers an error, the operation degrades as a cache miss would (``get``
answers the default, ``set`` does nothing, ``add`` answers False), a warning is logged once
per process and outage (not once per request), and Redis is left alone for ``RETRY_SECONDS``: a hung
server costs one socket timeout per process and retry period, not one per cache call. The
first operation that succeeds again logs that Redis is back.

Rate limits need to know that the shared cache is missing, rather than read a miss as "no
request yet": ``count`` answers None then, and ``config.abuse`` counts in the process instead.
``ping`` is for ``/health/``: it asks Redis even during an outage and raises what Redis did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)
T = TypeVar("T")

# After a failure, operations skip Redis for this long before one of them tries again.
RETRY_SECONDS = 5.0


class Outage:
    """Whether the shared cache is taken for down, and since when; one per cache backend."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.retry_at = 0.0
        self.down = False
        self.lock = threading.Lock()

    def skipping(self) -> bool:
        """True while Redis is left alone after a failure."""
        return self.down and time.monotonic() < self.retry_at

    def failed(self, error: Exception) -> None:
        with self.lock:
            self.retry_at = time.monotonic() + RETRY_SECONDS
            if self.down:
                return
            self.down = True
        logger.warning(
            "Cache %s is unreachable (%s: %s): serving without the shared cache, rate limits "
            "counted per process, until it answers again.",
            self.name,
            type(error).__name__,
            error,
        )

    def answered(self) -> None:
        if not self.down:
            return
        with self.lock:
            if not self.down:
                return
            self.down = False
        logger.warning("Cache %s answers again: shared cache and rate limits restored.", self.name)


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage_of(location: str) -> Outage:
    """The process's one ``Outage`` of a Redis location.

    Django makes a cache backend per thread (runserver and threaded servers: per request), so
    the state lives here, once per process, not on the backend.
    """
    with _outages_lock:
        return _outages.setdefault(location, Outage(location))


class ResilientRedisCache(RedisCache):
    """``RedisCache`` that degrades to no cache while Redis is unreachable."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.outage = outage_of(",".join(self._servers))

    def _guarded(self, default: T, operation: Callable[..., T], *args: Any) -> T:
        if self.outage.skipping():
            return default
        try:
            result = operation(*args)
        except redis.RedisError as error:
            self.outage.failed(error)
            return default
        self.outage.answered()
        return result

    @property
    def is_down(self) -> bool:
        return self.outage.skipping()

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        return self._guarded(False, super().add, key, value, timeout, version)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._guarded(default, super().get, key, default, version)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._guarded(None, super().set, key, value, timeout, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return self._guarded(False, super().touch, key, timeout, version)

    def delete(self, key: Any, version: Any = None) -> bool:
        return self._guarded(False, super().delete, key, version)

    def get_many(self, keys: Any, version: Any = None) -> dict[str, Any]:
        return self._guarded({}, super().get_many, keys, version)

    def has_key(self, key: Any, version: Any = None) -> bool:
        return self._guarded(False, super().has_key, key, version)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        missing = object()
        result = self._guarded(missing, super().incr, key, delta, version)
        if result is missing:  # as for a missing key: callers of incr() expect this
            raise ValueError(f"Key {key!r} not found: the cache is unreachable.")
        return result  # type: ignore[return-value]

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> list[Any]:
        return self._guarded(list(data), super().set_many, data, timeout, version)

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._guarded(None, super().delete_many, keys, version)

    def clear(self) -> bool:
        return self._guarded(False, super().clear)

    def count(self, key: str, ttl: int, amount: int = 1) -> int | None:
        """Add ``amount`` to the counter ``key`` (kept ``ttl`` s); the new count, None if Redis
        is down.

        One round trip: INCRBY and EXPIRE pipelined (the callers' keys name their window, so
        pushing the expiry back is harmless).
        """

        def increment() -> int:
            name = self.make_and_validate_key(key)
            pipeline = self._cache.get_client(name, write=True).pipeline(transaction=False)
            pipeline.incrby(name, amount)
            pipeline.expire(name, ttl)
            return int(pipeline.execute()[0])

        return self._guarded(None, increment)

    def ping(self) -> None:
        """Ask Redis whether it answers, outage or not; raises what the client raised."""
        self._cache.get_client(write=True).ping()
        self.outage.answered()

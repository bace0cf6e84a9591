"""The one cache of results: what published runs determine, kept under a key that names them.

A published run never changes and a new publication has a new run id (or publication time),
so a key naming the runs (``run_key``) can never serve anything stale and nothing is ever
invalidated. The results API keeps its rendered documents here, the dashboard the values of
its pages, the diagnosis its documents; the exports key their ``ETag`` the same way. Entries
live in the shared cache (Redis) for ``RESULTS_CACHE_SECONDS``; each process also keeps the
rendered documents it served last in memory (``LocalDocuments``), which saves the trip to
Redis on the API's hot path.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.cache import cache

from results.selectors import Publication
from scoring.models import Run

CACHE_PREFIX = "results:v2:"
# Bumped when what is cached changes shape (2: issue 13's precision, rank-interval and change
# fields), so neither the cache nor an ETag of the old shape is served for the same run.
SHAPE = "2"


class LocalDocuments:
    """The most recently used entries of this process, up to a number of bytes.

    In front of the shared cache: a key names its published runs, so an entry can never be
    stale, and a hit saves the round trip to Redis.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            content = self.entries.get(key)
            if content is not None:
                self.entries.move_to_end(key)
            return content

    def put(self, key: str, content: bytes) -> None:
        if len(content) > self.max_bytes // 4:
            return
        with self.lock:
            if key in self.entries:
                return
            self.entries[key] = content
            self.size += len(content)
            while self.size > self.max_bytes:
                _key, dropped = self.entries.popitem(last=False)
                self.size -= len(dropped)


local_documents = LocalDocuments(max_bytes=8 * 1024 * 1024)


def run_key(name: str, publications: Sequence[Publication], *parts: str) -> str:
    """A digest of what an entry depends on: its name, the published runs it reads (each
    with its publication time) and any other ``parts`` (a unit, the request's path…)."""
    return _publications_digest(name, tuple(publications), *parts)


def published_run_key(name: str, run: Run, *parts: str) -> str:
    """``run_key`` of one published run."""
    return _digest(name, ((run.pk, run.published_at),), *parts)


@functools.lru_cache(maxsize=4096)
def _publications_digest(name: str, publications: tuple[Publication, ...], *parts: str) -> str:
    # Keyed on the publications themselves (frozen, equal only in every field): a hit on
    # the API's hot path costs no more than hashing them.
    return _digest(name, tuple((p.run_id, p.published_at) for p in publications), *parts)


@functools.lru_cache(maxsize=4096)
def _digest(name: str, runs: tuple[tuple[int, dt.datetime], ...], *parts: str) -> str:
    published = ",".join(f"{run}@{at.timestamp()}" for run, at in runs) or "none"
    text = "\n".join((SHAPE, name, published, *parts))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def cached_document(key: str) -> bytes | None:
    """An entry from this process's memory, else from the shared cache."""
    content = local_documents.get(key)
    if content is None:
        content = cache.get(CACHE_PREFIX + key)
        if content is not None:
            local_documents.put(key, content)
    return content


def store_document(key: str, content: bytes) -> None:
    cache.set(CACHE_PREFIX + key, content, settings.RESULTS_CACHE_SECONDS)
    local_documents.put(key, content)


def remember[T](key: str, compute: Callable[[], T]) -> T:
    """``compute()``, kept in the shared cache under ``key`` (a ``run_key``)."""
    return cache.get_or_set(CACHE_PREFIX + key, compute, settings.RESULTS_CACHE_SECONDS)

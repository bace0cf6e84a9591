"""A real HTTP receiver of webhooks for the tests: ``http.server`` in a thread on loopback.

It keeps every request (headers and body as received) and answers each with the next
status of its script (then ``default``); ``hold`` makes it keep the first request open until
``release`` is set, so a test can stop the sender mid-attempt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)
    default: int = 204
    hold_first: bool = False
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
            first = len(self.requests) == 1
            status = self.statuses.pop(0) if self.statuses else self.default
        if first and self.hold_first:
            self.holding.set()
            self.release.wait(30)
        return status

    def verified(self, secret: str) -> list[Any]:
        """Every request's payload, each verified with ``standardwebhooks`` (raises if not)."""
        return [Webhook(secret).verify(r.body, r.headers) for r in list(self.requests)]

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(self.requests)} of {count} requests")
            time.sleep(0.05)
        return list(self.requests)


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 (a free port) while the block runs."""
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            received = Received(headers=dict(self.headers.items()), body=body, path=self.path)
            status = box["receiver"].answer(received)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender went away (killed mid-attempt)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook", **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box["receiver"]
    finally:
        box["receiver"].release.set()
        server.shutdown()
        server.server_close()


def wait_until(check: Callable[[], Any], *, timeout: float = 15, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)

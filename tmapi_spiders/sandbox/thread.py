"""Run a sandbox on its own event loop in a background thread (pytest fixtures, benchmarks)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from types import TracebackType
from typing import Any

from tmapi_spiders.sandbox.config import SandboxConfig
from tmapi_spiders.sandbox.server import CALLS_PATH, RESET_PATH, STATS_PATH, RunningSandbox, start_sandbox


class SandboxThread:
    """`with SandboxThread(config) as sb:` serves `sb.base_url` until the block ends.

    `stats()`, `calls()` and `reset()` go over real HTTP, so they exercise the same
    /_sandbox endpoints that scripts and other processes use.
    """

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: RunningSandbox | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> SandboxThread:
        self._thread = threading.Thread(target=self._run, name="tmapi-sandbox", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"sandbox failed to start: {self._error}") from self._error
        if not self.base_url:
            raise RuntimeError("sandbox did not start within 30 s")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._running = loop.run_until_complete(start_sandbox(self.config, self.host, self.port))
            self.base_url = self._running.base_url
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._running.stop())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the observability endpoints, over HTTP ---------------------------------------------
    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.base_url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._call(STATS_PATH)

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call(f"{CALLS_PATH}?since={since}")["calls"]

    def reset(self) -> None:
        self._call(RESET_PATH, "POST")

"""When a worker pops one more request: with a job-wide limiter, only when the call could start soon."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Room:
    """Whether to pop one more request now: with a job-wide limiter, only when one could take a
    call slot soon, so leases do not sit in a worker waiting for a slot."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.limiter: Callable[[], bool] | None = None  # the limiter's "room for one more?" (None: always)
        # A request popped in this turn of the event loop reaches the limiter only at the next one
        # (Scrapy runs the downloader middlewares in a new task): until then, pop no more.
        self._entering = False

    def may_pop(self) -> bool:
        return self.limiter is None or (not self._entering and self.limiter())

    def popped(self) -> None:
        if self.limiter is not None and not self._entering:
            self._entering = True
            asyncio.get_running_loop().call_soon(self._entered)

    def _entered(self) -> None:
        self._entering = False
        self.wake()

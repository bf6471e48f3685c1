"""Whether a worker should take one more request from the job's queue now.

With a job-wide limit (TMAPI_MAX_CONCURRENCY) most requests a worker pops wait for a call
slot: 20 workers each popped up to CONCURRENT_REQUESTS (16) for 8 slots job-wide, so about
300 leases sat in workers, renewed at every heartbeat, kept from a worker that joined late,
and a kill -9 left them to wait a whole lease. The limiter knows how many of this worker's
requests wait for a slot; `Room` asks it before each pop, and the limiter wakes the engine
when one of them takes a slot. Without a limiter every pop is allowed, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Room:
    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        # The limiter's "could a request more start soon?" (None: no limiter, always).
        self.limiter: Callable[[], bool] | None = None
        # A request popped in this turn of the event loop has not reached the limiter yet:
        # Scrapy runs the downloader middlewares in a task that starts at the next turn, and
        # its engine asks for requests in a loop, so without this it popped 16 at once.
        self._entering = False

    def may_pop(self) -> bool:
        return self.limiter is None or (not self._entering and self.limiter())

    def popped(self) -> None:
        if self.limiter is not None and not self._entering:
            self._entering = True
            asyncio.get_running_loop().call_soon(self._entered)

    def _entered(self) -> None:
        """After the popped request's first step (it waits for a slot now): ask again."""
        self._entering = False
        self.wake()

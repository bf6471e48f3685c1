"""When a worker pops one more request: with a job-wide limiter, only when the call could start soon."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Room:
    """Whether to pop one more request now: with a job-wide limiter, only when one could take a
    call slot soon, so leases do not sit in a worker waiting for a slot.

    With the job-wide limit in Redis (`ack_wait` > 0) a pop also waits, at most `ack_wait` seconds,
    while a page of this worker is answered but its work not yet done: Scrapy asks for the next
    request as an answer arrives, a few milliseconds before that page is written, and the pop that
    comes once it is written acknowledges it on its way, where the ack loop would send it alone.
    A worker whose pops come closer together than `ack_wait` does not wait: its next pop takes
    the acknowledgement in time, as acknowledgements of a few pages together."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.limiter: Callable[[], bool] | None = None  # the limiter's "room for one more?" (None: always)
        self.ack_wait = 0.0  # longest wait of a pop for an answered page's work (0: none)
        # A request popped in this turn of the event loop reaches the limiter only at the next one
        # (Scrapy runs the downloader middlewares in a new task): until then, pop no more.
        self._entering = False
        self._answered: dict[str, float] = {}  # lease -> when its answer came (monotonic), until its work is done
        self._done = False  # a page's work was done since the last pop: the next one acknowledges it
        self._waiting_since: float | None = None  # when a pop first waited for an answered page
        self._popped_at = -float("inf")  # when the last pop was (monotonic)
        self._timer: asyncio.TimerHandle | None = None

    def may_pop(self) -> bool:
        return self.limiter is None or (not self._entering and self.limiter() and not self._wait_for_done())

    def popped(self) -> None:
        self._done, self._waiting_since, self._popped_at = False, None, time.monotonic()
        if self._timer is not None:  # the pop a wait was for came: no wake at its end
            self._timer.cancel()
            self._timer = None
        if self.limiter is not None and not self._entering:
            self._entering = True
            asyncio.get_running_loop().call_soon(self._entered)

    def answered(self, lease: str) -> None:
        """The call of `lease` was answered: its page is being read and written."""
        if self.ack_wait > 0:
            self._answered[lease] = time.monotonic()

    def done(self, lease: str) -> None:
        """The work of `lease` is done: the next pop acknowledges it."""
        if self._answered.pop(lease, None) is not None:
            self._done = True

    def forget(self, lease: str) -> None:
        """`lease` was handed over (a retry queued in its place): no work of it to wait for."""
        self._answered.pop(lease, None)

    def _wait_for_done(self) -> bool:
        now = time.monotonic()
        for lease, at in list(self._answered.items()):
            if now - at >= self.ack_wait:  # not done in time: the ack loop acknowledges it, as before
                del self._answered[lease]
        if self._done or not self._answered or now - self._popped_at < self.ack_wait:
            self._waiting_since = None
            return False
        since = self._waiting_since = self._waiting_since or now
        if now - since >= self.ack_wait:
            return False
        if self._timer is None:  # the engine asks again when the answer is through the spider; at the latest:
            self._timer = asyncio.get_running_loop().call_later(since + self.ack_wait - now, self._waited)
        return True

    def _waited(self) -> None:
        self._timer = None
        self.wake()

    def _entered(self) -> None:
        self._entering = False
        self.wake()

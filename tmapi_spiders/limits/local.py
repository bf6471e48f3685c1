"""One process: the slots are a counter and a FIFO of waiters on the reactor thread."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from tmapi_spiders.limits.policy import Aimd, Margin, Slot


class LocalBackend:
    """The reactor thread is the only user, so plain counters are exact."""

    def __init__(self, concurrency: int, qps: float) -> None:
        self.policy = Aimd(concurrency, qps)
        self.margin = Margin()
        self.in_flight = 0
        self.next_start = 0.0
        self.sent: deque[float] = deque()  # when the last calls really left (rate limit)
        self.answered: deque[float] = deque()  # when calls were answered, the last second's (a 429's rate)
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.seq = 0

    async def acquire(self) -> Slot:
        policy = self.policy
        while self.in_flight >= policy.slots():
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter
        self.in_flight += 1
        epoch = policy.epoch
        if policy.qps:
            interval = (1.0 + self.margin.value) / policy.qps
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + interval
            if start > now:
                await asyncio.sleep(start - now)
            # A loop that wakes late would send the overdue calls together: also never more than
            # `k` calls in any k intervals, counted on when they really left.
            k = max(1, int(policy.qps))
            window = k * interval
            while len(self.sent) >= k and (now := time.monotonic()) < self.sent[-k] + window:
                await asyncio.sleep(self.sent[-k] + window - now)
            self.sent.append(time.monotonic())
            while len(self.sent) > k:
                self.sent.popleft()
        self.seq += 1
        return Slot(str(self.seq), epoch)

    async def release(self, slot: Slot, overloaded: bool, rate_limited: bool = False) -> bool:
        self.in_flight -= 1
        now = time.monotonic()
        answered = self.answered
        while answered and now - answered[0] > 1.0:
            answered.popleft()
        cut = False
        if rate_limited or overloaded:
            self.margin.on_refused()
        else:
            self.margin.on_answered()
        if rate_limited:
            cut = self.policy.on_rate_limited(slot.epoch, now, len(answered))
            if cut:
                # let the last second's calls age out of the gateway's window first
                self.next_start = max(self.next_start, now + 1.0)
        elif overloaded:
            cut = self.policy.on_overload(slot.epoch, now)
        else:
            answered.append(now)
            self.policy.on_success(now)
        free = self.policy.slots() - self.in_flight
        while free > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
        return cut

    async def close(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.cancel()

    def effective(self) -> tuple[float, float]:
        return self.policy.limit, self.policy.qps

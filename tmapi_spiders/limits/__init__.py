"""TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS, held across the whole job (middleware.py, 940): the settings,
the AIMD policy both backends apply (429s and 503s cut the limits, successes creep them back; its constants
in one place) and the one-process backend. A shared job's is a lease-based semaphore in Redis (shared.py)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from scrapy.settings import BaseSettings

from tmapi_spiders import registry

# The rate is aimed this far under the plan (calls (1 + margin)/QPS apart): room for clock jitter.
QPS_MARGIN = 0.025
# Each refusal (503 or 429) widens it by MARGIN_STEP up to QPS_MARGIN_MAX; MARGIN_DECAY answers narrow it one step.
MARGIN_STEP = 0.01
QPS_MARGIN_MAX = 0.1
MARGIN_DECAY = 1000
# The AIMD constants: `Aimd` uses them, the Redis RELEASE script gets them as arguments (AIMD_ARGS).
CUT = 0.9  # multiplicative decrease on a 503 (at least one slot)
PROBE = 30.0  # seconds before creeping past the level that last failed
CREEP = 10  # slots grow by 1/(CREEP x limit) a success: about one slot per CREEP full rounds
QPS_FLOOR = 100  # a cut never takes the rate below ceiling/QPS_FLOOR
QPS_STEP = 200  # the rate grows by ceiling/QPS_STEP a success
AIMD_ARGS = (CUT, CREEP, QPS_FLOOR, QPS_STEP)
# Without TMAPI_MAX_QPS a 429 sets a rate from the calls let through in the second before it,
# never under RATE_FLOOR calls a second; it grows by itself/FOUND_STEP a success.
RATE_FLOOR = 0.5
FOUND_STEP = 20


class LimitUnavailable(Exception):
    """The job-wide limit could not be consulted (Redis lost): nothing goes out unlimited."""


def read_limits(settings: BaseSettings) -> tuple[int, float]:
    """(max concurrency, max qps), 0 meaning no limit; ConfigError names a bad limit setting."""
    return registry.read(settings, "TMAPI_MAX_CONCURRENCY"), float(registry.read(settings, "TMAPI_MAX_QPS"))


def configure(settings: BaseSettings) -> None:
    """With a limit on, let the limiter alone decide how many calls run (from the add-on).

    Each process may hold twice the job's limit in CONCURRENT_REQUESTS (requests waiting for a
    slot count there too), and AutoThrottle, which paces by latency, goes off. User values stay."""
    try:
        concurrency, qps = read_limits(settings)
    except ValueError:
        return  # the crawl's checks report it as a one-line error
    if not concurrency and not qps:
        return
    need = max(2 * concurrency, 16) if concurrency else max(16, math.ceil(qps))
    for name in ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN"):
        if settings.getint(name) < need:
            settings.set(name, need, priority="addon")
    settings.set("AUTOTHROTTLE_ENABLED", False, priority="addon")


@dataclass
class Aimd:
    """Effective limits after the API's 503s: cut on overload, creep back on success."""

    ceiling: int  # TMAPI_MAX_CONCURRENCY (0: none)
    qps_ceiling: float  # TMAPI_MAX_QPS (0: none)
    limit: float = 0.0
    qps: float = 0.0
    epoch: int = 0
    bad: int = 0  # the slot count that last failed (0: none)
    bad_at: float = -math.inf
    found: float = 0.0  # without a qps ceiling: the rate the gateway let through at its last 429 (0: none yet)

    def __post_init__(self) -> None:
        self.limit = float(self.ceiling)
        self.qps = self.qps_ceiling

    def slots(self) -> int:
        return max(1, int(self.limit)) if self.ceiling else 1 << 30

    def on_overload(self, epoch: int, now: float) -> bool:
        """A 503 for a call made under `epoch`: cut once per epoch. True if it cut."""
        if epoch != self.epoch:
            return False
        self.epoch += 1
        self.bad_at = now
        if self.ceiling:
            self.bad = self.slots()
            self.limit = float(max(1, min(self.bad - 1, math.floor(self.limit * CUT))))
        if self.qps_ceiling:
            self.qps = max(self.qps_ceiling / QPS_FLOOR, self.qps * CUT)
        return True

    def on_rate_limited(self, epoch: int, now: float, accepted: float) -> bool:
        """A 429 for a call made under `epoch`: cut once per epoch, True if it cut. With no plan rate,
        the job takes the rate let through (`accepted`: calls that left in the second before it, answered) less
        CUT; `on_let_through` counts those answered after it (a refusal comes back at once, an answer later)."""
        if self.qps_ceiling:
            return self.on_overload(epoch, now)
        if epoch != self.epoch:
            return False
        self.epoch += 1
        self.bad_at = now
        self.found = max(RATE_FLOOR, min(self.qps, accepted) if self.qps else accepted)
        self.qps = max(RATE_FLOOR, self.found * CUT)
        return True

    def on_let_through(self, accepted: float) -> None:
        """More calls of the second before the last 429 came back answered: the rate found grows to them."""
        if self.found and accepted > self.found:
            self.found = accepted
            self.qps = max(self.qps, accepted * CUT)

    def on_success(self, now: float) -> None:
        if self.ceiling and self.limit < self.ceiling:
            step = 1.0 / (CREEP * max(1.0, self.limit))
            grown = min(float(self.ceiling), self.limit + step)
            if self.bad and int(grown) >= self.bad and now - self.bad_at < PROBE:
                grown = min(grown, self.bad - 1 + 0.999)
            self.limit = grown
        if self.qps_ceiling and self.qps < self.qps_ceiling:
            self.qps = min(self.qps_ceiling, self.qps + self.qps_ceiling / QPS_STEP)
        elif self.found:
            # a rate found from 429s creeps up, past the refused one only after PROBE seconds
            grown = self.qps + self.found / FOUND_STEP
            if now - self.bad_at < PROBE:
                grown = min(grown, self.found)
            self.qps = max(self.qps, grown)


@dataclass
class Margin:
    """How far under the plan's rate this process schedules (calls (1 + value)/qps apart)."""

    value: float = QPS_MARGIN

    def update(self, refused: bool) -> None:
        """A refusal (503 or 429) widens it a step; an answer narrows it 1/MARGIN_DECAY of one."""
        if refused:
            self.value = min(QPS_MARGIN_MAX, self.value + MARGIN_STEP)
        elif self.value > QPS_MARGIN:
            self.value = max(QPS_MARGIN, self.value - MARGIN_STEP / MARGIN_DECAY)


@dataclass
class Slot:
    holder: str
    epoch: int
    wait: float = 0.0  # seconds until the call's turn in the rate schedule
    uses: int = 0  # hand-overs inside one worker since the slot came from Redis
    sent: float = 0.0  # one process: when the call left (a 429 counts the calls let through before it)


class LocalBackend:
    """One process: the slots are a counter and a FIFO of waiters; the reactor thread is the only
    user, so plain counters are exact."""

    def __init__(self, concurrency: int, qps: float) -> None:
        self.policy = Aimd(concurrency, qps)
        self.margin = Margin()
        self.in_flight = 0
        self.next_start = 0.0
        self.sent: deque[float] = deque()  # when the last calls really left (rate limit)
        self.flying: deque[float] = deque()  # when the calls on their way left, in that order
        self.answered: deque[float] = deque()  # when the calls answered lately left (a 429's rate)
        self.refused = 0.0  # when the call of the last 429 left
        self.let_through = 0  # the calls of the second before it answered so far
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.on_room: Callable[[], None] = lambda: None  # a paced call left: a worker may pop one more

    def interval(self) -> float:
        """Seconds between two calls at the rate, margin included (only with a rate)."""
        return (1.0 + self.margin.value) / self.policy.qps

    def has_room(self) -> bool:
        """Whether a call taken now would leave within one interval of the rate (always without one):
        a worker of a shared job pops no more, so it holds no pages its job's other workers could do."""
        return not self.policy.qps or self.next_start - time.monotonic() <= self.interval()

    async def acquire(self) -> Slot:
        policy = self.policy
        while self.in_flight >= policy.slots():
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter
        self.in_flight += 1
        epoch = policy.epoch
        if policy.qps:
            interval = self.interval()
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + interval
            if start > now:
                await asyncio.sleep(start - now)
            self.on_room()
            # A loop that wakes late would send the overdue calls together: also never more than
            # `k` calls in any k intervals, counted on when they really left.
            k = max(1, int(policy.qps))
            window = k * interval
            while len(self.sent) >= k and (now := time.monotonic()) < self.sent[-k] + window:
                await asyncio.sleep(self.sent[-k] + window - now)
            self.sent.append(time.monotonic())
            while len(self.sent) > k:
                self.sent.popleft()
        slot = Slot("local", epoch, sent=time.monotonic())  # a holder names a lease in Redis: none here
        self.flying.append(slot.sent)
        return slot

    async def release(self, slot: Slot, overloaded: bool, rate_limited: bool = False) -> bool:
        """Gives the slot back; True if this 503 (overloaded) or 429 (rate_limited) cut the job's limits."""
        self.in_flight -= 1
        self.flying.remove(slot.sent)
        now = time.monotonic()
        self.margin.update(rate_limited or overloaded)
        cut = False
        if rate_limited:
            let_through = sum(slot.sent - 1.0 <= sent < slot.sent for sent in self.answered)
            cut = self.policy.on_rate_limited(slot.epoch, now, let_through)
            if cut:
                self.refused, self.let_through = slot.sent, let_through
                # let the last second's calls age out of the gateway's window first
                self.next_start = max(self.next_start, now + 1.0)
                # a worker with no call booked looks at its queue again once the pause lets one leave
                opens = self.next_start - self.interval()
                asyncio.get_running_loop().call_later(max(0.0, opens - now), self.on_room)
        elif overloaded:
            cut = self.policy.on_overload(slot.epoch, now)
        else:
            self.answered.append(slot.sent)
            if self.refused - 1.0 <= slot.sent < self.refused:  # let through before the last 429, answered after it
                self.let_through += 1
                self.policy.on_let_through(self.let_through)
            self.policy.on_success(now)
        # a later 429 is for a call on its way: the second before the oldest one left is all it counts
        oldest = self.flying[0] if self.flying else now
        while self.answered and self.answered[0] < oldest - 1.0:
            self.answered.popleft()
        free = self.policy.slots() - self.in_flight
        while free > 0 and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
        return cut

    async def close(self) -> None:
        for waiter in self.waiters:
            waiter.cancel()  # nothing for one already done

    def effective(self) -> tuple[float, float]:
        return self.policy.limit, self.policy.qps

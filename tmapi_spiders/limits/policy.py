"""The limits' settings and the AIMD policy both backends apply (its constants in one place)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

from scrapy.settings import BaseSettings

from tmapi_spiders.settings_util import set_unless_given

logger = logging.getLogger(__name__)


CONCURRENCY_SETTING = "TMAPI_MAX_CONCURRENCY"
QPS_SETTING = "TMAPI_MAX_QPS"
LEASE_SETTING = "TMAPI_LIMIT_LEASE"
POLL_SETTING = "TMAPI_LIMIT_POLL"
DEFAULT_LEASE = 30.0  # seconds a slot of a silent worker is kept; renewed every third of it
# Longest wait on the wake list before looking at the leases again: only a slot freed without a
# token needs it (an expired lease). Each waiting worker asks Redis once per this.
DEFAULT_POLL = 5.0
# The rate is aimed this far under the plan (calls (1 + margin)/QPS apart), room for the jitter
# between the limiter and the gateway's clock.
QPS_MARGIN = 0.025
# A refused call (503 or 429) says that jitter ate the margin: it grows by MARGIN_STEP a refusal,
# up to QPS_MARGIN_MAX, and shrinks back by MARGIN_STEP over MARGIN_DECAY calls answered (Margin).
MARGIN_STEP = 0.01
QPS_MARGIN_MAX = 0.1
MARGIN_DECAY = 1000
# The AIMD policy's constants, in one place: `Aimd` uses them, and the Redis RELEASE script
# gets them as arguments (tests/unit/test_limits_policy.py runs the same events through both).
CUT = 0.9  # multiplicative decrease on a 503 (at least one slot)
PROBE = 30.0  # seconds before creeping past the level that last failed
CREEP = 10  # slots grow by 1/(CREEP x limit) a success: about one slot per CREEP full rounds
QPS_FLOOR = 100  # a cut never takes the rate below ceiling/QPS_FLOOR
QPS_STEP = 200  # the rate grows by ceiling/QPS_STEP a success
AIMD_ARGS = (CUT, CREEP, QPS_FLOOR, QPS_STEP)
# Without TMAPI_MAX_QPS, a 429 sets a rate from the calls the gateway let through in the second
# before it (see Aimd.on_rate_limited); that rate grows by itself/FOUND_STEP a success.
RATE_FLOOR = 0.5  # calls a second: a rate found from 429s is never set lower
FOUND_STEP = 20
OVERLOAD_MARK = b"concurrency limit exceeded"
RATE_LIMITED = 429  # the gateway's rate limit (Retry-After tells when to come back)
RATE_LIMIT_MARK = b"rate limit exceeded"
REDIS_TRIES = 20  # consecutive Redis errors a waiting request survives before it fails


class LimitUnavailable(Exception):
    """The job-wide limit could not be consulted (Redis lost): nothing goes out unlimited."""


class LimitError(ValueError):
    """A limit setting that is not a number (the message names it)."""


def read_limits(settings: BaseSettings) -> tuple[int, float]:
    """(max concurrency, max qps) from the settings; 0 means no limit. LimitError names a bad one."""
    raw = settings.get(CONCURRENCY_SETTING)
    try:
        concurrency = int(str(raw).strip()) if raw not in (None, "") else 0
    except ValueError:
        raise LimitError(f"{CONCURRENCY_SETTING} must be a whole number of calls (0: no limit), got {raw!r}") from None
    raw = settings.get(QPS_SETTING)
    try:
        qps = float(str(raw).strip()) if raw not in (None, "") else 0.0
    except ValueError:
        raise LimitError(f"{QPS_SETTING} must be a number of calls per second (0: no limit), got {raw!r}") from None
    if concurrency < 0:
        raise LimitError(f"{CONCURRENCY_SETTING} must not be negative (0: no limit), got {concurrency}")
    if qps < 0 or not math.isfinite(qps):
        raise LimitError(f"{QPS_SETTING} must be a positive number (0: no limit), got {raw!r}")
    for name in (LEASE_SETTING, POLL_SETTING):
        raw = settings.get(name)
        try:
            value = float(raw) if raw not in (None, "") else 1.0
        except (TypeError, ValueError):
            raise LimitError(f"{name} must be a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise LimitError(f"{name} must be above 0 seconds, got {raw!r}")
    return concurrency, qps


def configure(settings: BaseSettings) -> None:
    """With a limit on, let the limiter alone decide how many calls run (from the add-on, tmapi_spiders/addons.py).

    CONCURRENT_REQUESTS counts requests waiting for a slot too, so each process may hold
    twice the job's limit (every worker must be able to use the whole limit when the
    others are gone); AutoThrottle is switched off, because it paces by latency and would
    keep the job below the plan. Values the user gave (the project, a spider, -s) are kept.
    """
    try:
        concurrency, qps = read_limits(settings)
    except LimitError:
        return  # check() reports it as a one-line error
    if not concurrency and not qps:
        return
    need = max(2 * concurrency, 16) if concurrency else max(16, math.ceil(qps))
    for name in ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN"):
        if settings.getint(name) < need:
            set_unless_given(settings, name, need)
    set_unless_given(settings, "AUTOTHROTTLE_ENABLED", False)


def check(settings: BaseSettings) -> None:
    read_limits(settings)


# --- the AIMD policy, shared by both backends ------------------------------------------------


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
    probe: float = PROBE  # seconds before creeping past the level that last failed (the Lua script's ARGV)

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
        """A 429 (the gateway's rate limit) for a call made under `epoch`: cut once per epoch.

        With TMAPI_MAX_QPS the plan's rate is cut as a 503 cuts it. Without, there is no rate
        to cut: the job takes the one the gateway let through, `accepted` (calls answered in
        the second before this 429), less CUT, so one 429 brings the whole job under the
        gateway's limit instead of ten percent at a time. True if it cut."""
        if self.qps_ceiling:
            return self.on_overload(epoch, now)
        if epoch != self.epoch:
            return False
        self.epoch += 1
        self.bad_at = now
        self.found = max(RATE_FLOOR, min(self.qps, accepted) if self.qps else accepted)
        self.qps = max(RATE_FLOOR, self.found * CUT)
        return True

    def on_success(self, now: float) -> None:
        if self.ceiling and self.limit < self.ceiling:
            step = 1.0 / (CREEP * max(1.0, self.limit))
            grown = min(float(self.ceiling), self.limit + step)
            if self.bad and int(grown) >= self.bad and now - self.bad_at < self.probe:
                grown = min(grown, self.bad - 1 + 0.999)
            self.limit = grown
        if self.qps_ceiling and self.qps < self.qps_ceiling:
            self.qps = min(self.qps_ceiling, self.qps + self.qps_ceiling / QPS_STEP)
        elif self.found:
            # a rate found from 429s creeps up, never past the rate that was refused until PROBE
            # seconds have passed, then on until the gateway refuses again
            grown = self.qps + self.found / FOUND_STEP
            if now - self.bad_at < self.probe:
                grown = min(grown, self.found)
            self.qps = max(self.qps, grown)


@dataclass
class Margin:
    """How far under the plan's rate the schedule aims (calls (1 + value)/qps apart), widened
    by the refusals jitter causes (QPS_MARGIN_MAX above). One per process: each worker of a
    shared job passes its own to the schedule (limits/shared.py ACQUIRE)."""

    value: float = QPS_MARGIN

    def on_refused(self) -> None:
        self.value = min(QPS_MARGIN_MAX, self.value + MARGIN_STEP)

    def on_answered(self) -> None:
        if self.value > QPS_MARGIN:
            self.value = max(QPS_MARGIN, self.value - MARGIN_STEP / MARGIN_DECAY)


@dataclass
class Slot:
    holder: str
    epoch: int
    wait: float = 0.0  # seconds until the call's turn in the rate schedule
    uses: int = 0  # hand-overs inside one worker since the slot came from Redis


class Backend(Protocol):
    async def acquire(self) -> Slot: ...

    async def release(self, slot: Slot, overloaded: bool, rate_limited: bool = False) -> bool:
        """Gives the slot back; True if this 503 (overloaded) or 429 (rate_limited) cut the job's limits."""
        ...

    async def close(self) -> None: ...

    def effective(self) -> tuple[float, float]: ...

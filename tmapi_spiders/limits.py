"""TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS: the plan's limits, held across the whole job.

`TmapiLimitMiddleware` sits after HttpCacheMiddleware (900), the envelope (910) and the
spending cap (930), before the token goes on (950): only calls that really leave for
the API take a slot, and cached answers or refused requests take none. Its
`process_request` awaits a slot (and, with a rate limit, the request's turn); the slot
comes back in `process_response` / `process_exception`.

In one process the slots are a counter on the reactor thread. With REDIS_URL they are a
job-wide, lease-based semaphore in Redis: a zset `{job}:limit:slots` of holders scored
by lease expiry (Redis server time), taken and given back by Lua scripts, renewed while
a call runs; a kill -9'd worker's slots expire and come back by themselves. A worker
that finds every slot taken blocks on the job's wake list (one token per released slot)
instead of polling (issue 17). The rate is a shared schedule (GCRA): each call reserves
the next free start time, aimed 2.5 % under the plan.

A 503 "concurrency limit exceeded" means the plan is tighter than the settings say:
the limits are cut (once per window: only a call made under the current limit can cut
it again) and creep back one success at a time, but never past the last level that
failed until PROBE seconds have passed, so the job settles just under the real limit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, Self

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.settings import BaseSettings

from tmapi_spiders import contract
from tmapi_spiders.api import endpoint_of
from tmapi_spiders.settings_util import priority_above

logger = logging.getLogger(__name__)

CONCURRENCY_SETTING = "TMAPI_MAX_CONCURRENCY"
QPS_SETTING = "TMAPI_MAX_QPS"
LEASE_SETTING = "TMAPI_LIMIT_LEASE"
POLL_SETTING = "TMAPI_LIMIT_POLL"
DEFAULT_LEASE = 30.0  # seconds a slot of a silent worker is kept; renewed every third of it
# Longest wait on the wake list before looking at the leases again: only a slot freed without a
# token needs it (a kill -9'd worker's lease expiring, TMAPI_LIMIT_LEASE, 30 s). Each waiting worker
# asks once per this, so 1 s cost 20 asks a second with 20 workers (6.5 commands a page).
DEFAULT_POLL = 5.0
# The rate is aimed this far under the plan: calls 1.025/QPS apart, so the API's clock and the
# network may move a call by ~25 ms either way before 11 land in a second of a plan of 10.
QPS_MARGIN = 0.025
# The AIMD policy's constants, in one place: `Aimd` uses them, and the Redis RELEASE script
# gets them as arguments (tests/test_limits_policy.py runs the same events through both).
CUT = 0.9  # multiplicative decrease on a 503 (at least one slot)
PROBE = 30.0  # seconds before creeping past the level that last failed
CREEP = 10  # slots grow by 1/(CREEP x limit) a success: about one slot per CREEP full rounds
QPS_FLOOR = 100  # a cut never takes the rate below ceiling/QPS_FLOOR
QPS_STEP = 200  # the rate grows by ceiling/QPS_STEP a success
AIMD_ARGS = (CUT, CREEP, QPS_FLOOR, QPS_STEP)
OVERLOAD_MARK = b"concurrency limit exceeded"
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
    """With a limit on, let the limiter alone decide how many calls run (from update_settings).

    CONCURRENT_REQUESTS counts requests waiting for a slot too, so each process may hold
    twice the job's limit (every worker must be able to use the whole limit when the
    others are gone); AutoThrottle is switched off, because it paces by latency and would
    keep the job below the plan. Values given with -s (priority cmdline) are kept.
    """
    try:
        concurrency, qps = read_limits(settings)
    except LimitError:
        return  # check() reports it as a one-line error
    if not concurrency and not qps:
        return
    need = max(2 * concurrency, 16) if concurrency else max(16, math.ceil(qps))
    for name in ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN"):
        if (settings.getpriority(name) or 0) < 40 and settings.getint(name) < need:
            settings.set(name, need, priority=priority_above(settings, name))
    if (settings.getpriority("AUTOTHROTTLE_ENABLED") or 0) < 40:
        settings.set("AUTOTHROTTLE_ENABLED", False, priority=priority_above(settings, "AUTOTHROTTLE_ENABLED"))


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

    def on_success(self, now: float) -> None:
        if self.ceiling and self.limit < self.ceiling:
            step = 1.0 / (CREEP * max(1.0, self.limit))
            grown = min(float(self.ceiling), self.limit + step)
            if self.bad and int(grown) >= self.bad and now - self.bad_at < PROBE:
                grown = min(grown, self.bad - 1 + 0.999)
            self.limit = grown
        if self.qps_ceiling and self.qps < self.qps_ceiling:
            self.qps = min(self.qps_ceiling, self.qps + self.qps_ceiling / QPS_STEP)


@dataclass
class Slot:
    holder: str
    epoch: int
    wait: float = 0.0  # seconds until the call's turn in the rate schedule
    uses: int = 0  # hand-overs inside one worker since the slot came from Redis


class Backend(Protocol):
    async def acquire(self) -> Slot: ...

    async def release(self, slot: Slot, overloaded: bool) -> bool:
        """Gives the slot back; True if this 503 cut the job's limits."""
        ...

    async def close(self) -> None: ...

    def effective(self) -> tuple[float, float]: ...


class LocalBackend:
    """One process: the reactor thread is the only user, so plain counters are exact."""

    def __init__(self, concurrency: int, qps: float) -> None:
        self.policy = Aimd(concurrency, qps)
        self.in_flight = 0
        self.next_start = 0.0
        self.sent: deque[float] = deque()  # when the last calls really left (rate limit)
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
            interval = (1.0 + QPS_MARGIN) / policy.qps
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + interval
            if start > now:
                await asyncio.sleep(start - now)
            # The schedule above spaces the calls; a loop that wakes late (a busy machine) would
            # then send the overdue ones together. So also: never more than `k` calls sent in
            # any k intervals, counted on the times they really left.
            k = max(1, int(policy.qps))
            window = k * interval
            while len(self.sent) >= k and (now := time.monotonic()) < self.sent[-k] + window:
                await asyncio.sleep(self.sent[-k] + window - now)
            self.sent.append(time.monotonic())
            while len(self.sent) > k:
                self.sent.popleft()
        self.seq += 1
        return Slot(str(self.seq), epoch)

    async def release(self, slot: Slot, overloaded: bool) -> bool:
        self.in_flight -= 1
        now = time.monotonic()
        cut = self.policy.on_overload(slot.epoch, now) if overloaded else False
        if not overloaded:
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


# --- Redis: the job-wide backend -------------------------------------------------------------

# Server time, in seconds (the leases and the shared rate schedule use Redis's clock only).
LUA_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: slots, state, wake; ARGV: ceiling, qps ceiling, holder, lease, ttl, rate margin
# Returns {1, epoch, wait seconds, limit, qps} with a slot, or {0, epoch, 0, limit, qps} when all
# are taken. Lean on purpose (issue 17: Redis commands per page): one HMGET for the state, a
# ZCOUNT of live leases (expired ones are ignored here and removed by the renewal), the TTLs
# set when the first holder arrives and refreshed by the renewal, not on every call.
ACQUIRE = (
    LUA_NOW
    + """
local st = redis.call('HMGET', KEYS[2], 'limit', 'qps', 'epoch', 'next')
local limit = tonumber(st[1] or ARGV[1])
local qps = tonumber(st[2] or ARGV[2])
local epoch = tonumber(st[3] or '0')
local ceiling = tonumber(ARGV[1])
local live = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
if ceiling > 0 and live >= math.max(1, math.floor(limit)) then
  return {0, epoch, '0', tostring(limit), tostring(qps)}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
local wait = 0
if qps > 0 then
  local start = math.max(now, tonumber(st[4] or '0'))
  redis.call('HSET', KEYS[2], 'next', tostring(start + (1 + tonumber(ARGV[6])) / qps))
  wait = start - now
end
if live == 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
  if qps > 0 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5])) end
end
return {1, epoch, tostring(wait), tostring(limit), tostring(qps)}
"""
)

# KEYS: slots, state, wake; ARGV: ceiling, qps ceiling, holder, overloaded (0/1), epoch of the call,
# probe seconds, at ceiling (0/1: the caller last saw the limits at their ceilings), ttl, then
# the policy's constants (AIMD_ARGS): cut, creep, qps floor, qps step.
# Gives a slot back, applies the AIMD step (see Aimd) and leaves one wake token for a waiting
# worker (the list is only a doorbell: a woken worker still asks ACQUIRE, the zset decides).
# Returns {cut (0/1), limit, qps}.
RELEASE = (
    """
redis.call('ZREM', KEYS[1], ARGV[3])
local ceiling, qceiling = tonumber(ARGV[1]), tonumber(ARGV[2])
if ceiling > 0 then
  local cap = math.max(1, ceiling)
  local tokens = redis.call('RPUSH', KEYS[3], '1')
  if tokens == 1 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
  elseif tokens > cap then redis.call('LTRIM', KEYS[3], -cap, -1) end
end
if ARGV[4] ~= '1' and ARGV[7] == '1' then
  return {0, ARGV[1], ARGV[2]}
end
"""
    + LUA_NOW
    + """
local st = redis.call('HMGET', KEYS[2], 'limit', 'qps', 'epoch', 'bad', 'bad_at')
local limit = tonumber(st[1] or ARGV[1])
local qps = tonumber(st[2] or ARGV[2])
local epoch = tonumber(st[3] or '0')
local bad = tonumber(st[4] or '0')
local bad_at = tonumber(st[5] or '-1e18')
local cut = 0
if ARGV[4] == '1' then
  if tonumber(ARGV[5]) == epoch then
    cut = 1
    epoch = epoch + 1
    bad_at = now
    if ceiling > 0 then
      bad = math.max(1, math.floor(limit))
      limit = math.max(1, math.min(bad - 1, math.floor(limit * tonumber(ARGV[9]))))
    end
    if qceiling > 0 then qps = math.max(qceiling / tonumber(ARGV[11]), qps * tonumber(ARGV[9])) end
  end
else
  if ceiling > 0 and limit < ceiling then
    local grown = math.min(ceiling, limit + 1 / (tonumber(ARGV[10]) * math.max(1, limit)))
    if bad > 0 and math.floor(grown) >= bad and now - bad_at < tonumber(ARGV[6]) then
      grown = math.min(grown, bad - 1 + 0.999)
    end
    if math.floor(grown) > math.floor(limit) then redis.call('RPUSH', KEYS[3], '1') end  -- a new slot: wake one
    limit = grown
  end
  if qceiling > 0 and qps < qceiling then qps = math.min(qceiling, qps + qceiling / tonumber(ARGV[12])) end
end
if cut == 1 or ARGV[4] ~= '1' and (limit < ceiling or qps < qceiling) or st[1] and limit >= ceiling then
  redis.call('HSET', KEYS[2], 'limit', tostring(limit), 'qps', tostring(qps), 'epoch', epoch,
    'bad', bad, 'bad_at', tostring(bad_at))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
end
return {cut, tostring(limit), tostring(qps)}
"""
)

# KEYS: slots, state, wake; ARGV: lease, ttl, holder1, holder2, ...
# Every third of a lease: extend this worker's leases, drop expired ones (a kill -9'd worker's),
# keep the keys alive while the job uses them.
RENEW = (
    LUA_NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2])) end
return 1
"""
)

HANDOFFS = 8  # calls a slot may serve in a row inside one worker before it goes back through Redis


def limit_keys(settings: BaseSettings, spider_name: str) -> tuple[str, str, str]:
    """(slots zset, state hash, wake list) under the job's prefix, beside its other keys.

    The wake list is named from the slots key, so it keeps any hash tag (Redis Cluster: the
    three keys of one script must share a slot)."""
    from tmapi_spiders.distributed.keys import JobKeys

    keys = JobKeys.from_settings(settings, spider_name)
    return keys.limit_slots, keys.limit_state, keys.limit_slots.rsplit(":", 1)[0] + ":wake"


def async_client(settings: BaseSettings) -> Any:
    """A redis.asyncio client of the job's Redis (one server, a cluster or Sentinel's master,
    TLS or not), with the distributed module's timeouts.

    Its read timeout outlasts the BLPOP the limiter waits in (TMAPI_LIMIT_POLL): a socket
    that timed out first would turn every quiet wait into a connection error."""
    from tmapi_spiders.distributed.connection import async_client as job_async_client

    return job_async_client(settings, min_socket_timeout=settings.getfloat(POLL_SETTING, DEFAULT_POLL) + 5)


class RedisBackend:
    """The job-wide semaphore and rate schedule (see the module docstring).

    Nothing polls. One task per worker (the pump) asks for slots while requests wait; when
    every slot is taken it blocks on the job's wake list (BLPOP), where each released slot
    leaves a token, so the worker that waited longest is woken once per freed slot however
    many workers there are. The list is only a doorbell: the zset of leases is the truth, and
    a slot that comes back without a token (a kill -9'd worker's lease expiring, a limit
    growing) is seen at the pump's next look, at most TMAPI_LIMIT_POLL seconds later.

    A worker whose request finishes while another of its requests waits hands the slot over
    in-process (same lease), at most HANDOFFS calls in a row and only while the job's limits
    stand at their ceilings: that takes a Redis round trip off most calls of a busy job, and
    every slot still goes back through Redis often enough to be shared, and to see a cut
    made by another worker's 503."""

    def __init__(self, client: Any, keys: tuple[str, str, str], worker: str, concurrency: int, qps: float) -> None:
        self.client = client
        self.keys = list(keys)
        self.worker = worker
        self.concurrency = concurrency
        self.qps_ceiling = qps
        self.lease = DEFAULT_LEASE
        self.poll = DEFAULT_POLL
        self.margin = QPS_MARGIN
        self.held: set[str] = set()
        self.seq = 0
        self.limit, self.qps = float(concurrency), qps
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._waiters: deque[asyncio.Future[Slot]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._closed = False
        # What the limiter asked of Redis, for the stats (tmapi/limit/redis/*): the benchmark's
        # commands per page, explained.
        self.counts: dict[str, int] = {"acquired": 0, "refused": 0, "released": 0, "handed_over": 0}

    def _at_ceiling(self) -> bool:
        return self.limit >= self.concurrency and self.qps >= self.qps_ceiling

    async def acquire(self) -> Slot:
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._pump_slots())
        slot = await waiter
        if slot.wait > 0:
            await asyncio.sleep(slot.wait)
        return slot

    def _has_waiters(self) -> bool:
        return any(not waiter.done() for waiter in self._waiters)

    def _next_waiter(self) -> asyncio.Future[Slot] | None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    async def _pump_slots(self) -> None:
        """Takes slots from Redis for the requests waiting in this worker, in their order."""
        errors = 0
        while self._has_waiters() and not self._closed:
            self.seq += 1
            holder = f"{self.worker}:{self.seq}"
            try:
                got, epoch, wait, limit, qps = await self._acquire(
                    keys=self.keys,
                    args=[
                        self.concurrency,
                        self.qps_ceiling,
                        holder,
                        self.lease,
                        int(self.lease * 10) + 60,
                        self.margin,
                    ],
                )
                errors = 0
                self.limit, self.qps = float(limit), float(qps)
                if not int(got):
                    # Every slot is taken: sleep until one is given back (a token), or poll.
                    # New requests of this worker meanwhile join the wait instead of asking
                    # Redis again (most are served by a hand-over before a token comes).
                    self.counts["refused"] += 1
                    token = await self.client.blpop([self.keys[2]], timeout=self.poll)
                    if token is not None and not self._has_waiters():
                        await self.client.lpush(self.keys[2], "1")  # not ours to use: the next worker's
                    continue
            except Exception as exc:
                errors += 1
                if errors >= REDIS_TRIES:
                    failure = LimitUnavailable(f"Redis is unreachable ({type(exc).__name__})")
                    while (waiter := self._next_waiter()) is not None:
                        waiter.set_exception(failure)
                    return
                await asyncio.sleep(min(1.0, 0.05 * errors))
                continue
            self.counts["acquired"] += 1
            self.held.add(holder)
            self._start_renewer()
            slot = Slot(holder, int(epoch), float(wait))
            waiter = self._next_waiter()
            if waiter is None:  # served meanwhile by a hand-over: give this one back
                await self.release(slot, False)
                continue
            waiter.set_result(slot)

    async def release(self, slot: Slot, overloaded: bool) -> bool:
        if not overloaded and not self.qps_ceiling and slot.uses < HANDOFFS and self._at_ceiling():
            waiter = self._next_waiter()
            if waiter is not None:
                waiter.set_result(Slot(slot.holder, slot.epoch, 0.0, slot.uses + 1))
                self.counts["handed_over"] += 1
                return False
        self.held.discard(slot.holder)
        self.counts["released"] += 1
        try:
            cut, limit, qps = await self._release(
                keys=self.keys,
                args=[
                    self.concurrency,
                    self.qps_ceiling,
                    slot.holder,
                    int(overloaded),
                    slot.epoch,
                    PROBE,
                    int(self._at_ceiling()),
                    int(self.lease * 10) + 60,
                    *AIMD_ARGS,
                ],
            )
        except Exception as exc:  # the lease expires by itself
            logger.debug("job-wide limit: could not give back a slot (%s); its lease will expire", type(exc).__name__)
            return False
        self.limit, self.qps = float(limit), float(qps)
        return bool(int(cut))

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        while self.held:
            await asyncio.sleep(self.lease / 3)
            if self.held:
                try:
                    await self._renew(keys=self.keys, args=[self.lease, int(self.lease * 10) + 60, *self.held])
                except Exception as exc:
                    logger.debug("job-wide limit: lease renewal failed (%s)", type(exc).__name__)

    async def close(self) -> None:
        self._closed = True
        for task in (self._renewer, self._pump):
            if task is not None:
                task.cancel()
        while (waiter := self._next_waiter()) is not None:
            waiter.cancel()
        try:
            if self.held:
                await self.client.zrem(self.keys[0], *self.held)
            await self.client.aclose()
        except Exception as exc:
            logger.debug("job-wide limit: closing (%s); leases expire by themselves", type(exc).__name__)

    def effective(self) -> tuple[float, float]:
        return self.limit, self.qps


# --- the middleware ------------------------------------------------------------------------------


class TmapiLimitMiddleware:
    """Holds every API call to the job's TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS."""

    def __init__(self, crawler: Crawler, backend: Backend, concurrency: int, qps: float) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.backend = backend
        self.concurrency = concurrency
        self.qps = qps
        self.held: dict[Request, Slot] = {}  # by identity: a retry is a new request, its meta a copy
        self.peak = 0
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        try:
            concurrency, qps = read_limits(settings)
        except LimitError as exc:
            raise ValueError(str(exc)) from None
        if not concurrency and not qps:
            raise NotConfigured
        backend: Backend
        if settings.get("REDIS_URL"):
            from tmapi_spiders.distributed.worker import default_worker_id

            assert crawler.spidercls is not None
            redis_backend = RedisBackend(
                async_client(settings),
                limit_keys(settings, crawler.spidercls.name),
                str(settings.get("TMAPI_WORKER_ID") or default_worker_id()),
                concurrency,
                qps,
            )
            redis_backend.lease = settings.getfloat(LEASE_SETTING, DEFAULT_LEASE)
            redis_backend.poll = settings.getfloat(POLL_SETTING, DEFAULT_POLL)
            backend = redis_backend
        else:
            backend = LocalBackend(concurrency, qps)
        assert crawler.stats is not None
        if concurrency:
            crawler.stats.set_value("tmapi/limit/max_concurrency", concurrency)
        if qps:
            crawler.stats.set_value("tmapi/limit/max_qps", qps)
        return cls(crawler, backend, concurrency, qps)

    async def process_request(self, request: Request) -> Request | None:
        if not endpoint_of(request) or request in self.held:
            return None
        try:
            self.held[request] = await self.backend.acquire()
        except LimitUnavailable as exc:
            # As the spending cap does: the request goes back to the queue (its lease handed
            # over), never to the errback, which would record the image as failed for good.
            assert self.stats is not None
            self.stats.inc_value("tmapi/limit/unavailable")
            logger.warning("Cannot take a job-wide call slot (%s): the request waits in the queue", exc)
            return request.replace(dont_filter=True)
        if len(self.held) > self.peak:
            self.peak = len(self.held)
        return None

    async def process_response(self, request: Request, response: Response) -> Response:
        slot = self.held.pop(request, None)
        if slot is not None:
            overloaded = response.status == contract.CONCURRENCY_LIMIT or (
                response.status == 200 and OVERLOAD_MARK in response.body[:300]
            )
            await self._release(slot, overloaded)
        return response

    async def process_exception(self, request: Request, exception: Exception) -> None:
        slot = self.held.pop(request, None)
        if slot is not None:
            await self._release(slot, False)

    async def _release(self, slot: Slot, overloaded: bool) -> None:
        cut = await self.backend.release(slot, overloaded)
        if overloaded:
            assert self.stats is not None
            self.stats.inc_value("tmapi/limit/overloaded")
            if cut:
                limit, qps = self.backend.effective()
                self.stats.inc_value("tmapi/limit/cuts")
                logger.info(
                    "TMAPI answered 503 (concurrency limit): lowering the job's limits to %s calls in flight, %s/s",
                    int(limit) if self.concurrency else "unlimited",
                    f"{qps:.2f}" if self.qps else "unlimited",
                )

    async def spider_closed(self, spider: Spider) -> None:
        assert self.stats is not None
        limit, qps = self.backend.effective()
        self.stats.set_value("tmapi/limit/peak_in_flight", self.peak)
        if self.concurrency:
            self.stats.set_value("tmapi/limit/effective_concurrency", int(limit))
        if self.qps:
            self.stats.set_value("tmapi/limit/effective_qps", round(qps, 3))
        for name, count in getattr(self.backend, "counts", {}).items():
            self.stats.set_value(f"tmapi/limit/redis/{name}", count)
        await self.backend.close()

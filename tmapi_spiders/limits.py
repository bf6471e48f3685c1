"""TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS: the plan's limits, held across the whole job.

`TmapiLimitMiddleware` sits after HttpCacheMiddleware (900), the envelope (910) and the
spending cap (930), before the token goes on (950): only calls that really leave for
the API take a slot, and cached answers or refused requests take none. Its
`process_request` awaits a slot (and, with a rate limit, the request's turn); the slot
comes back in `process_response` / `process_exception`.

In one process the slots are a counter on the reactor thread. With REDIS_URL they are a
job-wide, lease-based semaphore in Redis: a zset `{job}:limit:slots` of holders scored
by lease expiry (Redis server time), taken and given back by Lua scripts, renewed while
a call runs; a kill -9'd worker's slots expire and come back by themselves. The rate
is a shared schedule (GCRA): each call reserves the next free start time.

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
from tmapi_spiders.distributed.scripts import LUA_NOW
from tmapi_spiders.settings_util import priority_above

logger = logging.getLogger(__name__)

CONCURRENCY_SETTING = "TMAPI_MAX_CONCURRENCY"
QPS_SETTING = "TMAPI_MAX_QPS"
LEASE_SETTING = "TMAPI_LIMIT_LEASE"
POLL_SETTING = "TMAPI_LIMIT_POLL"
DEFAULT_LEASE = 30.0  # seconds a slot of a silent worker is kept; renewed every third of it
DEFAULT_POLL = 0.01  # seconds between looks at Redis for a free slot freed by another worker
CUT = 0.9  # multiplicative decrease on a 503 (at least one slot)
PROBE = 30.0  # seconds before creeping past the level that last failed
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
            self.qps = max(self.qps_ceiling / 100, self.qps * CUT)
        return True

    def on_success(self, now: float) -> None:
        if self.ceiling and self.limit < self.ceiling:
            step = 1.0 / (10 * max(1.0, self.limit))  # about one slot per ten full rounds
            grown = min(float(self.ceiling), self.limit + step)
            if self.bad and int(grown) >= self.bad and now - self.bad_at < PROBE:
                grown = min(grown, self.bad - 1 + 0.999)
            self.limit = grown
        if self.qps_ceiling and self.qps < self.qps_ceiling:
            self.qps = min(self.qps_ceiling, self.qps + self.qps_ceiling / 200)


@dataclass
class Slot:
    holder: str
    epoch: int


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
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + 1.0 / policy.qps
            if start > now:
                await asyncio.sleep(start - now)
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

# The state hash: limit (effective slots, float), qps (effective rate), epoch, bad, bad_at, next (GCRA).
_STATE = """
local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or ARGV[1])
local qps = tonumber(redis.call('HGET', KEYS[2], 'qps') or ARGV[2])
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
"""

# KEYS: slots, state; ARGV: ceiling, qps ceiling, holder, lease, ttl
# Returns {1, epoch, wait seconds} with a slot, or {0, epoch, 0} when all are taken.
ACQUIRE = (
    LUA_NOW
    + _STATE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ceiling = tonumber(ARGV[1])
if ceiling > 0 and redis.call('ZCARD', KEYS[1]) >= math.max(1, math.floor(limit)) then
  return {0, epoch, '0'}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
local wait = 0
if qps > 0 then
  local start = math.max(now, tonumber(redis.call('HGET', KEYS[2], 'next') or '0'))
  redis.call('HSET', KEYS[2], 'next', tostring(start + 1 / qps))
  wait = start - now
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
return {1, epoch, tostring(wait)}
"""
)

# KEYS: slots, state; ARGV: ceiling, qps ceiling, holder, overloaded (0/1), epoch of the call, probe seconds
# Gives a slot back and applies the AIMD step (see Aimd). Returns {cut (0/1), limit, qps}.
RELEASE = (
    LUA_NOW
    + _STATE
    + """
redis.call('ZREM', KEYS[1], ARGV[3])
local ceiling, qceiling = tonumber(ARGV[1]), tonumber(ARGV[2])
local bad = tonumber(redis.call('HGET', KEYS[2], 'bad') or '0')
local bad_at = tonumber(redis.call('HGET', KEYS[2], 'bad_at') or '-1e18')
local cut = 0
if ARGV[4] == '1' then
  if tonumber(ARGV[5]) == epoch then
    cut = 1
    epoch = epoch + 1
    bad_at = now
    if ceiling > 0 then
      bad = math.max(1, math.floor(limit))
      limit = math.max(1, math.min(bad - 1, math.floor(limit * 0.9)))
    end
    if qceiling > 0 then qps = math.max(qceiling / 100, qps * 0.9) end
  end
else
  if ceiling > 0 and limit < ceiling then
    local grown = math.min(ceiling, limit + 1 / (10 * math.max(1, limit)))
    if bad > 0 and math.floor(grown) >= bad and now - bad_at < tonumber(ARGV[6]) then
      grown = math.min(grown, bad - 1 + 0.999)
    end
    limit = grown
  end
  if qceiling > 0 and qps < qceiling then qps = math.min(qceiling, qps + qceiling / 200) end
end
if cut == 1 or ARGV[4] ~= '1' and (limit < ceiling or qps < qceiling) then
  redis.call('HSET', KEYS[2], 'limit', tostring(limit), 'qps', tostring(qps), 'epoch', epoch,
    'bad', bad, 'bad_at', tostring(bad_at))
end
return {cut, tostring(limit), tostring(qps)}
"""
)

# KEYS: slots; ARGV: lease, holder1, holder2, ...
RENEW = (
    LUA_NOW
    + """
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 1
"""
)


def limit_keys(settings: BaseSettings, spider_name: str) -> tuple[str, str]:
    """(slots zset, state hash) under the job's prefix, beside its other keys."""
    from tmapi_spiders.distributed.keys import JobKeys

    keys = JobKeys.from_settings(settings, spider_name)
    return keys.limit_slots, keys.limit_state


def async_client(settings: BaseSettings) -> Any:
    """A redis.asyncio client on the reactor's loop, with the distributed module's timeouts."""
    from tmapi_spiders.distributed.connection import async_client as job_async_client

    return job_async_client(settings)  # one Redis, a cluster or Sentinel's master, TLS or not


class RedisBackend:
    """The job-wide semaphore and rate schedule (see the module docstring)."""

    def __init__(self, client: Any, keys: tuple[str, str], worker: str, concurrency: int, qps: float) -> None:
        self.client = client
        self.keys = list(keys)
        self.worker = worker
        self.concurrency = concurrency
        self.qps_ceiling = qps
        self.lease = DEFAULT_LEASE
        self.poll = DEFAULT_POLL
        self.held: set[str] = set()
        self.seq = 0
        self.limit, self.qps = float(concurrency), qps
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._turn = asyncio.Lock()  # one local waiter polls Redis at a time, in arrival order
        self._freed = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self) -> Slot:
        self.seq += 1
        holder = f"{self.worker}:{self.seq}"
        errors = 0
        async with self._turn:
            while True:
                self._freed.clear()
                try:
                    got, epoch, wait = await self._acquire(
                        keys=self.keys,
                        args=[self.concurrency, self.qps_ceiling, holder, self.lease, int(self.lease * 10) + 60],
                    )
                except Exception as exc:
                    errors += 1
                    if errors >= REDIS_TRIES:
                        raise LimitUnavailable(f"Redis is unreachable ({type(exc).__name__})") from None
                    await asyncio.sleep(min(1.0, 0.05 * errors))
                    continue
                if int(got):
                    break
                try:  # a local release wakes us at once; another worker's is seen at the next poll
                    await asyncio.wait_for(self._freed.wait(), self.poll)
                except TimeoutError:
                    pass
        self.held.add(holder)
        self._start_renewer()
        if float(wait) > 0:
            await asyncio.sleep(float(wait))
        return Slot(holder, int(epoch))

    async def release(self, slot: Slot, overloaded: bool) -> bool:
        self.held.discard(slot.holder)
        try:
            cut, limit, qps = await self._release(
                keys=self.keys,
                args=[self.concurrency, self.qps_ceiling, slot.holder, int(overloaded), slot.epoch, PROBE],
            )
        except Exception as exc:  # the lease expires by itself
            logger.debug("job-wide limit: could not give back a slot (%s); its lease will expire", type(exc).__name__)
            return False
        finally:
            self._freed.set()
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
                    await self._renew(keys=self.keys[:1], args=[self.lease, *self.held])
                except Exception as exc:
                    logger.debug("job-wide limit: lease renewal failed (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
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
        await self.backend.close()

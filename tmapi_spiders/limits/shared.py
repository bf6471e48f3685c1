"""A shared job (REDIS_URL): a lease-based semaphore in Redis, changed only by Lua scripts, through
the worker's sync redis-py client in threads (`asyncio.to_thread`), so no round trip blocks the reactor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tmapi_spiders import registry
from tmapi_spiders.distributed.scripts import LUA_NOW  # Redis's clock: leases and the rate schedule
from tmapi_spiders.limits import (
    AIMD_ARGS,
    PROBE,
    LimitUnavailable,
    Margin,
    Slot,
)

logger = logging.getLogger(__name__)

# KEYS: slots, state, wake; ARGV: ceiling, qps ceiling, holder, lease, ttl, rate margin
# Returns {1, epoch, wait seconds, limit, qps} with a slot, {0, epoch, 0, limit, qps} when all are
# taken. Expired leases do not count.
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
# probe seconds, at ceiling (0/1, as the caller last saw), ttl, then AIMD_ARGS.
# Gives a slot back, applies the AIMD step (as Aimd does) and leaves a wake token. Returns {cut, limit, qps}.
RELEASE = (
    """
redis.call('ZREM', KEYS[1], ARGV[3])
local ceiling, qceiling = tonumber(ARGV[1]), tonumber(ARGV[2])
if ceiling > 0 then
  local tokens = redis.call('RPUSH', KEYS[3], '1')
  if tokens == 1 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
  elseif tokens > ceiling then redis.call('LTRIM', KEYS[3], -ceiling, -1) end
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
# Extends this worker's leases, drops expired ones (a kill -9'd worker's) and keeps the keys alive.
# Returns the holders it could not extend: their lease lapsed, and another worker may hold the slot.
RENEW = (
    LUA_NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lost = {}
for i = 3, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i]) == 0 then lost[#lost + 1] = ARGV[i] end
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2])) end
return lost
"""
)

HANDOFFS = 8  # calls a slot may serve in a row inside one worker before it goes back through Redis
REDIS_TRIES = 20  # consecutive Redis errors a waiting request survives before it fails


class RedisBackend:
    """The job-wide semaphore and rate schedule.

    One task per worker (the pump) asks for slots while requests wait; when all are taken it
    waits on the wake list (BLPOP), a doorbell each release rings: the zset of leases decides,
    and a slot freed without a token (an expired lease) is seen within TMAPI_LIMIT_POLL. A
    finished call hands its slot to a waiting request of the same worker, at most HANDOFFS
    times in a row and only at the ceilings, so every slot still goes back through Redis.

    A lease that may have lapsed (a late renewal: the worker stalled) may be another
    worker's slot by now: no call starts on a slot with less than half its lease left."""

    def __init__(self, client: Any, keys: tuple[str, str, str], worker: str, concurrency: int, qps: float) -> None:
        self.client = client
        self.keys = list(keys)
        self.worker = worker
        self.concurrency = concurrency
        self.qps_ceiling = qps
        self.lease = registry.BY_NAME["TMAPI_LIMIT_LEASE"].default  # a silent worker's slots are kept this long
        self.poll = registry.BY_NAME["TMAPI_LIMIT_POLL"].default  # longest wake-list wait (an expired lease's slot)
        # Longest single BLPOP: half the socket timeout, so the socket never times out under it. Closing
        # the client at the engine's stop ends a BLPOP still waiting, so no wait outlives the worker.
        timeout = client.get_connection_kwargs().get("socket_timeout")
        self.block = max(0.05, float(timeout) / 2) if timeout else float("inf")
        self.margin = Margin()  # this worker's: its refusals widen the spacing of the calls it schedules
        self.held: dict[str, float] = {}  # holder -> when its lease ends at the latest (time.monotonic)
        self.seq = 0
        self.limit, self.qps = float(concurrency), qps
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._waiters: deque[asyncio.Future[Slot]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._closed = False
        self._full = False  # every slot was taken when this worker last asked
        self.on_room: Callable[[], None] = lambda: None  # a request of ours took a slot: the worker may pop one
        # What the limiter asked of Redis, for the stats (tmapi/limit/redis/*).
        self.counts: dict[str, int] = {"acquired": 0, "refused": 0, "released": 0, "handed_over": 0, "lapsed": 0}

    @property
    def ttl(self) -> int:
        return int(self.lease * 10) + 60

    def _at_ceiling(self) -> bool:
        return self.limit >= self.concurrency and self.qps >= self.qps_ceiling

    def _fresh(self, holder: str) -> bool:
        return self.held.get(holder, 0.0) - time.monotonic() >= self.lease / 2

    async def acquire(self) -> Slot:
        while True:
            waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            if self._pump is None or self._pump.done():
                self._pump = asyncio.get_running_loop().create_task(self._pump_slots())
            slot = await waiter
            if slot.wait > 0:
                await asyncio.sleep(slot.wait)
            if self._fresh(slot.holder):
                return slot
            if not self.counts["lapsed"]:  # one warning: the first lapse
                logger.warning(
                    "job-wide limit: a slot's lease (TMAPI_LIMIT_LEASE=%ss) ran short before its call: this worker"
                    " was stalled; the slot is taken again from Redis",
                    self.lease,
                )
            self.counts["lapsed"] += 1
            await self._give_back(slot, False)

    def _wait_for_token(self) -> bool:
        """In a thread: BLPOP the wake list for up to `poll` seconds, `block` at a time; a token
        taken after `close` goes back for the next worker."""
        left = self.poll
        while left > 0 and not self._closed:
            token = self.client.blpop([self.keys[2]], timeout=max(0.01, min(left, self.block)))
            if token is not None:
                if self._closed:
                    self.client.lpush(self.keys[2], "1")
                return not self._closed
            left -= self.block
        return False

    def _waiting(self) -> int:
        return sum(not waiter.done() for waiter in self._waiters)

    def has_room(self) -> bool:
        """Whether one more request of this worker could start soon: fewer wait than it holds
        slots (each the next call of a hand-over), or none waits (`Room`, distributed/room.py)."""
        return self._waiting() < max(1, len(self.held))

    def _next_waiter(self) -> asyncio.Future[Slot] | None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    async def _pump_slots(self) -> None:
        """Takes slots from Redis for the requests waiting in this worker, in their order."""
        errors = 0
        while self._waiting() and not self._closed:
            try:
                if self._full:  # every slot was taken at our last ask: wait for a token or the poll
                    token = await asyncio.to_thread(self._wait_for_token)
                    self._full = False
                    if token and not self._waiting():
                        await asyncio.to_thread(self.client.lpush, self.keys[2], "1")  # the next worker's
                        continue
                self.seq += 1
                holder = f"{self.worker}:{self.seq}"
                asked = time.monotonic()  # the lease starts later, in Redis: it ends after asked + lease
                args = [self.concurrency, self.qps_ceiling, holder, self.lease, self.ttl, self.margin.value]
                got, epoch, wait, limit, qps = await asyncio.to_thread(self._acquire, keys=self.keys, args=args)
                errors = 0
                self.limit, self.qps = float(limit), float(qps)
                if not int(got):  # new requests of this worker meanwhile join the wait
                    self.counts["refused"] += 1
                    self._full = True
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
            self.held[holder] = asked + self.lease
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())
            slot = Slot(holder, int(epoch), float(wait))
            waiter = self._next_waiter()
            if waiter is None:  # served meanwhile by a hand-over: give this one back
                await self._give_back(slot, False)
                continue
            waiter.set_result(slot)
            self.on_room()

    async def release(self, slot: Slot, overloaded: bool, rate_limited: bool = False) -> bool:
        # A 429 cuts the job's shared limits as a 503 does (the concurrency, and the rate if set).
        overloaded = overloaded or rate_limited
        self.margin.update(overloaded)
        if not overloaded and not self.qps_ceiling and slot.uses < HANDOFFS and self._at_ceiling():
            if self._fresh(slot.holder) and (waiter := self._next_waiter()) is not None:
                waiter.set_result(Slot(slot.holder, slot.epoch, 0.0, slot.uses + 1))
                self.on_room()
                self.counts["handed_over"] += 1
                return False
        return await self._give_back(slot, overloaded)

    async def _give_back(self, slot: Slot, overloaded: bool) -> bool:
        """RELEASE: the slot back to Redis and the AIMD step; True if this refusal cut the limits."""
        self.held.pop(slot.holder, None)
        self.counts["released"] += 1
        args = [self.concurrency, self.qps_ceiling, slot.holder, int(overloaded), slot.epoch, PROBE]
        args += [int(self._at_ceiling()), self.ttl, *AIMD_ARGS]
        try:
            cut, limit, qps = await asyncio.to_thread(self._release, keys=self.keys, args=args)
        except Exception as exc:  # the lease expires by itself
            logger.debug("job-wide limit: could not give back a slot (%s); its lease will expire", type(exc).__name__)
            return False
        self.limit, self.qps = float(limit), float(qps)
        return bool(int(cut))

    async def _renew_loop(self) -> None:
        """Every third of a lease; a holder Redis no longer has keeps its old end, so it is not reused."""
        while self.held:
            await asyncio.sleep(self.lease / 3)
            holders = list(self.held)
            if not holders:
                return
            asked = time.monotonic()
            try:
                lost = await asyncio.to_thread(self._renew, keys=self.keys, args=[self.lease, self.ttl, *holders])
            except Exception as exc:
                logger.debug("job-wide limit: lease renewal failed (%s)", type(exc).__name__)
                continue
            lost = {h.decode() if isinstance(h, bytes) else h for h in lost}
            for holder in set(holders) - lost:
                if holder in self.held:
                    self.held[holder] = asked + self.lease

    async def close(self) -> None:
        self._closed = True
        for task in (self._renewer, self._pump):
            if task is not None:
                task.cancel()
        while (waiter := self._next_waiter()) is not None:
            waiter.cancel()
        try:
            if self.held:  # the client is the worker's: it closes it
                await asyncio.to_thread(self.client.zrem, self.keys[0], *self.held)
        except Exception as exc:
            logger.debug("job-wide limit: closing (%s); leases expire by themselves", type(exc).__name__)

    def effective(self) -> tuple[float, float]:
        return self.limit, self.qps

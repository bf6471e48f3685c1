"""TMAPI_MAX_CALLS: a hard cap on what one job may spend, in paid calls.

`TmapiCallCapMiddleware` sits after HttpCacheMiddleware (900) and the envelope
middleware (910), before the auth middleware (950) puts the token on: it only sees
requests that are about to leave for the API, so cached answers cost nothing and a
request refused earlier in the chain reserves nothing. Each request reserves one
call before it goes out (retries go through here again, and are paid calls too);
past the cap it raises `CapReached` (an IgnoreRequest: the spider's errback records
the image as failed, naming the cap) and the crawl ends with the finish reason
`tmapi_max_calls` (exit code 5), its feeds closed as in any other finish. In one
process every request left is refused the same way first, so each unfinished image
has its failure record; a distributed job stops at once and leaves its queue for a
later run with a higher cap.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, IgnoreRequest, NotConfigured
from scrapy.settings import BaseSettings
from scrapy.utils.defer import deferred_from_coro

from tmapi_spiders.api import endpoint_of

logger = logging.getLogger(__name__)

FINISH_REASON = "tmapi_max_calls"
SETTING = "TMAPI_MAX_CALLS"


class CapReached(IgnoreRequest):
    """The job's paid calls are spent: this request was not sent."""


def max_calls(settings: BaseSettings) -> int:
    """TMAPI_MAX_CALLS as a number (0: no cap); ValueError names the setting."""
    raw = settings.get(SETTING)
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{SETTING} must be a whole number of paid calls (0 for no cap), got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{SETTING} must not be negative (0 for no cap), got {value}")
    return value


class CallCounter(Protocol):
    """Where reservations are counted: this process, or the whole job (Redis)."""

    async def reserve(self) -> int:
        """Reserve one call; the number of calls reserved so far including this one, or 0 if the cap is reached."""
        ...

    async def spent(self) -> int: ...


class LocalCounter:
    """One process: the reactor thread is the only writer, so a plain int is exact."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    async def reserve(self) -> int:
        if self.count >= self.limit:
            return 0
        self.count += 1
        return self.count

    async def spent(self) -> int:
        return self.count


# INCR-and-check in one step: workers never overshoot the cap between a read and a write.
RESERVE_LUA = """
local limit = tonumber(ARGV[1])
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent >= limit then return 0 end
return redis.call('INCR', KEYS[1])
"""


class RedisCounter:
    """The whole job: one counter in Redis, shared by every worker of the job."""

    def __init__(self, client: Any, key: str, limit: int) -> None:
        self.client = client  # a redis.asyncio.Redis
        self.key = key
        self.limit = limit
        self._reserve = client.register_script(RESERVE_LUA)

    async def reserve(self) -> int:
        return int(await self._reserve(keys=[self.key], args=[self.limit]))

    async def spent(self) -> int:
        return int(await self.client.get(self.key) or 0)


class TmapiCallCapMiddleware:
    """Reserves a paid call for each API request before it leaves; refuses past the cap."""

    def __init__(self, crawler: Crawler, counter: CallCounter, limit: int) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.counter = counter
        self.limit = limit
        self.reached = False
        # One process: refuse what is left so each unfinished image gets its failure record,
        # then close when idle. A shared queue (distributed) is left as it is for a later run.
        self.drain = isinstance(counter, LocalCounter)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        limit = max_calls(crawler.settings)
        if not limit:
            raise NotConfigured
        counter = job_counter(crawler, limit)
        assert crawler.stats is not None
        crawler.stats.set_value("tmapi/max_calls", limit)
        return cls(crawler, counter, limit)

    async def process_request(self, request: Request) -> None:
        if not endpoint_of(request):
            return
        if await self.counter.reserve():
            return
        assert self.stats is not None
        self.stats.inc_value("tmapi/max_calls_refused")
        self._stop()
        raise CapReached(f"{SETTING}={self.limit} reached: the job's paid calls are spent, this call was not made")

    def _stop(self) -> None:
        if self.reached:
            return
        self.reached = True
        logger.warning(
            "%s=%d reached: stopping the crawl (finish reason %s); images not finished are recorded as failed."
            " Raise the cap to go on; with TMAPI_CACHE=true a re-run pays nothing for the answers already fetched.",
            SETTING,
            self.limit,
            FINISH_REASON,
        )
        if not self.drain:
            assert self.crawler.engine is not None
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=FINISH_REASON))

    def spider_idle(self) -> None:
        # Every request left was refused without a call (and its image recorded as failed):
        # finish with the reason that says why, not "finished".
        if self.reached:
            raise CloseSpider(FINISH_REASON)


def job_counter(crawler: Crawler, limit: int) -> CallCounter:
    """A Redis counter under the job's key when the crawl is distributed, else a local one."""
    return LocalCounter(limit)

"""TmapiLimitMiddleware: a slot before each call that leaves for the API, given back after."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Self

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.http import Response

from tmapi_spiders.api import contract
from tmapi_spiders.api.requests import endpoint_of
from tmapi_spiders.jobs import backends
from tmapi_spiders.limits import LimitUnavailable, LocalBackend, Slot, read_limits

if TYPE_CHECKING:
    from tmapi_spiders.limits.shared import RedisBackend

logger = logging.getLogger(__name__)

OVERLOAD_MARK = b"concurrency limit exceeded"
RATE_LIMITED = 429  # the gateway's rate limit (Retry-After tells when to come back)
RATE_LIMIT_MARK = b"rate limit exceeded"


class TmapiLimitMiddleware:
    """Holds every API call to the job's TMAPI_MAX_CONCURRENCY and TMAPI_MAX_QPS, and slows the
    job down on a 429. On with no limit too: the first 429 then sets this process's rate."""

    def __init__(self, crawler: Crawler, backend: LocalBackend | RedisBackend, concurrency: int, qps: float) -> None:
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.backend = backend
        self.concurrency = concurrency
        self.qps = qps
        self.held: dict[Request, Slot] = {}  # by identity: a retry is a new request, its meta a copy
        self.peak = 0
        if concurrency:
            self.stats.set_value("tmapi/limit/max_concurrency", concurrency)
        if qps:
            self.stats.set_value("tmapi/limit/max_qps", qps)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        concurrency, qps = read_limits(crawler.settings)
        return cls(crawler, backends.for_crawler(crawler).limiter(concurrency, qps), concurrency, qps)

    async def process_request(self, request: Request) -> Request | None:
        if not endpoint_of(request) or request in self.held:
            return None
        try:
            self.held[request] = await self.backend.acquire()
        except LimitUnavailable as exc:
            # Back to the queue, as the spending cap does: the errback would fail the image for good.
            self.stats.inc_value("tmapi/limit/unavailable")
            logger.warning("Cannot take a job-wide call slot (%s): the request waits in the queue", exc)
            return request.replace(dont_filter=True)
        self.peak = max(self.peak, len(self.held))
        return None

    async def process_response(self, request: Request, response: Response) -> Response:
        slot = self.held.pop(request, None)
        if slot is not None:
            head = response.body[:300] if response.status == 200 else b""
            overloaded = response.status == contract.CONCURRENCY_LIMIT or OVERLOAD_MARK in head
            rate_limited = response.status == RATE_LIMITED or RATE_LIMIT_MARK in head
            await self._release(slot, overloaded, rate_limited)
        return response

    async def process_exception(self, request: Request, exception: Exception) -> None:
        slot = self.held.pop(request, None)
        if slot is not None:
            await self._release(slot, False)

    async def _release(self, slot: Slot, overloaded: bool, rate_limited: bool = False) -> None:
        cut = await self.backend.release(slot, overloaded, rate_limited)
        if not (rate_limited or overloaded):
            return
        self.stats.inc_value("tmapi/limit/rate_limited" if rate_limited else "tmapi/limit/overloaded")
        if cut:
            limit, qps = self.backend.effective()
            self.stats.inc_value("tmapi/limit/cuts")
            logger.info(
                "TMAPI answered 429 (rate limit): slowing the job down to %s calls in flight, %s/s"
                if rate_limited
                else "TMAPI answered 503 (concurrency limit): lowering the job's limits to %s calls in flight, %s/s",
                int(limit) if self.concurrency else "unlimited",
                f"{qps:.2f}" if qps and (rate_limited or self.qps) else "unlimited",
            )

    async def spider_closed(self, spider: Spider) -> None:
        limit, qps = self.backend.effective()
        self.stats.set_value("tmapi/limit/peak_in_flight", self.peak)
        if self.concurrency:
            self.stats.set_value("tmapi/limit/effective_concurrency", int(limit))
        if self.qps or qps:  # the plan's rate, or one found from 429s
            self.stats.set_value("tmapi/limit/effective_qps", round(qps, 3))
        for name, count in getattr(self.backend, "counts", {}).items():
            self.stats.set_value(f"tmapi/limit/redis/{name}", count)
        await self.backend.close()

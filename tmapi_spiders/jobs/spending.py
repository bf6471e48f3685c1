"""TMAPI_MAX_CALLS: a hard cap on what one job may spend, in paid calls.

`TmapiCallCapMiddleware` (930) sees only requests about to leave for the API, so stored answers
cost nothing. Each request, retries included, reserves one call; past the cap it raises `CapReached`
(the errback records the image as failed) and the crawl ends with `tmapi_max_calls` (exit 5). In one
process what is queued is refused the same way; in a distributed job the count is the job's (Redis)
and the refused request goes back to the job's queue for a later run with a higher cap.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, IgnoreRequest, NotConfigured
from scrapy.settings import BaseSettings
from scrapy.utils.defer import deferred_from_coro

from tmapi_spiders import registry
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api.requests import endpoint_of
from tmapi_spiders.jobs import backends
from tmapi_spiders.jobs.backends import CallCounter, CounterUnavailable

logger = logging.getLogger(__name__)

FINISH_REASON = "tmapi_max_calls"
SETTING = "TMAPI_MAX_CALLS"


class CapReached(IgnoreRequest):
    """The job's paid calls are spent: this request was not sent."""


def max_calls(settings: BaseSettings) -> int:
    """TMAPI_MAX_CALLS as a number (0: no cap); ConfigError (a ValueError) names a bad value."""
    return int(registry.read(settings, SETTING))


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
        self.drain = not counter.shared
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        limit = max_calls(crawler.settings)
        if not limit:
            raise NotConfigured
        counter = backends.for_crawler(crawler).call_counter(limit)
        assert crawler.stats is not None
        crawler.stats.set_value("tmapi/max_calls", limit)
        return cls(crawler, counter, limit)

    async def process_request(self, request: Request) -> Request | None:
        if not endpoint_of(request):
            return None
        assert self.stats is not None
        try:
            if await self.counter.reserve():
                return None
        except CounterUnavailable as exc:
            # Redis lost: nothing goes out unreserved. Back to the scheduler, which keeps it
            # while Redis is down (and stops the worker if Redis does not come back).
            self.stats.inc_value("tmapi/max_calls_unreserved")
            logger.warning("Cannot reserve a paid call (%s): the request waits in the queue", exc)
            return request.replace(dont_filter=True)
        self.stats.inc_value("tmapi/max_calls_refused")
        self._stop()
        if self.drain:
            raise CapReached(f"{SETTING}={self.limit} reached: the job's paid calls are spent, this call was not made")
        # Distributed: back to the job's queue, for a run with a higher cap.
        return request.replace(dont_filter=True)

    def _stop(self) -> None:
        if self.reached:
            return
        self.reached = True
        # No new image from the list: what was not started is counted and listed once at the end.
        self.crawler.signals.send_catch_log(tmapi_signals.stop_starting, reason=FINISH_REASON)
        if self.drain:
            left = "images started and not finished are recorded as failed, those not started are listed"
            left += " beside the summary. Run the same command again to go on (a higher"
            left += " cap finishes sooner): the answer store replays the answers already fetched, free"
        else:
            left = "the job's unfinished work stays queued in Redis: run the workers with a higher cap to go on"
        logger.warning(
            "%s=%d reached: stopping the crawl (finish reason %s); %s.", SETTING, self.limit, FINISH_REASON, left
        )
        if not self.drain:
            assert self.crawler.engine is not None
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=FINISH_REASON))

    def spider_closed(self, reason: str) -> None:
        if reason == "finished":
            self.counter.job_finished()

    def spider_idle(self) -> None:
        # Every request left was refused without a call: finish with the reason that says why.
        if self.reached:
            raise CloseSpider(FINISH_REASON)

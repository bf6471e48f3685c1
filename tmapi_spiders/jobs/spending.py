"""TMAPI_MAX_CALLS: a hard cap on a job's paid calls (exit 5, finish reason `tmapi_max_calls`).

Each request about to leave for the API (stored answers never get here) reserves one call. Past the cap,
in one process it is ignored (the image fails); in a distributed job it goes back to the job's queue.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, IgnoreRequest, NotConfigured
from scrapy.utils.defer import deferred_from_coro

from tmapi_spiders import registry
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api.requests import endpoint_of
from tmapi_spiders.jobs import backends
from tmapi_spiders.jobs.backends import CounterUnavailable, LocalCounter

logger = logging.getLogger(__name__)

FINISH_REASON = "tmapi_max_calls"
SETTING = "TMAPI_MAX_CALLS"


class TmapiCallCapMiddleware:
    """Reserves a paid call for each API request before it leaves; refuses past the cap."""

    def __init__(self, crawler: Crawler, counter: LocalCounter, limit: int) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats = crawler.stats
        self.stats.set_value("tmapi/max_calls", limit)
        self.counter = counter
        self.limit = limit
        self.reached = False
        # One process: refuse what is left (each unfinished image gets its failure record); a shared queue stays.
        self.drain = not counter.shared
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        limit = registry.read(crawler.settings, SETTING)
        if not limit:
            raise NotConfigured
        return cls(crawler, backends.for_crawler(crawler).call_counter(limit), limit)

    async def process_request(self, request: Request) -> Request | None:
        if not endpoint_of(request):
            return None
        try:
            if await self.counter.reserve():
                return None
        except CounterUnavailable as exc:
            # Redis lost: nothing goes out unreserved; the scheduler keeps it while Redis is down.
            self.stats.inc_value("tmapi/max_calls_unreserved")
            logger.warning("Cannot reserve a paid call (%s): the request waits in the queue", exc)
            return request.replace(dont_filter=True)
        self.stats.inc_value("tmapi/max_calls_refused")
        self._stop()
        if self.drain:
            raise IgnoreRequest(
                f"{SETTING}={self.limit} reached: the job's paid calls are spent, this call was not made"
            )
        return request.replace(dont_filter=True)  # back to the job's queue, for a run with a higher cap

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
        if self.reached:
            raise CloseSpider(FINISH_REASON)

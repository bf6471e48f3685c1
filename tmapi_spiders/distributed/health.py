"""The worker's state against Redis and the job, and what it does when Redis fails it (`Worker`'s base).

Lost Redis: take no new work, keep what must be pushed (`unsent`), retry TMAPI_REDIS_RETRY_TIMES
times, then stop with `redis_unavailable`. A job whose marker is gone stops with `redis_job_lost`
instead of finding "nothing left" and exiting 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from scrapy import Request
from scrapy import signals as scrapy_signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import threads

from tmapi_spiders import registry
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.job import Job, JobGone
from tmapi_spiders.distributed.keys import JobKeys

logger = logging.getLogger("tmapi_spiders.distributed.worker")  # one logger for the worker's lines

LEASE_META = "_tmapi_lease"
# What a Redis call of a worker can fail with; `failed` says what each means.
FAILURES = (*connection.ERRORS, connection.OUT_OF_MEMORY, JobGone)


class RedisHealth:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.keys = JobKeys.from_settings(settings, crawler.spidercls.name)
        self.server = connection.client(settings)  # the worker's one client: the job's backends and the limiter use it
        self.job = Job(self.server, self.keys)
        self.retry_times = registry.read(settings, "TMAPI_REDIS_RETRY_TIMES")
        self.retry_delay = registry.read(settings, "TMAPI_REDIS_RETRY_DELAY")
        self.unsent: list[tuple[Request, str | None]] = []  # enqueued while Redis was down
        self.down = False
        self.gone = False  # the job's state vanished from Redis: nothing more is read or written there
        self.full = False  # Redis refused a write for its maxmemory: nothing more is acknowledged
        self.closing = False
        self._look = asyncio.Event()  # set: the seed loop looks now instead of at the end of its wait
        # Handed to the engine by `wake` and dropped before the scheduler (`_drop_wake_call`).
        self._wake_call = Request("data:,", dont_filter=True)
        crawler.signals.connect(self._drop_wake_call, signal=scrapy_signals.request_scheduled)

    def count(self, stat: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(stat, n)

    def stop(self, reason: str) -> None:
        """Close the spider with `reason` (once open, and unless it is closing already)."""
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            deferred_from_coro(engine.close_spider_async(reason=reason))

    def wake(self) -> None:
        """Make the engine look at the scheduler now: `engine.crawl` of a request that
        `_drop_wake_call` drops before the scheduler (Scrapy has no public "look now")."""
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            engine.crawl(self._wake_call)

    def _drop_wake_call(self, request: Request, **_: Any) -> None:
        if request is self._wake_call:
            raise IgnoreRequest

    def look_now(self) -> None:
        """End the seed loop's wait (`idle`): seeds may be back, Redis is back, or we close."""
        self._look.set()

    async def idle(self, seconds: float) -> None:
        """The seed loop's wait between looks: `seconds`, or less when `look_now` is called."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._look.wait(), seconds)
        self._look.clear()

    def failed(self, exc: BaseException) -> None:
        """One of FAILURES: the job gone, Redis out of memory, or Redis lost (each acted on once)."""
        if isinstance(exc, JobGone) and not self.gone:
            self.gone = True
            self.count("tmapi/redis/job_lost")
            logger.error("Stopping: %s", exc)
            self.stop("redis_job_lost")
        elif isinstance(exc, connection.OUT_OF_MEMORY) and not self.full:
            # Stop acknowledging: a page whose follow-ups could not be queued is done again later.
            self.full = True
            self.count("tmapi/redis/out_of_memory")
            logger.error(
                "Stopping: Redis is out of memory (maxmemory) and refused a write (%s); this worker's unfinished"
                " work stays in the job: raise maxmemory (or free memory), then start the workers again",
                str(exc).split(". script:")[0].rstrip("."),
            )
            self.stop("redis_out_of_memory")
        elif isinstance(exc, connection.ERRORS):
            self.lost(exc)

    def lost(self, exc: BaseException) -> None:
        if self.down or self.closing:
            return
        self.down = True
        self.count("tmapi/redis/lost")
        logger.error(
            "Lost Redis (%s%s): taking no new work, retrying %d times",
            "authentication failed: " if connection.is_auth_error(exc) else "",
            connection.reason(exc, str(self.crawler.settings.get("REDIS_URL") or "")),
            self.retry_times,
        )
        threads.deferToThread(self._reconnect).addCallback(self._reconnected)

    def _reconnect(self) -> bool:
        for attempt in range(self.retry_times):
            time.sleep(min(self.retry_delay * 2**attempt, 30.0))
            with contextlib.suppress(*connection.ERRORS):
                self.server.ping()
                return True
        return False

    def _reconnected(self, ok: bool) -> None:
        if self.closing:
            return
        if not ok:
            logger.error(
                "Redis is still unreachable after %d attempts: stopping; the job's queued work stays in Redis",
                self.retry_times,
            )
            self.stop("redis_unavailable")
            return
        self.down = False
        try:
            marker = self.server.get(self.keys.marker)
        except connection.ERRORS as exc:
            self.lost(exc)
            return
        if self.job.marker_id is not None and marker != self.job.marker_id:
            self.failed(JobGone(self.keys.job, marker or ""))  # restarted empty: push nothing into it
            return
        logger.info("Redis is back")
        self.look_now()
        pending, self.unsent = self.unsent, []
        engine = self.crawler.engine
        for request, handover in pending:
            if handover:
                request.meta[LEASE_META] = handover
            if engine is not None and engine.spider is not None:
                engine.crawl(request)  # to the scheduler again, now that Redis takes it
        self.wake()

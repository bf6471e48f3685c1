"""A worker's Redis health: losing Redis, reconnecting, and a job lost from Redis.

When Redis is lost, the worker stops taking work, keeps what it must push (`unsent`), and
retries a bounded number of times before closing with finish reason `redis_unavailable`;
when the job's marker is gone (Redis restarted empty, flushed, the job deleted), it stops
loudly with `redis_job_lost` instead of finding "nothing left" and exiting 0.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import threads

from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.job import Job, JobGone
from tmapi_spiders.distributed.keys import JobKeys

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("tmapi_spiders.distributed.worker")  # one logger for the worker's lines

LEASE_META = "_tmapi_lease"
REDIS_DOWN_REASON = "redis_unavailable"
JOB_LOST_REASON = "redis_job_lost"
OUT_OF_MEMORY_REASON = "redis_out_of_memory"


class RedisHealth:
    """The Redis-failure half of `Worker` (a mixin: `Worker` sets these attributes)."""

    crawler: Crawler
    server: redis.Redis
    job: Job
    keys: JobKeys
    unsent: list[tuple[Request, str | None]]
    down: bool
    gone: bool
    full: bool
    closing: bool
    retry_times: int
    retry_delay: float

    def wake(self) -> None:  # Worker's
        raise NotImplementedError

    def look_now(self) -> None:  # Worker's
        raise NotImplementedError

    def job_gone(self, exc: BaseException) -> None:
        """Stop loudly: the job's marker vanished, so its queue, seeds and leases did too; finding
        "nothing left" would call a job finished that was never searched."""
        if self.gone:
            return
        self.gone = True
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("tmapi/redis/job_lost")
        logger.error("Stopping: %s", exc)
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            deferred_from_coro(engine.close_spider_async(reason=JOB_LOST_REASON))

    def out_of_memory(self, exc: BaseException) -> None:
        """Stop: Redis refused a write for its `maxmemory`. Nothing more is acknowledged (the
        page whose next page or records could not be queued must be done again), and the
        leases this worker holds stay in Redis: they come back to the job when they expire."""
        if self.full:
            return
        self.full = True
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("tmapi/redis/out_of_memory")
        logger.error(
            "Stopping: Redis is out of memory (maxmemory) and refused a write (%s); this worker's unfinished"
            " work stays in the job: raise maxmemory (or free memory), then start the workers again",
            str(exc).split(". script:")[0].rstrip("."),
        )
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            deferred_from_coro(engine.close_spider_async(reason=OUT_OF_MEMORY_REASON))

    def lost(self, exc: BaseException) -> None:
        if self.down or self.closing:
            return
        self.down = True
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("tmapi/redis/lost")
        logger.error(
            "Lost Redis (%s%s): taking no new work, retrying %d times",
            "authentication failed: " if connection.is_auth_error(exc) else "",
            connection.reason(exc, str(self.crawler.settings.get("REDIS_URL") or "")),
            self.retry_times,
        )
        d = threads.deferToThread(self._reconnect)
        d.addCallback(self._reconnected)

    def _reconnect(self) -> bool:
        for attempt in range(self.retry_times):
            time.sleep(min(self.retry_delay * 2**attempt, 30.0))
            try:
                self.server.ping()
                return True
            except connection.ERRORS:
                continue
        return False

    def _reconnected(self, ok: bool) -> None:
        if self.closing:
            return
        if not ok:
            logger.error(
                "Redis is still unreachable after %d attempts: stopping; the job's queued work stays in Redis",
                self.retry_times,
            )
            engine = self.crawler.engine
            if engine is not None and engine.spider is not None:
                deferred_from_coro(engine.close_spider_async(reason=REDIS_DOWN_REASON))
            return
        try:
            marker = self.job.marker()
        except connection.ERRORS as exc:
            self.down = False
            self.lost(exc)
            return
        if self.job.marker_id is not None and marker != self.job.marker_id:
            self.down = False
            self.job_gone(JobGone(self.keys.job, marker or ""))  # restarted empty: push nothing into it
            return
        logger.info("Redis is back")
        self.down = False
        self.look_now()
        pending, self.unsent = self.unsent, []
        engine = self.crawler.engine
        for request, handover in pending:
            if handover:
                request.meta[LEASE_META] = handover
            if engine is not None and engine.spider is not None:
                engine.crawl(request)  # to the scheduler again, now that Redis takes it
        self.wake()

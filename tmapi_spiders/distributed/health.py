"""What a worker does when something fails it: Redis lost, full or without the job, or a request
the job cannot queue (`Worker`'s mixin; `Worker` sets the attributes).

Lost Redis: take no new work, keep what must be pushed (`unsent`), retry TMAPI_REDIS_RETRY_TIMES
times, then stop with `redis_unavailable`. A job whose marker is gone stops with `redis_job_lost`
instead of finding "nothing left" and exiting 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import threads
from twisted.python.failure import Failure

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, META_KEY
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
REFUSED_META = "tmapi_refused"  # on the local data: request that carries a refused request's record
# What a Redis call of a worker can fail with; `failed` says what each means.
FAILURES = (*connection.ERRORS, connection.OUT_OF_MEMORY, JobGone)


class _Record:
    """The callback (and errback) of a refused request's `data:` request: its one record."""

    def __init__(self, item: Any) -> None:
        self.item = item

    def __call__(self, _: Response | Failure) -> Iterator[Any]:
        yield self.item


class RedisHealth:
    crawler: Crawler
    spider: Spider | None
    redactor: Redactor
    leases: dict[str, Request | None]
    finished: set[str]
    records: list[Request]  # data: requests of failure records, for the scheduler to hand out first
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

    def count(self, stat: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(stat, n)

    def stop(self, reason: str) -> None:
        """Close the spider with `reason` (once open, and unless it is closing already)."""
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            deferred_from_coro(engine.close_spider_async(reason=reason))

    def failed(self, exc: BaseException) -> None:
        """One of FAILURES: the job gone, Redis out of memory, or Redis lost."""
        if isinstance(exc, JobGone):
            self.job_gone(exc)
        elif isinstance(exc, connection.OUT_OF_MEMORY):
            self.out_of_memory(exc)
        else:
            self.lost(exc)

    def job_gone(self, exc: BaseException) -> None:
        if self.gone:
            return
        self.gone = True
        self.count("tmapi/redis/job_lost")
        logger.error("Stopping: %s", exc)
        self.stop(JOB_LOST_REASON)

    def out_of_memory(self, exc: BaseException) -> None:
        """Stop acknowledging: a page whose follow-ups could not be queued is done again later."""
        if self.full:
            return
        self.full = True
        self.count("tmapi/redis/out_of_memory")
        logger.error(
            "Stopping: Redis is out of memory (maxmemory) and refused a write (%s); this worker's unfinished"
            " work stays in the job: raise maxmemory (or free memory), then start the workers again",
            str(exc).split(". script:")[0].rstrip("."),
        )
        self.stop(OUT_OF_MEMORY_REASON)

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
            self.stop(REDIS_DOWN_REASON)
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

    def refused(self, request: Request, handover: str | None, reason: str) -> None:
        """A request the job cannot queue (token in it, meta not JSON): its image gets a failure
        record through the item path, and the lease it replaces is acknowledged once it is written.
        The record travels on a local `data:` request (no network, never in Redis)."""
        self.count("tmapi/redis/refused")
        item = self._failure_item(request, reason)
        if item is None:
            if handover:
                self.leases[handover] = request
                self.finished.add(handover)  # nothing to write: done, the next ack tick acknowledges it
            return
        record = _Record(item)
        local = Request("data:,", callback=record, errback=record, dont_filter=True, meta={REFUSED_META: True})
        if handover:
            local.meta[LEASE_META] = handover
            self.leases[handover] = local  # done.py's request_done for `local` acknowledges it
        self.records.append(local)

    def _failure_item(self, request: Request, reason: str) -> Any:
        """The spider's failure record for the request's image, token redacted (None: not an image search)."""
        state = request.meta.get(META_KEY)
        failure = getattr(self.spider, "failure", None)
        if not isinstance(state, dict) or failure is None:
            logger.error("A refused request without an image: no failure record (%s)", self.redactor.text(reason))
            return None
        stage = request.meta.get("tmapi_endpoint") or ENDPOINT_SEARCH
        try:
            return failure(self.redactor.value(state), stage, 0, self.redactor.text(reason))
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("No failure record for a refused request (%s): %s", exc, self.redactor.text(reason))
            return None

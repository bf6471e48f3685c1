"""One `scrapy crawl` process in a job: its leases, heartbeats, acks and how many requests it holds.

A popped request is leased to this worker (the job's `inflight` zset, scored by expiry) and
acknowledged once its work is done (tmapi_spiders/crawl/done.py); a heartbeat renews it until
then, and a dead worker's leases expire and go back to the job. Redis calls on the reactor
thread are single short commands or scripts; loops and reconnects run in threads.

Lost Redis: take no new work, keep what must be pushed (`unsent`), retry TMAPI_REDIS_RETRY_TIMES
times, then stop with `redis_unavailable`. A job whose marker is gone stops with `redis_job_lost`
instead of finding "nothing left" and exiting 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

from scrapy import Request
from scrapy import signals as scrapy_signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task, threads
from twisted.python.failure import Failure

from tmapi_spiders import registry
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.writes import WriteGuard
from tmapi_spiders.distributed import connection, default_worker_id
from tmapi_spiders.distributed.job import Job, JobGone
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.distributed.room import Room

logger = logging.getLogger(__name__)

LEASE_META = "_tmapi_lease"
# What a Redis call of a worker can fail with; `failed` says what each means.
FAILURES = (*connection.ERRORS, connection.OUT_OF_MEMORY, JobGone)

# Local stats mirrored into the job's stats hash (HINCRBY of the deltas, with each ack).
COUNTERS = {
    "tmapi/pages": "pages",
    "tmapi/items": "items",
    "tmapi/images_failed": "failures",
    "tmapi/images_searched": "images_done",
    "tmapi/paid_calls": "paid_calls",
}
ACK_BATCH = 16  # acks wait for this many done leases or TMAPI_REDIS_ACK_MAX_DELAY: one round trip for many pages

_workers: weakref.WeakKeyDictionary[Crawler, Worker] = weakref.WeakKeyDictionary()


class Worker:
    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.keys = JobKeys.from_settings(settings, crawler.spidercls.name)
        self.server = connection.client(settings)  # the worker's one client: the job's backends and the limiter use it
        self.job = Job(self.server, self.keys)
        self.retry_times = registry.read(settings, "TMAPI_REDIS_RETRY_TIMES")
        self.retry_delay = registry.read(settings, "TMAPI_REDIS_RETRY_DELAY")
        self.unsent: list[Request] = []  # enqueued while Redis was down (their leases in their meta)
        self.down = False
        self.gone = False  # the job's state vanished from Redis: nothing more is read or written there
        self.full = False  # Redis refused a write for its maxmemory: nothing more is acknowledged
        self.closing = False
        # Set: the seed loop looks now instead of at the end of its wait (`idle`): seeds may be back,
        # Redis is back, or we close.
        self._look = asyncio.Event()
        self._wake_call = Request("data:,", dont_filter=True)
        crawler.signals.connect(self._drop_wake_call, signal=scrapy_signals.request_scheduled)
        self.id = str(registry.read(settings, "TMAPI_WORKER_ID") or default_worker_id())
        self.redactor = Redactor(secrets_of(settings))  # the token, kept out of what this worker logs or writes
        self.job.dupefilter_ttl = registry.read(settings, "TMAPI_REDIS_DUPEFILTER_TTL")  # 0: the whole job's
        self.lease = registry.read(settings, "TMAPI_REDIS_LEASE")
        self.heartbeat = registry.read(settings, "TMAPI_REDIS_HEARTBEAT") or self.lease / 4
        self.ack_interval = registry.read(settings, "TMAPI_REDIS_ACK_INTERVAL")
        self.ack_max_delay = registry.read(settings, "TMAPI_REDIS_ACK_MAX_DELAY")
        self._done_since: float | None = None
        self._counters_at = 0.0  # when the counters last went to Redis (monotonic)
        self.persist = settings.getbool("SCHEDULER_PERSIST")
        self.keep_stats = int(registry.read(settings, "TMAPI_REDIS_KEEP_STATS"))  # whole seconds, as Redis keeps them
        # lease id -> the request the engine holds (None: a seed not yet turned into a request)
        self.leases: dict[str, Request | None] = {}
        self.finished: set[str] = set()  # leases whose request's work is done (request_done), not yet acknowledged
        self.writes = WriteGuard.of(crawler)
        self.sent_counters: dict[str, int] = {}
        self._loops = [task.LoopingCall(self._ack_done), task.LoopingCall(self._beat)]
        self.room = Room(self.wake)
        # After spider_closed: the summary and the limiter use this client until then.
        crawler.signals.connect(self.server.close, signal=scrapy_signals.engine_stopped)

    @classmethod
    def of(cls, crawler: Crawler) -> Worker:
        """The crawler's one worker, shared by the scheduler and the spider's start()."""
        return _workers.get(crawler) or _workers.setdefault(crawler, cls(crawler))

    # lifecycle

    def open(self) -> None:
        self.crawler.signals.connect(self._auth_learned, signal=tmapi_signals.auth_learned)
        self.crawler.signals.connect(self._request_done, signal=tmapi_signals.request_done)
        self.crawler.signals.connect(self._answered, signal=scrapy_signals.response_received)
        try:
            self.job.heartbeat(self.id, self.lease, [], limit=0)  # a live worker at once; learns the job's marker
            # TMAPI_AUTH=auto: how the gateway takes the token ("header" or "query"), if another worker learned it
            way = self.server.get(self.keys.auth)
            queued, work_left = self.job.queued(), self.job.work_left()
        except connection.ERRORS as exc:  # a failover at startup: retried like every later call
            self.failed(exc)
        else:
            if way:
                self.crawler.signals.send_catch_log(tmapi_signals.auth_known, way=way)
            logger.info(
                "Worker %s joined job %r (%d requests queued, %d seeds/requests/leases left)",
                self.id,
                self.keys.job,
                queued,
                work_left,
            )
        acks, beats = self._loops
        acks.start(self.ack_interval, now=False).addErrback(self._loop_failed, "ack")
        beats.start(self.heartbeat, now=False).addErrback(self._loop_failed, "heartbeat")

    def _auth_learned(self, way: str) -> None:
        threads.deferToThread(self.server.set, self.keys.auth, way, ex=max(1, self.keep_stats)).addErrback(
            lambda f: logger.warning("could not share TMAPI_AUTH: %s", f.value)
        )

    def close(self, reason: str) -> None:
        self.closing = True
        self._look.set()  # the seed loop, asleep, sees `closing` at once
        for loop in self._loops:
            if loop.running:
                loop.stop()
        if self.gone:  # giving leases back or finishing would only plant keys of a job that is no more
            logger.error("Job %r was lost from Redis: this worker stopped without finishing it", self.keys.job)
            return
        if self.down or self.full:
            logger.warning(
                "Redis is %s: %d leases of this worker come back to the job when they expire",
                "unreachable" if self.down else "out of memory",
                len(self.leases),
            )
            return
        try:
            self.job.heartbeat(self.id, self.lease, [], limit=0)  # the marker check: a lost job gets nothing back
            self._ack_done(force=True)
            if given := self.job.give_back(list(self.leases)):
                logger.info("Gave %d unfinished leases back to the job", given)
            self.leases.clear()
            state = self.job.finish(self.id, self.lease, delete=not self.persist, keep_stats=self.keep_stats)
        except connection.ERRORS as exc:
            logger.warning("Redis lost while closing (%s): unfinished leases expire by themselves", exc)
            return
        except JobGone as exc:
            self.gone = True
            logger.error("Job %r was lost from Redis: %s", self.keys.job, exc)
            return
        if reason == "finished" and state == 2:
            logger.info("Job %r is finished: its queue, seeds and duplicate filter were removed", self.keys.job)
        elif reason == "finished" and state == 1:
            logger.info("Job %r is finished; its keys are kept (SCHEDULER_PERSIST)", self.keys.job)

    # Redis failing

    def count(self, stat: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(stat, n)

    def stop(self, reason: str) -> None:
        """Close the spider with `reason` (once open, and unless it is closing already)."""
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            deferred_from_coro(engine.close_spider_async(reason=reason))

    def wake(self, *requests: Request) -> None:
        """Make the engine look at the scheduler now: `engine.crawl` of `requests`, then of a request
        that `_drop_wake_call` drops before the scheduler (Scrapy has no public "look now")."""
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None and not self.closing:
            for request in (*requests, self._wake_call):
                engine.crawl(request)

    def _drop_wake_call(self, request: Request, **_: Any) -> None:
        if request is self._wake_call:
            raise IgnoreRequest

    async def idle(self, seconds: float) -> None:
        """The seed loop's wait between looks: `seconds`, or less when `_look` is set."""
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
        elif isinstance(exc, connection.ERRORS) and not (self.down or self.closing):
            self.down = True
            self.count("tmapi/redis/lost")
            why = connection.reason(exc, str(self.crawler.settings.get("REDIS_URL") or ""))
            if connection.is_auth_error(exc):
                why = f"authentication failed: {why}"
            logger.error("Lost Redis (%s): taking no new work, retrying %d times", why, self.retry_times)
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
            self.failed(exc)
            return
        if self.job.marker_id is not None and marker != self.job.marker_id:
            self.failed(JobGone(self.keys.job, marker or ""))  # restarted empty: push nothing into it
            return
        logger.info("Redis is back")
        self._look.set()  # Redis is back: the seed loop looks now
        pending, self.unsent = self.unsent, []
        self.wake(*pending)  # to the scheduler again, now that Redis takes them

    # leases

    def handed_over(self, lease_id: str) -> None:
        self.leases.pop(lease_id, None)
        self.finished.discard(lease_id)
        self.room.forget(lease_id)

    def _answered(self, request: Request, **_: Any) -> None:
        lease = request.meta.get(LEASE_META)
        if lease is not None and self.leases.get(lease) is request:
            self.room.answered(lease)

    def _request_done(self, request: Request) -> None:
        lease = request.meta.get(LEASE_META)
        if lease is not None and self.leases.get(lease) is request:
            self.finished.add(lease)
            self.room.done(lease)

    def done_leases(self) -> list[str] | None:
        """Leases whose records are written (feeds flushed first) and follow-ups queued; None once a
        write has failed: nothing is acknowledged from then on."""
        if not self.writes.flush() or self.full:
            return None
        return [lease for lease in self.finished if lease in self.leases]

    def ride_along(self) -> tuple[list[str], dict[str, int]]:
        """What the next pop acknowledges: the done leases, and the counters once ACK_MAX_DELAY passed."""
        due = time.monotonic() - self._counters_at >= self.ack_max_delay
        return self.done_leases() or [], self._counter_deltas() if due else {}

    def acked(self, done: list[str], counters: dict[str, int]) -> None:
        """Redis took `done` and `counters` (with an ack, or with a pop they rode on)."""
        if not done and not counters:
            return  # a pop that carried nothing: the ack loop's batch timer keeps running
        for lease in done:
            self.handed_over(lease)
        if done and not self.leases:
            self._look.set()  # idle now: the seed loop, maybe in a busy worker's long wait, looks
        if counters:
            self.sent_counters.update({name: self.sent_counters.get(name, 0) + n for name, n in counters.items()})
            self._counters_at = time.monotonic()
        self._done_since = None
        self.count("tmapi/redis/acked", len(done))

    def _ack_done(self, force: bool = False) -> None:
        if self.down or self.gone or self.full or (done := self.done_leases()) is None:
            return
        counters = self._counter_deltas()
        if not done and not counters:
            return
        now = time.monotonic()
        self._done_since = self._done_since or now
        if not force and len(done) < ACK_BATCH and now - self._done_since < self.ack_max_delay:
            return  # batch: a few more pages will be done by the next tick
        try:
            self.job.ack(done, counters)
        except FAILURES as exc:
            self.failed(exc)
            return
        self.acked(done, counters)

    def _counter_deltas(self) -> dict[str, int]:
        stats, sent = self.crawler.stats, self.sent_counters
        assert stats is not None
        deltas = {name: int(stats.get_value(stat) or 0) - sent.get(name, 0) for stat, name in COUNTERS.items()}
        return {name: delta for name, delta in deltas.items() if delta}

    def _beat(self) -> Any:
        if self.down or self.gone or self.full:
            return None
        beat = threads.deferToThread(self.job.heartbeat, self.id, self.lease, list(self.leases))
        return beat.addCallbacks(self._requeued, self._beat_failed)

    def _requeued(self, count: int) -> None:
        if count:
            logger.warning("Gave %d expired leases back to the job (a worker stopped without finishing)", count)
            self.count("tmapi/redis/requeued_expired", count)
            self.wake()
            self._look.set()  # some of them may be seeds: this worker's seed loop takes them

    def _beat_failed(self, failure: Failure) -> None:
        if self.closing:  # close() acknowledges or gives back the leases itself
            logger.debug("Heartbeat ended by the worker closing: %s", failure.getErrorMessage())
        elif failure.check(*FAILURES):
            self.failed(failure.value)
        else:
            logger.error("Heartbeat failed: %s", failure.getErrorMessage())

    def _loop_failed(self, failure: Failure, name: str) -> None:
        logger.error("The %s loop stopped: %s", name, failure.getErrorMessage())

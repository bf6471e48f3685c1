"""The job's Redis side of the features that keep state (tmapi_spiders/jobs/backends.py picks it
for a worker): the run summary's results, the spending cap's counter, the limiter's slots.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import redis
from scrapy.crawler import Crawler

from tmapi_spiders import registry
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.worker import Worker
from tmapi_spiders.jobs.backends import CounterUnavailable, LocalBackends, LocalCounter, LocalResults
from tmapi_spiders.limits import LocalBackend
from tmapi_spiders.limits.shared import RedisBackend

logger = logging.getLogger(__name__)


class RedisBackends(LocalBackends):
    """A worker's backends, on its job's keys (TMAPI_JOB, else the spider's name)."""

    def __init__(self, crawler: Crawler) -> None:
        self.worker = Worker.of(crawler)

    def image_results(self) -> RedisResults:
        return RedisResults(self.worker.job, self.worker.keep_stats)

    def call_counter(self, limit: int) -> RedisCounter:
        return RedisCounter(self.worker.job, limit, self.worker.keep_stats)

    def limiter(self, concurrency: int, qps: float) -> LocalBackend | RedisBackend:
        worker = self.worker
        if not concurrency and not qps:
            # No plan limit: nothing to share until a 429, so each worker finds its own rate; once it
            # paces, it pops only what it can send soon and the other workers take the rest.
            backend: LocalBackend | RedisBackend = LocalBackend(0, 0.0)
        else:
            keys = (worker.keys.limit_slots, worker.keys.limit_state, worker.keys.limit_wake)
            backend = RedisBackend(worker.server, keys, worker.id, concurrency, qps)
            backend.lease = registry.read(worker.crawler.settings, "TMAPI_LIMIT_LEASE")
            backend.poll = registry.read(worker.crawler.settings, "TMAPI_LIMIT_POLL")
        # The worker pops only what can start soon (room.Room); the limiter wakes it when a slot frees.
        worker.room.limiter = backend.has_room
        backend.on_room = worker.wake
        # Under a job-wide limit a worker's pops follow its calls: one may wait for an answered page, to acknowledge it.
        worker.room.ack_wait = worker.ack_max_delay if isinstance(backend, RedisBackend) else 0.0
        return backend


# KEYS: summary, marker; ARGV: seconds to keep (0: no expiry), url1, json1, url2, json2, ...
WRITE_RESULTS = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return 1
"""


class RedisResults(LocalResults):
    """The whole job's results: one hash, query image URL -> JSON; what Redis could not take is
    kept and written with the next image or at the end."""

    shared = True  # images in progress are other workers' too: none are tracked here

    def __init__(self, job: Job, keep_seconds: int) -> None:
        super().__init__()  # `images`: this worker's own, in case the job's are gone
        self.job = job
        self.job_name = job.keys.job
        self._write = self.job.server.register_script(WRITE_RESULTS)
        self.keep_seconds = keep_seconds
        self.pending: list[dict[str, Any]] = []

    def add(self, image: dict[str, Any]) -> None:
        super().add(image)
        self.pending.append(image)
        self._flush()

    def _flush(self) -> bool:
        try:
            # Only into a job that still has its marker; 500 images a call (Lua's unpack has a limit).
            while self.pending:
                batch = self.pending[:500]
                flat = [part for i in batch for part in (i["query_image_url"], json.dumps(i, ensure_ascii=False))]
                self._write(keys=[self.job.keys.summary, self.job.keys.marker], args=[self.keep_seconds, *flat])
                del self.pending[:500]
        except (*connection.ERRORS, connection.OUT_OF_MEMORY, redis.exceptions.NoScriptError):
            # Kept for the next flush: Redis away or full, or a failover's new master that has
            # not loaded the script yet (redis-py loads it again at the next call).
            return False
        return True

    async def all(self) -> list[dict[str, Any]]:
        if not self._flush():
            logger.warning("Redis is unreachable: the summary covers this worker's images only")
            return self.mine()
        try:
            found = [json.loads(value) for _, value in self.job.server.hscan_iter(self.job.keys.summary, count=1000)]
        except connection.ERRORS as exc:
            logger.warning("Could not read the job's results from Redis (%s): this worker's images only", exc)
            return self.mine()
        return found if len(found) >= len(self.images) else self.mine()  # fewer: the job was cleaned up meanwhile

    def cleanup(self, persist: bool) -> None:
        """Delete the results once the job is finished and drained, unless SCHEDULER_PERSIST."""
        if persist:
            return
        with contextlib.suppress(*connection.ERRORS):  # Redis away: it expires by itself
            if self.job.server.hexists(self.job.keys.stats, "finished_at") and self.job.work_left() == 0:
                self.job.server.delete(self.job.keys.summary)

    def job_totals(self) -> dict[str, int]:
        """Job-wide images and paid calls (the job's own counters), or {} when Redis is away."""
        try:
            status = self.job.status(live_seconds=0)
        except connection.ERRORS:
            return {}
        return {
            "images": status.seeds_seen,
            "paid_calls": status.counters.get("paid_calls", 0),
            "pages_fetched": status.counters.get("pages", 0),
            "items_written": status.counters.get("items", 0),
        }


# Check-and-INCR in one step: workers never overshoot the cap between a read and a write.
# The key outlives the job's work keys by TMAPI_REDIS_KEEP_STATS, like its counters.
RESERVE_LUA = """
local limit = tonumber(ARGV[1])
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent >= limit then return 0 end
local n = redis.call('INCR', KEYS[1])
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""


class RedisCounter(LocalCounter):
    """The whole job's paid calls: one counter, one short script per call on the reactor thread."""

    shared = True  # a shared queue is left for a later run with a higher cap (not drained)

    def __init__(self, job: Job, limit: int, keep_seconds: int) -> None:
        super().__init__(limit)
        self.job = job
        self.keep_seconds = keep_seconds
        self._reserve = self.job.server.register_script(RESERVE_LUA)

    async def reserve(self) -> int:
        try:
            return int(self._reserve(keys=[self.job.keys.max_calls_spent], args=[self.limit, self.keep_seconds]))
        except (*connection.ERRORS, connection.OUT_OF_MEMORY) as exc:
            raise CounterUnavailable(str(exc)) from None

    def job_finished(self) -> None:
        """A drained job's count goes with it: the next job of that name starts from 0."""
        try:
            if self.job.work_left() == 0:
                self.job.server.delete(self.job.keys.max_calls_spent)
        except connection.ERRORS as exc:
            logger.warning("Could not clear %s (%s): it expires by itself", self.job.keys.max_calls_spent, exc)

"""The job's scheduler: what a worker takes from Redis, it finishes or gives back.

Not scrapy-redis's Scheduler (it is a Scrapy BaseScheduler): it shares scrapy-redis's
key settings (REDIS_URL, SCHEDULER_QUEUE_KEY, SCHEDULER_DUPEFILTER_KEY, SCHEDULER_PERSIST)
and its priority-queue layout, and changes what costs money or data: requests are JSON
(never pickle), popping leases the request to this worker, and closing never deletes what
other workers still use. scrapy-redis's other scheduler settings would do nothing here,
so a worker refuses them at start (`refused_setting`) instead of ignoring them.
"""

from __future__ import annotations

import logging
from typing import Self

from scrapy import Request, Spider
from scrapy.core.scheduler import BaseScheduler
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.distributed import connection, serializer
from tmapi_spiders.distributed.dupefilter import ImageDupeFilter, is_later_page
from tmapi_spiders.distributed.job import JobGone
from tmapi_spiders.distributed.worker import LEASE_META, Worker

logger = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 12  # shorter "tokens" (a local test server's) are common words: no content check

# scrapy-redis scheduler settings this scheduler does not follow: (setting, accepted values, what to do instead).
UNSUPPORTED_SETTINGS: tuple[tuple[str, tuple[object, ...], str], ...] = (
    (
        "SCHEDULER_QUEUE_CLASS",
        ("scrapy_redis.queue.PriorityQueue",),
        "the job's queue is always a priority queue with leases (Request.priority orders it)",
    ),
    ("SCHEDULER_SERIALIZER", (), "queued requests are always JSON (Request.to_dict), never pickle"),
    ("SCHEDULER_FLUSH_ON_START", (False,), "a worker never empties the shared queue: use `scrapy job --delete`"),
    (
        "SCHEDULER_IDLE_BEFORE_CLOSE",
        (0,),
        "pops never block: use MAX_IDLE_TIME_BEFORE_CLOSE (and TMAPI_REDIS_POLL_INTERVAL)",
    ),
    ("SCHEDULER_DUPEFILTER_CLASS", (), "the job's duplicate filter is ImageDupeFilter (DUPEFILTER_CLASS)"),
)


def refused_setting(settings: BaseSettings) -> str | None:
    """A one-line error when a scrapy-redis scheduler setting is set that this scheduler
    would not honour (None: nothing to refuse)."""
    for name, accepted, instead in UNSUPPORTED_SETTINGS:
        value = settings.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, str) and accepted and isinstance(accepted[0], bool | int):
            try:
                value = settings.getbool(name) if isinstance(accepted[0], bool) else settings.getint(name)
            except ValueError:
                pass
        if value not in accepted:
            return f"{name}={settings.get(name)!r} is not supported by the distributed scheduler: {instead}"
    dupefilter = settings.get("DUPEFILTER_CLASS")
    try:
        cls = load_object(dupefilter) if isinstance(dupefilter, str) else dupefilter
    except (ImportError, NameError, ValueError):
        cls = None
    chosen = (settings.getpriority("DUPEFILTER_CLASS") or 0) >= 40  # else configure() puts ImageDupeFilter in
    if chosen and not (isinstance(cls, type) and issubclass(cls, ImageDupeFilter)):
        return (
            f"DUPEFILTER_CLASS={dupefilter!r} is not supported by the distributed scheduler:"
            " it uses tmapi_spiders.distributed.dupefilter.ImageDupeFilter (or a subclass)"
        )
    return None


class LeasingScheduler(BaseScheduler):
    def __init__(self, crawler: Crawler, worker: Worker) -> None:
        settings = crawler.settings
        dupefilter_cls = load_object(settings["DUPEFILTER_CLASS"])
        self.df: ImageDupeFilter = dupefilter_cls(
            worker.server, worker.keys.dupefilter, settings.getbool("DUPEFILTER_DEBUG")
        )
        self.crawler = crawler
        self.worker = worker
        self.stats = crawler.stats
        self.spider: Spider | None = None
        token = str(settings.get("TMAPI_API_TOKEN") or "")
        self.secrets = Redactor([token] if len(token) >= MIN_SECRET_LENGTH else [])

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        problem = refused_setting(crawler.settings)  # `scrapy crawl` said so before (preflight)
        if problem:
            from tmapi_spiders.crawl.config import ConfigError

            raise ConfigError(problem)
        return cls(crawler, Worker.of(crawler))

    def open(self, spider: Spider) -> None:
        self.spider = spider
        self.worker.open(spider)

    def close(self, reason: str) -> None:
        self.worker.close(reason)

    def __len__(self) -> int:
        records = len(self.worker.records)  # failure records of refused requests, never in Redis
        if self.worker.down:
            return records + len(self.worker.unsent)
        try:
            return records + self.worker.job.queued()
        except connection.ERRORS as exc:
            self.worker.lost(exc)
            return records + len(self.worker.unsent)

    def has_pending_requests(self) -> bool:
        return len(self) > 0

    def enqueue_request(self, request: Request) -> bool:
        assert self.stats is not None
        handover = request.meta.pop(LEASE_META, None)
        if self.worker.full:  # stopping: the page that asked for it is done again later
            self.stats.inc_value("tmapi/redis/not_queued_out_of_memory")
            return False
        if self.worker.gone:  # the job is lost and the worker stopping: its queue must not be planted again
            self.stats.inc_value("tmapi/redis/not_queued_job_lost")
            return False
        if self.worker.down:
            self.worker.unsent.append((request, handover))
            return True
        try:
            data = serializer.to_json(request, self.spider, self.secrets)
        except serializer.SerializationError as exc:
            # Never dropped silently: the lease it replaces is released and its image gets a
            # failure record (else the seed's lease was renewed forever and the job never drained).
            logger.error("Request not queued: %s", exc)
            self.stats.inc_value("tmapi/redis/unserializable")
            self.worker.refused(request, handover, f"not queued for the job: {exc}")
            return False
        # A later page without a lease to hand over is a follow-up, not a retry: a page redone
        # after a kill asks for it again, and that second ask must not pay the rest of the chain twice.
        follow_up = handover is None and is_later_page(request)
        try:
            if request.dont_filter and not follow_up:
                self.worker.job.push_request(data, request.priority, handover)
            elif not self.worker.job.push_request_once(
                data, request.priority, self.df.request_fingerprint(request), handover
            ):
                self.df.log(request, self.spider)
                if handover:
                    self.worker.handed_over(handover)
                return False
        except connection.ERRORS as exc:
            self.worker.unsent.append((request, handover))
            self.worker.lost(exc)
            return True
        except connection.OUT_OF_MEMORY as exc:
            # Not queued, and the lease of the page that asked for it is never acknowledged:
            # that page is done again (by any worker) once Redis has room.
            self.stats.inc_value("tmapi/redis/not_queued_out_of_memory")
            self.worker.out_of_memory(exc)
            return False
        except JobGone as exc:
            self.stats.inc_value("tmapi/redis/not_queued_job_lost")
            self.worker.job_gone(exc)
            return False
        if handover:
            self.worker.handed_over(handover)
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        worker = self.worker
        if worker.records and not worker.closing:
            return worker.records.pop(0)  # a refused request's failure record: no call, no Redis
        if worker.down or worker.closing or worker.gone or worker.full or not worker.room.may_pop():
            return None
        while True:
            done, counters = worker.ride_along()
            try:
                got = worker.job.pop_request(worker.id, worker.lease, done, counters)
            except connection.ERRORS as exc:
                worker.lost(exc)
                return None
            except connection.OUT_OF_MEMORY as exc:
                worker.out_of_memory(exc)
                return None
            except JobGone as exc:
                worker.job_gone(exc)
                return None
            worker.acked(done, counters)
            if got is None:
                return None
            lease, data = got
            try:
                request = serializer.from_json(data, self.spider)
            except (ValueError, KeyError, TypeError) as exc:
                # Not ours or corrupt: it can never be downloaded, so do not hold the job for it.
                logger.error("Dropping an unreadable queued request (%s): %.200s", exc, worker.redactor.text(data))
                assert self.stats is not None
                self.stats.inc_value("tmapi/redis/unreadable")
                worker.job.ack([lease])
                continue
            request.meta[LEASE_META] = lease
            worker.take(lease, request)
            worker.room.popped()
            assert self.stats is not None
            self.stats.inc_value("scheduler/dequeued/redis")
            return request

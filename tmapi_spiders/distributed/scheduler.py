"""The job's scheduler: what a worker takes from Redis, it finishes or gives back.

A Scrapy BaseScheduler on scrapy-redis's key settings and priority-queue layout, not its
Scheduler: requests are JSON (never pickle, never a secret: a shared Redis is read by every
worker and operator), popping leases a request, and closing deletes nothing others use.
scrapy-redis settings it would ignore are refused at start (`refused_setting`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any, Self

from scrapy import Request, Spider
from scrapy.core.scheduler import BaseScheduler
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object
from scrapy.utils.request import request_from_dict

from tmapi_spiders import registry
from tmapi_spiders.api import contract
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, ENVELOPE_META, META_KEY, endpoint_of
from tmapi_spiders.crawl.config import ConfigError
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.dupefilter import ImageDupeFilter, is_later_page
from tmapi_spiders.distributed.worker import FAILURES, LEASE_META, Worker

logger = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 12  # shorter "tokens" (a local test server's) are common words: no content check
SECRET_HEADERS = frozenset({contract.TOKEN_HEADER.lower(), "authorization", "proxy-authorization", "cookie"})
# Per-download state that means nothing to the worker that takes the request next.
DROPPED_META = frozenset({ENVELOPE_META, "download_slot", "download_latency", LEASE_META})


class SerializationError(ValueError):
    """A request that cannot be queued as JSON; the message names the meta key."""


def to_json(request: Request, spider: Spider, secrets: Redactor | tuple[str, ...] = ()) -> str:
    """The request as queue JSON (headers latin-1, body base64, secret headers dropped);
    SerializationError, redacted, when it is not JSON or carries the token anywhere."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    url = redactor.text(request.url)[:80]
    data = request.to_dict(spider=spider)
    data["meta"] = meta = {k: v for k, v in data["meta"].items() if k not in DROPPED_META}
    for key, value in meta.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise SerializationError(
                f"meta[{redactor.text(key)!r}] of {url} is not JSON ({type(value).__name__})"
            ) from None
    data["headers"] = {  # Scrapy keeps names and values as bytes
        name.decode("latin-1"): [value.decode("latin-1") for value in values]
        for name, values in data["headers"].items()
        if name.decode("latin-1").lower() not in SECRET_HEADERS
    }
    body = data["body"]
    data["body"] = base64.b64encode(body).decode("ascii")
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
    if redactor and (redactor.found_in(text) or redactor.found_in(body.decode("utf-8", "replace"))):
        raise SerializationError(f"refusing to queue {url}: it carries the API token")
    return text


def from_json(text: str | bytes, spider: Spider) -> Request:
    data: dict[str, Any] = json.loads(text)
    data["body"] = base64.b64decode(data.get("body") or "")
    return request_from_dict(data, spider=spider)


# scrapy-redis scheduler settings it does not follow: (setting, the one value it takes or None, what instead).
UNSUPPORTED_SETTINGS: tuple[tuple[str, object, str], ...] = (
    (
        "SCHEDULER_QUEUE_CLASS",
        "scrapy_redis.queue.PriorityQueue",
        "the job's queue is always a priority queue with leases (Request.priority orders it)",
    ),
    ("SCHEDULER_SERIALIZER", None, "queued requests are always JSON (Request.to_dict), never pickle"),
    ("SCHEDULER_FLUSH_ON_START", False, "a worker never empties the shared queue: use `scrapy job --delete`"),
    (
        "SCHEDULER_IDLE_BEFORE_CLOSE",
        0,
        "pops never block: use MAX_IDLE_TIME_BEFORE_CLOSE (and TMAPI_REDIS_POLL_INTERVAL)",
    ),
    ("SCHEDULER_DUPEFILTER_CLASS", None, "the job's duplicate filter is ImageDupeFilter (DUPEFILTER_CLASS)"),
)


def refused_setting(settings: BaseSettings) -> str | None:
    """The one-line error for a scrapy-redis scheduler setting this scheduler would not honour, else None."""
    for name, accepted, instead in UNSUPPORTED_SETTINGS:
        if (value := settings.get(name)) in (None, ""):
            continue
        if isinstance(value, str) and isinstance(accepted, int):  # False or 0, given as text
            with contextlib.suppress(ValueError):
                value = settings.getbool(name) if isinstance(accepted, bool) else settings.getint(name)
        if value != accepted:
            return f"{name}={settings.get(name)!r} is not supported by the distributed scheduler: {instead}"
    dupefilter = settings.get("DUPEFILTER_CLASS")
    if not settings.getpriority("DUPEFILTER_CLASS"):
        return None  # Scrapy's default: configure() puts ImageDupeFilter in
    try:
        cls = load_object(dupefilter)
    except (ImportError, NameError, TypeError, ValueError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, ImageDupeFilter)):
        return (
            f"DUPEFILTER_CLASS={dupefilter!r} is not supported by the distributed scheduler:"
            " it uses tmapi_spiders.distributed.dupefilter.ImageDupeFilter (or a subclass)"
        )
    return None


class LeasingScheduler(BaseScheduler):
    def __init__(self, crawler: Crawler, worker: Worker) -> None:
        settings = crawler.settings
        dupefilter: type[ImageDupeFilter] = load_object(settings["DUPEFILTER_CLASS"])
        self.df = dupefilter(worker.server, worker.keys.dupefilter, settings.getbool("DUPEFILTER_DEBUG"))
        self.worker = worker
        self.spider: Spider | None = None
        self.records: list[Request] = []  # refused requests' failure records, handed out first (`_refused`)
        token = str(registry.read(settings, "TMAPI_API_TOKEN") or "")
        self.secrets = Redactor([token] if len(token) >= MIN_SECRET_LENGTH else [])

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if problem := refused_setting(crawler.settings):  # `scrapy crawl` said so before (preflight)
            raise ConfigError(problem)
        return cls(crawler, Worker.of(crawler))

    def open(self, spider: Spider) -> None:
        self.spider = spider
        self.worker.open()

    def close(self, reason: str) -> None:
        self.worker.close(reason)

    def __len__(self) -> int:
        """Failure records of refused requests (never in Redis), and the job's queue or, Redis down, `unsent`."""
        if not self.worker.down:
            try:
                return len(self.records) + self.worker.job.queued()
            except connection.ERRORS as exc:
                self.worker.failed(exc)
        return len(self.records) + len(self.worker.unsent)

    def has_pending_requests(self) -> bool:
        return len(self) > 0

    def enqueue_request(self, request: Request) -> bool:
        handover = request.meta.get(LEASE_META)  # the lease it replaces (a retry's, a seed's)
        if self.worker.full or self.worker.gone or self.worker.down:
            return self._not_pushed(request)
        try:
            data = to_json(request, self.spider, self.secrets)
        except SerializationError as exc:
            logger.error("Request not queued: %s", exc)
            self.worker.count("tmapi/redis/unserializable")
            self._refused(request, handover, f"not queued for the job: {exc}")
            return False
        # A later page without a lease to hand over is a follow-up: a page redone after a kill
        # asks for it again, and must not pay the rest of the chain twice.
        filtered = not request.dont_filter or (handover is None and is_later_page(request))
        fingerprint = self.df.request_fingerprint(request) if filtered else ""  # "": past the filter
        try:
            queued = self.worker.job.push_request_once(data, request.priority, fingerprint, handover)
        except FAILURES as exc:
            self.worker.failed(exc)
            return self._not_pushed(request)
        if handover:
            self.worker.handed_over(handover)
        if not queued:
            self.df.log(request, self.spider)
            return False
        self.worker.count("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        worker = self.worker
        if self.records and not worker.closing:
            return self.records.pop(0)  # a refused request's failure record: no call, no Redis
        if worker.down or worker.closing or worker.gone or worker.full or not worker.room.may_pop():
            return None
        while True:
            done, counters = worker.ride_along()
            try:
                got = worker.job.pop_request(worker.id, worker.lease, done, counters)
            except FAILURES as exc:
                worker.failed(exc)
                return None
            worker.acked(done, counters)
            if got is None:
                return None
            lease, data = got
            try:
                request = from_json(data, self.spider)
            except (ValueError, KeyError, TypeError) as exc:
                # Not ours or corrupt: it can never be downloaded, so do not hold the job for it.
                logger.error("Dropping an unreadable queued request (%s): %.200s", exc, worker.redactor.text(data))
                worker.count("tmapi/redis/unreadable")
                worker.leases[lease] = None
                worker.finished.add(lease)  # nothing to do: the next ack acknowledges it
                continue
            request.meta[LEASE_META] = lease
            worker.leases[lease] = request
            worker.room.popped()
            worker.count("scheduler/dequeued/redis")
            return request

    def _not_pushed(self, request: Request) -> bool:
        """What enqueue_request answers for a request Redis cannot take now. Redis out of memory or
        the job lost: nothing more is queued (False), and the lease of the page that asked for it is
        never acknowledged (that page is done again once the job can take it). Redis lost: the request
        waits in `unsent`, pushed when it is back (True)."""
        if self.worker.full:
            self.worker.count("tmapi/redis/not_queued_out_of_memory")
        elif self.worker.gone:
            self.worker.count("tmapi/redis/not_queued_job_lost")
        else:
            self.worker.unsent.append(request)
        return not (self.worker.full or self.worker.gone)

    def _refused(self, request: Request, handover: str | None, reason: str) -> None:
        """A request the job cannot queue (token in it, meta not JSON): its image gets a failure
        record through the item path, and the lease it replaces is acknowledged once it is written.
        The record travels on a local `data:` request (no network, never in Redis)."""
        worker = self.worker
        worker.count("tmapi/redis/refused")
        reason = worker.redactor.text(reason)
        state = request.meta.get(META_KEY)
        failure = getattr(self.spider, "failure", None)  # the spider's failure record of an image
        item = None
        if not isinstance(state, dict) or failure is None:
            logger.error("A refused request without an image: no failure record (%s)", reason)
        else:
            try:
                item = failure(worker.redactor.value(state), endpoint_of(request) or ENDPOINT_SEARCH, 0, reason)
            except (KeyError, TypeError, ValueError) as exc:
                logger.error("No failure record for a refused request (%s): %s", exc, reason)
        if item is None:
            if handover:
                worker.leases[handover] = request
                worker.finished.add(handover)  # nothing to write: done, the next ack tick acknowledges it
            return

        def record(_: Any) -> Iterator[Any]:
            yield item

        local = Request("data:,", callback=record, errback=record, dont_filter=True)
        if handover:
            local.meta[LEASE_META] = handover
            worker.leases[handover] = local  # done.py's request_done for `local` acknowledges it
        self.records.append(local)

"""Where each feature keeps its state, this process or the job's Redis: chosen here, once.

Three features keep state that, in a distributed job, must be the whole job's and not
one worker's: the run summary's per-image results, the spending cap's call counter and
the plan limiter's call slots. Each defines what it needs (a Protocol and its local
implementation, beside the feature); the Redis implementations live with the rest of the
distributed code (tmapi_spiders/distributed/backends.py, on the job's keys and clients).
A feature asks `for_crawler(crawler)` for its backend and never looks at REDIS_URL, never
imports `tmapi_spiders.distributed`, never checks which kind it got: what differs
between the two (whether images still in progress are tracked here, whether a cap's
crawl drains its queue, what is cleaned up at the end) is a method or an attribute of
the backend.

The Redis side is named by its import path, so a single-process crawl never imports
redis (issue 17). `shared(settings)` is also the one test of "a worker of a shared job"
that the answer store (off by default for workers), progress and the commands use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from tmapi_spiders.extensions.summary import ImageResults
    from tmapi_spiders.limits.policy import Backend as LimitBackend
    from tmapi_spiders.spending import CallCounter

REDIS_BACKENDS = "tmapi_spiders.distributed.backends.RedisBackends"


def shared(settings: BaseSettings) -> bool:
    """REDIS_URL, or REDIS_SENTINELS (the sentinels name the master): a worker of a job."""
    return bool(settings.get("REDIS_URL") or settings.get("REDIS_SENTINELS"))


class Backends(Protocol):
    """Each feature's backend for one crawl."""

    shared: bool  # the job's, in Redis (True), or this process's (False)

    def image_results(self) -> ImageResults: ...

    def call_counter(self, limit: int) -> CallCounter: ...

    def limiter(self, concurrency: int, qps: float) -> LimitBackend: ...


class LocalBackends:
    """One process: plain objects on the reactor thread."""

    shared = False

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    def image_results(self) -> ImageResults:
        from tmapi_spiders.extensions.summary import LocalResults

        return LocalResults()

    def call_counter(self, limit: int) -> CallCounter:
        from tmapi_spiders.spending import LocalCounter

        return LocalCounter(limit)

    def limiter(self, concurrency: int, qps: float) -> LimitBackend:
        from tmapi_spiders.limits.local import LocalBackend

        return LocalBackend(concurrency, qps)


def for_crawler(crawler: Crawler) -> Backends:
    """The backends of this crawl: the job's in Redis for a worker of a shared job, else local."""
    if shared(crawler.settings):
        cls: Any = load_object(REDIS_BACKENDS)
        backends: Backends = cls(crawler)
        return backends
    return LocalBackends(crawler)

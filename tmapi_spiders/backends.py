"""Where each feature keeps its state, this process or the job's Redis: chosen here, once.

Three features keep state that, in a distributed job, must be the whole job's and not
one worker's: the run summary's per-image results, the spending cap's call counter and
the plan limiter's call slots. What each needs is a Protocol here, with its local
implementation (the limiter's: tmapi_spiders/limits/); the Redis implementations live with the rest of the
distributed code (tmapi_spiders/distributed/backends.py, on the job's keys and clients).
A feature asks `for_crawler(crawler)` for its backend and never looks at REDIS_URL, never
imports `tmapi_spiders.distributed`, never checks which kind it got: what differs
between the two (whether images still in progress are tracked here, whether a cap's
crawl drains its queue, what is cleaned up at the end) is a method or an attribute of
the backend.

The Redis side is named by its import path, so a single-process crawl never imports
redis. `shared(settings)` is also the one test of "a worker of a shared job"
that the answer store (off by default for workers), progress and the commands use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from tmapi_spiders.limits.policy import Backend as LimitBackend

REDIS_BACKENDS = "tmapi_spiders.distributed.backends.RedisBackends"


class ImageResults(Protocol):
    """Where per-image results are kept: this process, or the whole job (Redis,
    distributed/backends.py). Chosen by `for_crawler`, never by the feature."""

    # The job's (True): other workers' images are in it, and images in progress here are
    # not tracked (each worker sees a part of them). This process's (False): they are.
    shared: bool
    job_name: str | None  # the summary's `job`

    def add(self, image: dict[str, Any]) -> None:
        """Called from a signal handler: must not block the reactor."""

    async def all(self) -> list[dict[str, Any]]: ...

    def mine(self) -> list[dict[str, Any]]:
        """This process's own images, readable after the reactor is gone (a forced stop)."""
        ...

    def job_totals(self) -> dict[str, int]:
        """The job's own counters (images, paid_calls, pages_fetched, items_written) where
        they are more than this process's stats; {} when they are not."""
        ...

    def cleanup(self, persist: bool) -> None:
        """Called once the summary is written (persist: SCHEDULER_PERSIST keeps the job)."""


class LocalResults:
    shared = False
    job_name = None

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []

    def add(self, image: dict[str, Any]) -> None:
        self.images.append(image)

    async def all(self) -> list[dict[str, Any]]:
        return list(self.images)

    def mine(self) -> list[dict[str, Any]]:
        return list(self.images)

    def job_totals(self) -> dict[str, int]:
        return {}

    def cleanup(self, persist: bool) -> None:
        return None


class CallCounter(Protocol):
    """Where reservations are counted: this process, or the whole job (Redis,
    distributed/backends.py). Chosen by `for_crawler`, never by the feature."""

    # The job's queue (True) is left as it is at the cap, for a later run with a higher
    # one; this process's (False) is drained, each request left refused and recorded.
    shared: bool

    async def reserve(self) -> int:
        """Reserve one call; the number of calls reserved so far including this one, or 0 if the cap is reached."""
        ...

    async def spent(self) -> int: ...

    def job_finished(self) -> None:
        """The crawl finished (not stopped): a job-wide count goes with the job."""


class LocalCounter:
    """One process: the reactor thread is the only writer, so a plain int is exact."""

    shared = False

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    async def reserve(self) -> int:
        if self.count >= self.limit:
            return 0
        self.count += 1
        return self.count

    async def spent(self) -> int:
        return self.count

    def job_finished(self) -> None:
        return None  # nothing outlives the process


class CounterUnavailable(Exception):
    """The job-wide counter cannot be reached: no call may go out unreserved."""


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
        return LocalResults()

    def call_counter(self, limit: int) -> CallCounter:
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

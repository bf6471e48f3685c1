"""Where the summary's results, the spending cap's counter and the limiter's slots live: this process,
or the job's Redis (distributed/backends.py, loaded by path so one process never imports redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from tmapi_spiders.limits import LocalBackend

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from tmapi_spiders.limits.shared import RedisBackend


class LocalResults:
    """Where per-image results are kept: this process's, in a list (RedisResults: the whole job's)."""

    shared = False  # the job's: other workers' images are in it, and images in progress are not tracked
    job_name: str | None = None  # the summary's `job`

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []

    def add(self, image: dict[str, Any]) -> None:
        """From a signal handler: must not block."""
        self.images.append(image)

    async def all(self) -> list[dict[str, Any]]:
        return list(self.images)

    def mine(self) -> list[dict[str, Any]]:
        """This process's, readable once the reactor is gone."""
        return list(self.images)

    def job_totals(self) -> dict[str, int]:
        """The job's counters (images, paid_calls, ...); {} in one process."""
        return {}

    def cleanup(self, persist: bool) -> None:
        """Once the summary is written (persist: SCHEDULER_PERSIST)."""


class LocalCounter:
    """Where reservations are counted: this process (RedisCounter: the whole job). The reactor
    thread is the only writer, so a plain int is exact."""

    shared = False  # the job's: its queue is left as it is at the cap; this process's is drained

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    async def reserve(self) -> int:
        """Calls reserved so far with this one, or 0 at the cap."""
        if self.count >= self.limit:
            return 0
        self.count += 1
        return self.count

    def job_finished(self) -> None:
        """The crawl finished (not stopped): a job-wide count goes with the job; nothing outlives the process."""


class CounterUnavailable(Exception):
    """The job-wide counter cannot be reached: no call may go out unreserved."""


def shared(settings: BaseSettings) -> bool:
    """REDIS_URL, or REDIS_SENTINELS (the sentinels name the master): a worker of a job."""
    return bool(settings.get("REDIS_URL") or settings.get("REDIS_SENTINELS"))


class LocalBackends:
    """Each feature's backend for one crawl: this process's (RedisBackends: the job's)."""

    def image_results(self) -> LocalResults:
        return LocalResults()

    def call_counter(self, limit: int) -> LocalCounter:
        return LocalCounter(limit)

    def limiter(self, concurrency: int, qps: float) -> LocalBackend | RedisBackend:
        return LocalBackend(concurrency, qps)


def for_crawler(crawler: Crawler) -> LocalBackends:
    """The backends of this crawl: the job's in Redis for a worker of a shared job, else local."""
    if shared(crawler.settings):
        return load_object("tmapi_spiders.distributed.backends.RedisBackends")(crawler)
    return LocalBackends()

"""A worker's `start()`: seeds from Redis, leased a few at a time (a worker killed before queueing
a seed's first request loses nothing), until the job is drained and idle. Redis calls run in a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.crawler import Crawler

from tmapi_spiders import registry
from tmapi_spiders.api import contract
from tmapi_spiders.api.identity import SEED_ROW_FIELDS, image_key
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.config import ConfigError, max_pages_from, query_from_args
from tmapi_spiders.crawl.seeds import BAD_LINES_LOGGED, BadLine, Seed, check_image_url
from tmapi_spiders.distributed.seed_writer import ListSeeds
from tmapi_spiders.distributed.worker import FAILURES, LEASE_META, Worker

if TYPE_CHECKING:
    from tmapi_spiders.spiders.image_search import ImageSearchSpider

logger = logging.getLogger(__name__)

# Longest wait between looks for seeds while others still work (doubling from the poll interval):
# seeds appear mid-job only when seeded again or a lease comes back, and both wake the loop.
IDLE_LOOK_MAX = 5.0
BUSY_LOOK_MAX = 20.0  # the same while this worker holds leases: it looks again when the last is acked

_USERINFO = re.compile(r"(//)[^/?#@\s]*@")


def shown(text: str, redactor: Redactor | None = None) -> str:
    """A seed as a log line may quote it: no token, no `user:pass@`, at most 200 characters."""
    text = redactor.text(text) if redactor else text
    return _USERINFO.sub(r"\1***@", text)[:200]


def read_seed(raw: str, redactor: Redactor | None = None) -> tuple[Seed, contract.SearchQuery, int]:
    """A seed popped from Redis, checked like a local list's line; ConfigError when bad. A seed
    with the token is left to the scheduler's refusal; `redactor` keeps it out of the messages."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = raw.strip()  # a bare URL pushed by hand, scrapy-redis style
    if isinstance(data, str):
        data = {"url": data}
    if not isinstance(data, Mapping) or not isinstance(data.get("url"), str):
        raise ConfigError(f"seed is not a JSON object with a url: {shown(raw, redactor)!r}")
    url = image_key(data["url"])
    if reason := check_image_url(url):
        raise ConfigError(f"seed {shown(url, redactor)!r}: {reason}")
    args = {k: v for k, v in data.items() if k not in ("url", "max_pages", *SEED_ROW_FIELDS)}
    if unknown := sorted(set(args) - {"language", "sort", "page_size", *contract.FILTERS}):
        raise ConfigError(f"seed {shown(url, redactor)!r}: unknown argument {shown(unknown[0], redactor)!r}")
    given, row = data.get("input"), data.get("input_row")
    if given is not None and (not isinstance(given, Mapping) or type(row) is not int):
        raise ConfigError(f"seed {shown(url, redactor)!r}: input is not an object with an integer input_row")
    max_pages = data.get("max_pages")
    seed = Seed(url, 0) if given is None else Seed(url, row, dict(given))
    return seed, query_from_args(args), 0 if max_pages in (0, "0") else max_pages_from(max_pages)


class WorkerStartMiddleware:
    """The worker's start(): seeds from the job instead of the spider's own start() (a worker
    given -a urls_file pushes that list into the job first)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WorkerStartMiddleware:
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Request]:
        spider: ImageSearchSpider = self.crawler.spider  # type: ignore[assignment]
        worker, settings = Worker.of(self.crawler), self.crawler.settings
        batch = registry.read(settings, "TMAPI_REDIS_SEED_BATCH")
        poll = max(0.05, registry.read(settings, "TMAPI_REDIS_POLL_INTERVAL"))
        max_idle = registry.read(settings, "MAX_IDLE_TIME_BEFORE_CLOSE")
        config, job = spider.job, worker.keys.job
        if config.urls_file or config.urls:

            def skipped(line: BadLine) -> None:  # in the push's thread: logging is thread-safe, the stats are not
                logger.warning(line.skipped(config.seed_source, config.seed_unit))

            seeds = ListSeeds(config, skipped, BAD_LINES_LOGGED)
            pushed, known = await asyncio.to_thread(worker.job.push_encoded, seeds)
            if seeds.bad:
                worker.count("tmapi/seeds_bad_line", seeds.bad)
            logger.info("Seeded job %r from %s: %d new, %d already seeded", job, config.seed_source, pushed, known)
        idle_since: float | None = None
        wait = poll  # before the next look when this one finds no seed
        while not worker.closing and not worker.gone and not worker.full:
            if worker.down:
                idle_since = None
                await asyncio.sleep(poll)
                continue
            try:
                left, popped = await asyncio.to_thread(worker.job.pop_seeds, worker.id, worker.lease, batch)
            except FAILURES as exc:
                worker.failed(exc)  # lost: the loop waits for Redis; full or gone: it ends
                continue
            for lease, raw in popped:
                worker.leases[lease] = None  # a seed: its request not made yet
                try:
                    seed, query, max_pages = read_seed(raw, worker.redactor)
                except ConfigError as exc:
                    worker.count("tmapi/seeds_bad")
                    logger.warning("bad seed skipped: %s", exc)
                    worker.finished.add(lease)  # nothing to do: the next ack acknowledges it
                    continue
                request = spider.first_request(seed, query, max_pages)
                request.meta[LEASE_META] = lease
                yield request
            if popped or left:
                idle_since = None
            if popped:
                wait = poll
            elif left:  # others still work: no seed is likely soon, so look less and less often
                worker.wake()
                await worker.idle(wait)
                wait = min(2 * wait, max(poll, BUSY_LOOK_MAX if worker.leases else IDLE_LOOK_MAX))
            else:  # drained: look every poll interval, to stop after MAX_IDLE_TIME_BEFORE_CLOSE on time
                wait = poll
                idle_since = idle_since or time.monotonic()
                if max_idle > 0 and time.monotonic() - idle_since >= max_idle:
                    logger.info("Job %r is drained and this worker was idle %.1f s: stopping", job, max_idle)
                    return
                await worker.idle(poll)

"""Live progress from the spider's stats: a log line every TMAPI_PROGRESS_INTERVAL seconds, or a tqdm bar."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.asyncio import AsyncioLoopingCall, create_looping_call
from twisted.internet.task import LoopingCall

from tmapi_spiders import registry
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api import contract
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, META_KEY, endpoint_of
from tmapi_spiders.extensions import for_tmapi_job, stat
from tmapi_spiders.extensions.list_size import images_total
from tmapi_spiders.jobs import backends

logger = logging.getLogger(__name__)

BAR_REFRESH = 0.5  # seconds between bar redraws, whatever the log interval
# (pages, seconds since the first page) before a rate is given: earlier, an ETA would be noise.
RATE_AFTER = (3, 1.0)


@dataclass(frozen=True)
class Progress:
    """One reading of a job's progress; `line()` is what gets logged."""

    images_total: int
    images_done: int
    images_failed: int
    images_known: int  # first page in: their pages are counted in pages_expected
    images_settled: int  # known, or failed before their first page
    pages: int
    pages_expected: int
    items: int
    paid_calls: int
    calls_per_s: float
    pages_per_s: float
    worker: bool = False  # a distributed worker knows no total: the job's progress is `scrapy job`
    total_known: bool = True  # False: images_total is an estimate (the list is still being read)
    stopping: str = ""  # why the crawl starts no new image (the cap), or ""

    def eta(self) -> str:
        """From the pages known images still expect, plus an estimate for the images not started."""
        if self.stopping:
            return f"- (stopping: {self.stopping})"
        if self.total_known and self.images_total and self.images_done >= self.images_total:
            seconds = 0
        elif self.pages_per_s <= 0:
            return "?"
        else:
            per_image = self.pages_expected / self.images_known if self.images_known else 1.0
            unstarted = max(0, self.images_total - self.images_settled)
            remaining = max(0, self.pages_expected - self.pages) + unstarted * per_image
            seconds = round(remaining / self.pages_per_s)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def line(self) -> str:
        rate = f"paid calls {self.paid_calls} ({self.calls_per_s:.1f}/s)"
        if self.worker:
            return (
                f"progress (this worker; the whole job: scrapy job): images {self.images_done} done, "
                f"pages {self.pages}, items {self.items}, failures {self.images_failed}, {rate}"
            )
        total = str(self.images_total) if self.total_known else f"~{self.images_total}"
        return (
            f"progress: images {self.images_done}/{total} done, "
            f"pages {self.pages}/{self.pages_expected} expected so far, "
            f"items {self.items}, failures {self.images_failed}, {rate}, ETA {self.eta()}"
        )

    def postfix(self) -> str:
        pages = f"{self.pages}" if self.worker else f"{self.pages}/{self.pages_expected}"
        calls = f"calls {self.paid_calls} ({self.calls_per_s:.1f}/s)"
        text = f"pages {pages} items {self.items} fail {self.images_failed} {calls}"
        return text if self.worker else f"{text} ETA {self.eta()}"


class TmapiProgress:
    def __init__(self, crawler: Crawler, interval: float, bar: bool) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats = crawler.stats
        self.interval = interval
        self.use_bar = bar
        self.known = 0
        self.failed_early = 0
        self.first_page: float | None = None  # the rate counts from the first page
        self.started = 0.0
        self.samples: deque[tuple[float, int]] = deque()  # (time, paid calls) over the last interval
        self.task: AsyncioLoopingCall | LoopingCall | None = None
        self.bar: Any = None
        self.handlers: list[logging.StreamHandler[Any]] = []  # the console's, writing above the bar
        self.worker = backends.shared(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        interval = registry.read(crawler.settings, "TMAPI_PROGRESS_INTERVAL")
        if not interval or not for_tmapi_job(crawler):
            raise NotConfigured
        o = cls(crawler, interval, want_bar(registry.read(crawler.settings, "TMAPI_PROGRESS_BAR")))
        crawler.signals.connect(o.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(o.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(o.response_received, signal=signals.response_received)
        crawler.signals.connect(o.image_finished, signal=tmapi_signals.image_finished)
        return o

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self.samples.append((self.started, 0))
        if self.use_bar:
            # Imported only when a bar is drawn: most runs log lines and never need tqdm.
            from tqdm import tqdm

            try:
                known = all(os.get_terminal_size(sys.stderr.fileno()))
            except (OSError, ValueError):
                known = False
            # tqdm draws nothing on a terminal that reports no size (some CI pseudo-terminals)
            size: dict[str, Any] = {"dynamic_ncols": True} if known else {"ncols": 120, "nrows": 24}
            self.bar = tqdm(total=0, unit="img", desc="images", file=sys.stderr, leave=True, **size)
            # The console handlers (Scrapy's, not a FileHandler) write above the bar.
            self.handlers = [
                h
                for h in logging.getLogger().handlers
                if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.stdout)
            ]
            for handler in self.handlers:
                handler.setStream(_AboveTheBar(handler.stream, self.bar))
        self.task = create_looping_call(self.tick)
        self.task.start(min(self.interval, BAR_REFRESH) if self.bar is not None else self.interval, now=False)

    def response_received(self, response: Response, request: Request) -> None:
        if endpoint_of(request) == ENDPOINT_SEARCH and response.status == contract.OK:
            if self.first_page is None:
                self.first_page = time.monotonic()
            state = request.meta.get(META_KEY) or {}
            if state.get("page") == 1:
                self.known += 1

    def image_finished(self, image: dict[str, Any]) -> None:
        if image.get("total_count") is None:  # failed before its first page came in
            self.failed_early += 1

    def read(self, whole: bool = False) -> Progress:
        """The current reading; calls/s is over the last interval (or the whole run, `whole=True`)."""
        now = time.monotonic()
        calls = stat(self.stats, "tmapi/paid_calls")
        pages = stat(self.stats, "tmapi/pages")
        self.samples.append((now, calls))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.interval:
            self.samples.popleft()
        since, calls_then = (self.started, 0) if whole else self.samples[0]
        span = now - since
        calls_per_s = (calls - calls_then) / span if span > 0 else 0.0
        failed = stat(self.stats, "tmapi/images_failed")
        total, known = images_total(self.stats)
        first, rate = self.first_page, 0.0  # no rate (and no ETA) before RATE_AFTER
        if first is not None and pages >= RATE_AFTER[0] and now - first >= RATE_AFTER[1]:
            rate = pages / (now - first)
        return Progress(
            images_total=total,
            images_done=stat(self.stats, "tmapi/images_searched") + failed,
            images_failed=failed,
            images_known=self.known,
            images_settled=self.known + self.failed_early,
            pages=pages,
            pages_expected=stat(self.stats, "tmapi/pages_expected"),
            items=stat(self.stats, "tmapi/items"),
            paid_calls=calls,
            calls_per_s=calls_per_s,
            pages_per_s=rate,
            worker=self.worker,
            total_known=known,
            stopping=getattr(self.crawler.spider, "stopping", ""),  # the spider's reason to start no image
        )

    def tick(self) -> None:
        progress = self.read()
        if self.bar is None:
            logger.info(progress.line())
        else:
            self.draw(progress)

    def draw(self, progress: Progress) -> None:
        self.bar.total = None if progress.worker else max(progress.images_total, 1)
        self.bar.n = progress.images_done
        self.bar.set_postfix_str(progress.postfix(), refresh=False)
        self.bar.refresh()

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        final = self.read(whole=True)  # the last line gives the whole run's rate
        if self.bar is not None:
            self.draw(final)
            self.bar.close()
            for handler in self.handlers:
                handler.setStream(handler.stream.stream)
        logger.info("%s (finish reason: %s)", final.line(), reason)


class _AboveTheBar:
    """A console handler's stream while the bar is drawn: each line through tqdm.write, so the bar is
    redrawn below it (the handler keeps its level, formatter and filters)."""

    def __init__(self, stream: Any, bar: Any) -> None:
        self.stream = stream
        self.bar = bar

    def write(self, text: str) -> None:
        self.bar.write(text, file=self.stream, end="")

    def flush(self) -> None:
        self.stream.flush()


def want_bar(value: str) -> bool:
    """TMAPI_PROGRESS_BAR (checked by the registry): auto (a bar when stderr is a terminal), true or false."""
    return sys.stderr.isatty() if value == "auto" else contract.parse_bool(value)

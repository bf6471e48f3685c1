"""Extensions the tests put into real crawls (`-s EXTENSIONS=...`) to watch them from inside.

They use only public Scrapy APIs (signals, `engine.scheduler`, the stats) and write what
they saw as stats, which the crawl's log prints at its end.
"""

from __future__ import annotations

from typing import Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse


class SchedulerProbe:
    """The most requests the scheduler held at once (`probe/max_scheduled`).

    The seed loop exists to keep a long seed list out of the scheduler: this tells a test
    whether it does."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.most = 0
        crawler.signals.connect(self.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def request_scheduled(self, request: Request) -> None:
        engine = self.crawler.engine
        scheduler = engine.scheduler if engine is not None else None
        if scheduler is not None:
            held = len(scheduler) + 1  # sent before the request is queued
            if held > self.most:
                self.most = held

    def spider_closed(self) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("probe/max_scheduled", self.most)


class ImportProbe:
    """Which of the libraries a single-process JSON Lines crawl does not need it had imported by its
    end (`probe/imported/<name>`: 0 or 1): the Redis ones, and openpyxl (workbooks only)."""

    WATCHED = ("redis", "scrapy_redis", "openpyxl")

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def spider_closed(self) -> None:
        import sys

        assert self.crawler.stats is not None
        for name in self.WATCHED:
            self.crawler.stats.set_value(f"probe/imported/{name}", int(name in sys.modules))


class WaitCpuProbe:
    """CPU the crawl spent while its first call was out (`probe/wait_cpu_us`, `probe/wait_us`).

    From the first request reaching the downloader to its response: with a slow API that is
    time in which the crawl has nothing to do, so any CPU in it is polling or timers."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.sent: tuple[float, float] | None = None
        self.done = False
        crawler.signals.connect(self.request_reached_downloader, signal=signals.request_reached_downloader)
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def request_reached_downloader(self) -> None:
        import time

        if self.sent is None:
            self.sent = (time.process_time(), time.monotonic())

    def response_received(self) -> None:
        import time

        if self.sent is None or self.done:
            return
        self.done = True
        cpu, wall = time.process_time() - self.sent[0], time.monotonic() - self.sent[1]
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("probe/wait_cpu_us", round(cpu * 1e6))
        self.crawler.stats.set_value("probe/wait_us", round(wall * 1e6))


class ResponseProbe:
    """What the engine hands on of the API's answers: how many (`probe/api_responses`), how many are
    TextResponses whose `text` reads as the body (`probe/api_responses_text`), and how many still
    carry the token's query parameter in their URL (`probe/api_responses_token_in_url`)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def response_received(self, response: Response) -> None:
        stats = self.crawler.stats
        if stats is None or "/1688/" not in response.url:
            return
        stats.inc_value("probe/api_responses")
        if isinstance(response, TextResponse) and response.text == response.body.decode("utf-8"):
            stats.inc_value("probe/api_responses_text")
        if "apiToken=" in response.url:
            stats.inc_value("probe/api_responses_token_in_url")


def with_probe(path: str) -> str:
    """The project's EXTENSIONS and one probe, as a `-s EXTENSIONS=...` value (a bare dict
    given with -s replaces the project's, not adds to it)."""
    import json

    from tmapi_spiders import settings

    return json.dumps({**settings.EXTENSIONS, path: 900})

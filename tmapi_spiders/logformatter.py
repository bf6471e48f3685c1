"""Scrapy's log messages, without the one per scraped record that nobody sees."""

from __future__ import annotations

import logging
from typing import Any, Self

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure


def logs_debug(crawler: Crawler) -> bool:
    """True when the crawl's log takes DEBUG records (an unknown level counts as yes)."""
    if not crawler.settings.getbool("LOG_ENABLED"):
        return False
    level = crawler.settings.get("LOG_LEVEL")
    if isinstance(level, str):
        level = logging.getLevelName(level.strip().upper())
    return not isinstance(level, int) or level <= logging.DEBUG


class TmapiLogFormatter(LogFormatter):
    """Skips the DEBUG "Scraped from" and "Crawled" messages when the log does not take DEBUG.

    Scrapy builds those records (the whole item in one, per item; one per response) and the
    log handler then throws them away at INFO: a measurable share of a crawl's CPU
    (benchmarks/RESULTS.md). At DEBUG they are written as before.
    """

    def __init__(self, debug: bool = True) -> None:
        self.debug = debug

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(logs_debug(crawler))

    def crawled(self, request: Request, response: Response, spider: Spider) -> LogFormatterResult | None:
        return super().crawled(request, response, spider) if self.debug else None

    def scraped(self, item: Any, response: Response | Failure | None, spider: Spider) -> LogFormatterResult | None:
        return super().scraped(item, response, spider) if self.debug else None

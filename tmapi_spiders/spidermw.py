"""Spider middleware for the hot path (README.md, "Performance")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Self

from scrapy import Request
from scrapy.crawler import Crawler


class StartRequestsMiddleware:
    """Scrapy's StartSpiderMiddleware (meta `is_start_request` on start requests, which the
    scheduler queues apart), without its pass over everything else a spider yields.

    Scrapy's version inherits BaseSpiderMiddleware, whose process_spider_output wraps every
    record of every page in one more async generator that changes nothing: ~2 % of a crawl's
    CPU. This one has process_start only."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for output in start:
            if isinstance(output, Request):
                output.meta.setdefault("is_start_request", True)
            yield output

"""Done means written: a distributed worker acknowledges a lease only once every record its request gave
is written (`writes.WriteGuard`: a failed write stops the crawl, exit 7) and every follow-up request is
queued (`RequestsDone`)."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from typing import Any, Self

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.crawl.writes import WriteGuard


class RequestsDone:
    """A spider middleware, next to the engine, that announces each request whose work is done: what its
    callback yielded is counted off on the item signals and `request_scheduled` / `request_dropped`."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.writes = WriteGuard.of(crawler)
        # request -> its records and follow-up requests not yet through or queued, plus 1 while its
        # callback's output is not exhausted
        self.pending: weakref.WeakKeyDictionary[Request, int] = weakref.WeakKeyDictionary()
        # follow-up request -> the request whose callback yielded it
        self.parent_of: weakref.WeakKeyDictionary[Request, Request] = weakref.WeakKeyDictionary()
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self._record_through, signal=signal)
        for signal in (signals.request_scheduled, signals.request_dropped):
            crawler.signals.connect(self._follow_up_queued, signal=signal)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        request = response.request
        assert request is not None
        self.pending[request] = self.pending.get(request, 0) + 1
        try:
            async for element in result:
                # Pulled from here is not yet written (a record) nor queued (a request).
                self.pending[request] += 1
                if isinstance(element, Request):
                    self.parent_of[element] = request
                yield element
        finally:
            self._count_off(request)

    def _record_through(self, item: Any, response: Response | Failure | None = None, **_: Any) -> None:
        request = getattr(response, "request", None)
        if not isinstance(request, Request):
            return  # a record with no request (written by the worker itself): not counted here
        # Not pending: an errback's one record for a failed download (no spider middleware saw it).
        self.pending.setdefault(request, 1)
        self._count_off(request)

    def _follow_up_queued(self, request: Request, **_: Any) -> None:
        """A yielded request was scheduled or dropped as a duplicate: its parent no longer waits for it."""
        parent = self.parent_of.pop(request, None)
        if parent is not None and parent in self.pending:
            self._count_off(parent)

    def _count_off(self, request: Request) -> None:
        left = self.pending[request] - 1
        if left > 0:
            self.pending[request] = left
            return
        del self.pending[request]
        if self.writes.failed is None:  # a write failed: nothing is done from now on
            self.crawler.signals.send_catch_log(tmapi_signals.request_done, request=request)

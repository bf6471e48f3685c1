"""Scrapy's HTTP/1.1 download handler, without Twisted's silent re-send.

Twisted's connection pool re-sends an idempotent request once, unseen by Scrapy, when a
kept-alive connection fails. For a paid API that is a call nobody counts: the spending
cap, `tmapi/paid_calls` and the limiter would all miss it. With the re-send off, such a
failure reaches RetryMiddleware like any other: counted, backed off, capped.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler


class CountedHTTP11DownloadHandler(HTTP11DownloadHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool.retryAutomatically = False

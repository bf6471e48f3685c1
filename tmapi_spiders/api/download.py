"""Scrapy's HTTP/1.1 download handler, with the token put on at the last moment.

Two changes to the stock handler, both about paid calls and secrets:

- The token (auth.py decides header or query parameter) goes on a copy of the request
  that only the network sees. The response comes back under the request's own URL, and
  an exception's text is redacted, so the token is on nothing Scrapy logs, fingerprints,
  caches or queues.
- Twisted's connection pool re-sends an idempotent request once, unseen by Scrapy, when a
  kept-alive connection fails. For a paid API that is a call nobody counts: the spending
  cap, `tmapi/paid_calls` and the limiter would all miss it. With the re-send off, such a
  failure reaches RetryMiddleware like any other: counted, backed off, capped.

Scrapy builds its connection pool inside the handler and takes none from outside, so the
re-send is switched off where Twisted makes it public: `HTTPConnectionPool.retryAutomatically`,
the documented default of every pool, set to False on the class when the handler is built.
That holds for the whole process; every Twisted pool in a crawl is a Scrapy handler's. A
Twisted without that switch stops the crawl when the spider opens, before any paid call
(finish reason `tmapi_scrapy_unsupported`, one log line). `Connection: close` on each call
would stop the re-send through HTTP alone, at the price of a new connection (and TLS
handshake) for every paid call.
"""

from __future__ import annotations

import logging

from scrapy import Request
from scrapy import signals as scrapy_signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError, CloseSpider, DownloadConnectionRefusedError
from scrapy.http import Response
from twisted.internet.error import ConnectError, DNSLookupError, NoRouteError, TCPTimedOutError
from twisted.web.client import HTTPConnectionPool

from tmapi_spiders import signals
from tmapi_spiders.api import auth
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import endpoint_of

# Failures before the request could reach the API: no call to pay for.
NOT_CONNECTED = (
    ConnectError,
    DNSLookupError,
    NoRouteError,
    TCPTimedOutError,
    CannotResolveHostError,
    DownloadConnectionRefusedError,
)
UNSUPPORTED_REASON = "tmapi_scrapy_unsupported"  # outcome.SCRAPY_ERROR

logger = logging.getLogger(__name__)


def stop_automatic_retries(pool_class: type = HTTPConnectionPool) -> str | None:
    """Turn off Twisted's unseen re-send of a failed request for every pool of `pool_class`
    (Scrapy's handler builds a plain HTTPConnectionPool); the problem, in words, when
    Twisted has no such switch (None: done)."""
    if not isinstance(getattr(pool_class, "retryAutomatically", None), bool):
        return (
            f"Twisted's {pool_class.__name__} has no `retryAutomatically`:"
            " Twisted could re-send a failed paid call unseen by the spending cap and tmapi/paid_calls"
        )
    pool_class.retryAutomatically = False
    return None


class CountedHTTP11DownloadHandler(HTTP11DownloadHandler):
    """Signs API calls with the token and counts every call the API received
    (`tmapi/paid_calls`, `tmapi/calls/<endpoint>`): an answer came back, or the call
    failed after the connection was made (the API may have done the work). Calls that
    never connected, and the one `auto` call the gateway refused, are not paid."""

    # Built with the engine, not at the first download: a distributed worker tells it at
    # open how the job's gateway takes the token (signals.auth_known).
    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        self.unsupported = stop_automatic_retries()
        super().__init__(crawler)
        if self.unsupported:
            crawler.signals.connect(self._refuse_to_start, signal=scrapy_signals.spider_opened)
        self.signer = auth.Signer.from_settings(crawler.settings)
        self.redactor = Redactor(auth.secrets_of(crawler.settings))
        self.stats = crawler.stats
        self.signer.listeners.append(lambda way: crawler.signals.send_catch_log(signals.auth_learned, way=way))
        crawler.signals.connect(self.signer.adopt, signal=signals.auth_known)

    def _refuse_to_start(self) -> None:
        logger.error("This Twisted cannot run tmapi-spiders safely: %s (see pyproject.toml)", self.unsupported)
        raise CloseSpider(UNSUPPORTED_REASON)

    async def download_request(self, request: Request) -> Response:
        if not self.signer.applies(request):
            return await super().download_request(request)
        way, probing = await self.signer.next_way()
        if not probing:
            return await self._send(request, way)
        try:
            response = await self._send(request, way, count=False)
            if auth.refused(response.status):
                # The gateway did not take the header: the same call once more with the
                # endpoint page's query parameter, before the token counts as refused.
                assert self.stats is not None
                self.stats.inc_value("tmapi/auth/header_refused")
                way = auth.QUERY
                response = await self._send(request, way)
            else:
                self._count(request)
        except BaseException:
            self.signer.settle(None)  # undecided: the next call probes again
            raise
        refused = auth.refused(response.status)
        self.signer.settle(None if refused else way, refused=refused)
        return response

    async def _send(self, request: Request, way: str, count: bool = True) -> Response:
        signed = self.signer.sign(request, way)
        try:
            response = await super().download_request(signed)
        except Exception as exc:
            if not isinstance(exc, NOT_CONNECTED):
                self._count(request)
            self._scrub(exc)
            raise
        if count:
            self._count(request)
        if response.url != request.url:
            response = response.replace(url=request.url)
        return response

    def _scrub(self, exc: BaseException) -> None:
        """Redact the text of an exception and of those it was raised from (a URL with
        the token in it is what a timeout or a refused connection quotes)."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            try:
                current.args = tuple(self.redactor.value(arg) for arg in current.args)
            except (AttributeError, TypeError):
                pass
            current = current.__cause__ or current.__context__

    def _count(self, request: Request) -> None:
        endpoint = endpoint_of(request)
        if endpoint and self.stats is not None:
            self.stats.inc_value("tmapi/paid_calls")
            self.stats.inc_value(f"tmapi/calls/{endpoint}")

"""Scrapy's HTTP/1.1 download handler that signs API calls with the token at the last moment and counts
every paid call: the token sits only on a copy the network sees (exceptions redacted), and Twisted's
unseen re-send of an idempotent request is off, so every call reaches retry, the cap and the stats."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from scrapy import Request
from scrapy import signals as scrapy_signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import CannotResolveHostError, CloseSpider, DownloadConnectionRefusedError
from scrapy.http import Response
from twisted.internet.error import ConnectError, ConnectionRefusedError, DNSLookupError, NoRouteError, TCPTimedOutError
from twisted.web.client import HTTPConnectionPool
from w3lib.url import add_or_replace_parameter

from tmapi_spiders import registry, signals
from tmapi_spiders.api import auth, contract
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import endpoint_of

# Nothing answers at the address (a wrong TMAPI_BASE_URL, not a slow or overloaded API).
UNREACHABLE = (
    DownloadConnectionRefusedError,
    CannotResolveHostError,
    ConnectionRefusedError,
    DNSLookupError,
    NoRouteError,
)
# Failures before the request could reach the API: no call to pay for.
NOT_CONNECTED = (*UNREACHABLE, ConnectError, TCPTimedOutError)
UNSUPPORTED_REASON = "tmapi_scrapy_unsupported"  # outcome.SCRAPY_ERROR

HEADER, QUERY, AUTO = "header", "query", "auto"  # TMAPI_AUTH
NAMED = {HEADER: f"`{contract.TOKEN_HEADER}` header", QUERY: f"`{contract.TOKEN_QUERY_PARAM}` query parameter"}
REFUSED = (contract.UNAUTHORIZED, 403)  # the gateway's answers to no key and to an unknown one

logger = logging.getLogger(__name__)


def under_api(url: str, base_url: str) -> bool:
    """A URL under the API's base (`base_url` without its trailing `/`): signed even when no call of the
    crawl made it, so that `scrapy shell`, `fetch` and `view` can look at an answer."""
    return url.startswith(base_url + "/1688/")


def stop_automatic_retries(pool_class: type = HTTPConnectionPool) -> str | None:
    """Turn off Twisted's unseen re-send for every pool of `pool_class` (process-wide: Scrapy builds its
    own pool); the problem, in words, when this Twisted has no such switch (None: done)."""
    if not isinstance(getattr(pool_class, "retryAutomatically", None), bool):
        return (
            f"Twisted's {pool_class.__name__} has no `retryAutomatically`:"
            " Twisted could re-send a failed paid call unseen by the spending cap and tmapi/paid_calls"
        )
    pool_class.retryAutomatically = False
    return None


class CountedHTTP11DownloadHandler(HTTP11DownloadHandler):
    """Signs API calls and counts each the API received (`tmapi/paid_calls`, `tmapi/calls/<endpoint>`):
    not those that never connected, nor the one `auto` call the gateway refused."""

    # Built with the engine: a distributed worker tells it at open how the gateway takes the token.
    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        self.unsupported = stop_automatic_retries()
        super().__init__(crawler)
        if self.unsupported:
            crawler.signals.connect(self._refuse_to_start, signal=scrapy_signals.spider_opened)
        self.token = registry.read(crawler.settings, "TMAPI_API_TOKEN")
        self.redactor = Redactor(auth.secrets_of(crawler.settings))
        mode = registry.read(crawler.settings, "TMAPI_AUTH")
        self.way: str | None = None if mode == AUTO else mode  # how the token goes: None until `auto` knows
        self.probing = asyncio.Lock()  # held by the one call that learns the way; the others wait
        self.refused = False  # the gateway took the token neither way: no call goes out again
        self.base_url = registry.read(crawler.settings, "TMAPI_BASE_URL").rstrip("/")
        self.stats = crawler.stats
        self.signals = crawler.signals
        crawler.signals.connect(self.adopt, signal=signals.auth_known)

    def _refuse_to_start(self) -> None:
        logger.error("This Twisted cannot run tmapi-spiders safely: %s (see pyproject.toml)", self.unsupported)
        raise CloseSpider(UNSUPPORTED_REASON)

    def applies(self, request: Request) -> bool:
        """Our API calls, and (for `scrapy shell`/`fetch`/`view`) any URL under the API's base."""
        return bool(self.token and (endpoint_of(request) or under_api(request.url, self.base_url)))

    def adopt(self, way: str) -> None:
        """A way learned elsewhere (another worker of the job, through Redis)."""
        if way in (HEADER, QUERY) and self.way is None:
            self.way = way
            logger.info("TMAPI_AUTH=auto: the job sends the token as the %s (learned by another worker)", NAMED[way])

    async def download_request(self, request: Request) -> Response:
        if not self.applies(request):
            return await super().download_request(request)
        if self.way is None:
            async with self.probing:
                if self.way is None:
                    return await self._probe(request)
        return await self._send(request, self.way)

    async def _probe(self, request: Request) -> Response:
        """`auto`'s first call: the header, then the query parameter once if the gateway refuses it."""
        if self.refused:
            raise auth.ApiRefused(contract.UNAUTHORIZED, "crawl stopping: the gateway refused the token both ways")
        way = HEADER
        response = await self._send(request, way, count=False)
        if response.status in REFUSED:
            self.stats.inc_value("tmapi/auth/header_refused")
            way = QUERY
            response = await self._send(request, way)
        else:
            self._count(request)
        if response.status in REFUSED:
            self.refused = True
        elif self.way is None:  # else another worker's way came first
            self.way = way
            logger.info("TMAPI_AUTH=auto: the gateway takes the token as the %s; kept for this job", NAMED[way])
            self.signals.send_catch_log(signals.auth_learned, way=way)
        return response

    async def _send(self, request: Request, way: str, count: bool = True) -> Response:
        """The call, made by a copy of `request` carrying the token (the original never does)."""
        if way == QUERY:
            signed = request.replace(url=add_or_replace_parameter(request.url, contract.TOKEN_QUERY_PARAM, self.token))
        else:  # the URL the original already made safe: Scrapy takes it as it is (`verbatim_url`)
            signed = request.replace(meta={**request.meta, "verbatim_url": True})
            signed.headers[contract.TOKEN_HEADER] = self.token
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
        """Redact the text of an exception and its causes (a timeout quotes the signed URL)."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            with suppress(AttributeError, TypeError):
                current.args = tuple(self.redactor.value(arg) for arg in current.args)
            current = current.__cause__ or current.__context__

    def _count(self, request: Request) -> None:
        if endpoint := endpoint_of(request):
            self.stats.inc_value("tmapi/paid_calls")
            self.stats.inc_value(f"tmapi/calls/{endpoint}")

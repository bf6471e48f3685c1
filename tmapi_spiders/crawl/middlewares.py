"""Downloader middlewares between our requests and TMAPI: backoff (560), envelope (910), decoding (915);
an answer is decoded, then a failed one gets its real status before the cache and retry see it."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Self

import orjson
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Headers, Response
from scrapy.utils.defer import deferred_from_coro

from tmapi_spiders import registry
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api import contract
from tmapi_spiders.api.auth import ApiRefused, secrets_of
from tmapi_spiders.api.download import UNREACHABLE, under_api
from tmapi_spiders.api.envelope import Envelope, check_page, read_envelope, redirect_envelope
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, ENVELOPE_META, META_KEY, endpoint_of
from tmapi_spiders.jobs import backends

logger = logging.getLogger(__name__)

FATAL_REASONS = {
    contract.NO_BALANCE: "tmapi_no_balance",
    contract.UNAUTHORIZED: "tmapi_auth_failed",
    contract.NO_ROUTE: "tmapi_no_route",
    403: "tmapi_auth_failed",
}


class TmapiEnvelopeMiddleware:
    """Reads every API answer once and gives a failed one its real status (retry, cache policy and
    HttpErrorMiddleware then do their jobs); a fatal one stops the crawl."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.fatal: Envelope | None = None  # the answer that stopped the crawl
        self.answered = False  # any answer at all from the API yet
        self.unreachable = 0  # connection failures in a row before the first answer
        self.refused: Envelope | None = None  # the last of them, as the line that stops the crawl
        self.unreachable_limit = registry.read(crawler.settings, "TMAPI_UNREACHABLE_AFTER")
        # A list too short to reach the limit: its end stops the crawl the same way. Not for a worker of a
        # shared job: its idle spells mean the job's queue is empty for now, not that the list has ended.
        if self.unreachable_limit and not backends.shared(crawler.settings):
            crawler.signals.connect(self._idle, signals.spider_idle)
        self.redactor = Redactor(secrets_of(crawler.settings))
        self.base_url = registry.read(crawler.settings, "TMAPI_BASE_URL").rstrip("/")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        # A retry copies meta: the last answer's envelope must not travel with it.
        request.meta.pop(ENVELOPE_META, None)
        if self.fatal and endpoint_of(request):
            raise ApiRefused(self.fatal.status, f"crawl stopping: {self.fatal.message}")

    def process_response(self, request: Request, response: Response) -> Response:
        if not endpoint_of(request):
            if self.redactor and under_api(request.url, self.base_url):
                return self._without_token(response)
            return response
        if self.redactor.found_in_bytes(response.body):
            self.stats.inc_value("tmapi/token_echoed")
            response = response.replace(body=self.redactor.bytes(response.body))
        if 300 <= response.status < 400:  # REDIRECT_ENABLED is off: a redirect is no answer
            location = response.headers.get("Location")
            envelope = redirect_envelope(response.status, location.decode("latin-1") if location else None, request.url)
        else:
            envelope = read_envelope(response.status, response.body)
        if envelope.data is not None and self.redactor.hidden_in_json(response.body):
            # The decoded strings, read again: an escaped escape (`\u0025` before `2F`) the bytes did not show.
            envelope = replace(envelope, data=self.redactor.value(envelope.data))
        if envelope.message and self.redactor.found_in(envelope.message):
            # The decoded text, read again: an escape the bytes did not show as one.
            envelope = replace(envelope, message=self.redactor.text(envelope.message))
        if envelope.ok and endpoint_of(request) == ENDPOINT_SEARCH:
            envelope = check_page(envelope, request.meta[META_KEY]["q"]["page_size"])
        self.answered = True
        if not envelope.ok:
            if envelope.status == contract.PARAM_ERROR and envelope.message in contract.TRANSIENT_422_MESSAGES:
                envelope = replace(envelope, status=contract.RETRY_LATER)  # "try again": retried
            self.stats.inc_value(f"tmapi/api_errors/{envelope.status}")
            retry_after = response.headers.get("Retry-After")  # none: an earlier answer's wait is over
            # Redacted: the retry carries it in its meta, which a shared job refuses to queue with the token.
            wait = self.redactor.text(retry_after.decode("latin-1")) if retry_after else None
            request.meta["tmapi_retry_after"] = wait
            if envelope.status != response.status:
                response = response.replace(status=envelope.status)
            if envelope.status in contract.FATAL_STATUSES:
                self._stop(envelope)
                raise ApiRefused(envelope.status, envelope.message)
        request.meta[ENVELOPE_META] = envelope
        return response

    def _without_token(self, response: Response) -> Response:
        """An answer to a signed request no crawl call made (`scrapy fetch`, `shell`, `view`), which they
        show whole: its body and every header without the token."""
        body, headers = self.redactor.bytes(response.body), Headers(self.redactor.value(dict(response.headers)))
        if body == response.body and headers == response.headers:  # every header name and value compared
            return response
        self.stats.inc_value("tmapi/token_echoed")
        return response.replace(body=body, headers=headers)

    def process_exception(self, request: Request, exception: Exception) -> None:
        """A wrong TMAPI_BASE_URL: stop after a few refused connections, not one per image."""
        if self.answered or not endpoint_of(request) or not isinstance(exception, UNREACHABLE):
            return
        self.unreachable += 1
        url = request.url.split("?", 1)[0]
        self.refused = Envelope(0, f"cannot connect to {url} ({type(exception).__name__})", None)
        if self.unreachable_limit and self.unreachable >= self.unreachable_limit:
            self._stop(self.refused)

    def _idle(self) -> None:
        if self.refused and not self.answered:
            self._stop(self.refused)

    def _stop(self, envelope: Envelope) -> None:
        if self.fatal:
            return
        reason = FATAL_REASONS.get(envelope.status, "tmapi_unreachable" if envelope.status == 0 else "tmapi_fatal")
        self.fatal = envelope
        hint = "Check TMAPI_API_TOKEN and your balance."
        if envelope.status in (contract.NO_ROUTE, 0):
            hint = "Check TMAPI_BASE_URL."
        logger.error("TMAPI refused the crawl: %s (status %s); stopping. %s", envelope.message, envelope.status, hint)
        assert self.crawler.engine is not None
        self.crawler.signals.send_catch_log(tmapi_signals.stop_starting, reason=reason)
        deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))


class TmapiHttpCompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's decoding, a decoded body over DOWNLOAD_MAXSIZE a retried 500 instead of an IgnoreRequest
    no errback sees."""

    def process_response(self, request: Request, response: Response) -> Response | Request:  # type: ignore[override]
        try:
            return super().process_response(request, response)
        except IgnoreRequest:
            if not endpoint_of(request):
                raise
            message = f"malformed answer: over DOWNLOAD_MAXSIZE once decoded ({len(response.body)} B compressed)"
            body = orjson.dumps({"code": contract.UNEXPECTED, "msg": message, "data": None})
            return Response(response.url, status=contract.UNEXPECTED, body=body, request=request)


class TmapiBackoffMiddleware:
    """Exponential backoff before each retry (RetryMiddleware decides whether), honouring `Retry-After`."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        base = registry.read(crawler.settings, "TMAPI_BACKOFF_BASE")
        cap = registry.read(crawler.settings, "TMAPI_BACKOFF_MAX")
        if base <= 0:
            raise NotConfigured
        if cap < base:
            raise ValueError(f"TMAPI_BACKOFF_MAX ({cap}) must not be below TMAPI_BACKOFF_BASE ({base})")
        return cls(base, cap)

    def delay_for(self, request: Request) -> float:
        """The usual backoff, or the server's `Retry-After` if longer, up to 4 x TMAPI_BACKOFF_MAX."""
        tries = int(request.meta.get("retry_times", 0))
        if not tries:
            return 0.0
        delay = min(self.cap, self.base * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)
        retry_after = retry_after_seconds(request.meta.get("tmapi_retry_after"))
        return max(delay, min(retry_after or 0.0, self.cap * 4))

    async def process_request(self, request: Request) -> None:
        if endpoint_of(request):
            delay = self.delay_for(request)
            if delay > 0:
                await asyncio.sleep(delay)


def retry_after_seconds(value: Any, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` (delay-seconds or an HTTP-date) asks to wait; None when it is neither."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # RFC 9110's DIGIT: "²" is a digit to str.isdigit
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: RFC 9110 dates are in GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))

"""TMAPI_CACHE: re-run a list without paying again, on Scrapy's own HTTP cache.

One switch turns on HttpCacheMiddleware (900) with a filesystem store under
TMAPI_CACHE_DIR, entries expiring after TMAPI_CACHE_TTL seconds, and `TmapiCachePolicy`,
which stores good answers only. The token never reaches the cache: it is a header put
on at 950 (after the lookup) and taken off again before the cache stores the answer,
and Scrapy's request fingerprint (the cache key) does not read headers anyway.
"""

from __future__ import annotations

import os

from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.extensions.httpcache import DummyPolicy
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.project import data_path

from tmapi_spiders import contract
from tmapi_spiders.api import endpoint_of
from tmapi_spiders.settings_util import priority_above

POLICY = "tmapi_spiders.cache.TmapiCachePolicy"


class TmapiCachePolicy(DummyPolicy):
    """Caches API answers whose status is 200, the POST conversion included.

    TmapiEnvelopeMiddleware (910) has already given every failed answer (a bad `code`
    in an HTTP 200, no `data`, malformed JSON) its real status before the cache (900)
    sees it, so status 200 here means a good answer. Freshness is the storage's
    HTTPCACHE_EXPIRATION_SECS; the API's own cache headers are ignored.
    """

    def should_cache_request(self, request: Request) -> bool:
        return endpoint_of(request) is not None and super().should_cache_request(request)

    def should_cache_response(self, response: Response, request: Request) -> bool:
        return response.status == contract.OK


def ttl_seconds(settings: BaseSettings) -> int:
    """TMAPI_CACHE_TTL as whole seconds; ValueError names the setting."""
    raw = settings.get("TMAPI_CACHE_TTL")
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError(f"TMAPI_CACHE_TTL must be a number of seconds (e.g. 86400 for a day), got {raw!r}") from None
    if value <= 0 or value != value:
        raise ValueError(f"TMAPI_CACHE_TTL must be more than 0 seconds, got {raw!r}")
    return max(1, round(value))


def cache_dir(directory: str) -> str:
    """A relative TMAPI_CACHE_DIR lives in the project's .scrapy directory, as HTTPCACHE_DIR
    would; where there is no scrapy.cfg to find it (scrapyd runs from an egg), under ./.scrapy."""
    try:
        return str(data_path(directory))
    except NotConfigured:
        return os.path.abspath(os.path.join(".scrapy", directory))


def check(settings: BaseSettings) -> None:
    """Raise ValueError for a bad cache setting (before any paid call)."""
    try:
        enabled = settings.getbool("TMAPI_CACHE")
    except ValueError:
        raise ValueError(f"TMAPI_CACHE must be true or false, got {settings.get('TMAPI_CACHE')!r}") from None
    if enabled:
        ttl_seconds(settings)
        if not str(settings.get("TMAPI_CACHE_DIR") or "").strip():
            raise ValueError("TMAPI_CACHE_DIR must name a directory when TMAPI_CACHE is true")


def configure(settings: BaseSettings) -> None:
    """Turn TMAPI_CACHE into Scrapy's HTTPCACHE_* settings (from the spider's update_settings).

    Each is set one priority above whatever set it before: `CrawlerProcess.crawl(crawler)`
    merges the process's settings back in wherever the crawler's priority is not higher
    (see feeds.configure). A bad value is left for config.check_settings to report.
    """
    try:
        check(settings)
    except ValueError:
        return
    if not settings.getbool("TMAPI_CACHE"):
        return
    wanted = {
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": cache_dir(str(settings.get("TMAPI_CACHE_DIR")).strip()),
        "HTTPCACHE_EXPIRATION_SECS": ttl_seconds(settings),
        "HTTPCACHE_POLICY": POLICY,
    }
    for name, value in wanted.items():
        settings.set(name, value, priority=priority_above(settings, name))

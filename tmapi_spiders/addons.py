"""`TmapiAddon`, the project's Scrapy add-on (the ADDONS setting): every feature on from settings.

Its `update_settings` runs when the crawler applies its settings, after the process
settings (`-s`, `-o`/`-O`) are merged. For this project's spiders only (a `tmapi_job =
True` class attribute: a user's own spider in the project keeps Scrapy's behaviour) it
completes, in order, what the user asked for, without the spider knowing the feature exists:

1. Feeds: products to the user's feeds (or a default one), failures beside them, the
   local files checked (feeds.py).
2. The answer store (TMAPI_CACHE), on Scrapy's HttpCacheMiddleware (cache.py).
3. A worker of a shared job (REDIS_URL) (distributed/__init__.py).
4. The plan's limits (TMAPI_MAX_CONCURRENCY / TMAPI_MAX_QPS) (limits/).
5. Spidermon (SPIDERMON_ENABLED) (monitoring/).

A plain value is set at Scrapy's `addon` priority, below the project's settings, a
spider's `custom_settings` and the command line, so the user's value always wins
(settings_util.set_unless_given); a dict the user gave (FEEDS, SPIDER_MIDDLEWARES) is
completed in place, the user's entries kept.
"""

from __future__ import annotations

from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from tmapi_spiders import distributed, limits, monitoring
from tmapi_spiders.crawl import feeds
from tmapi_spiders.jobs import cache
from tmapi_spiders.settings_util import set_unless_given

# What the project's spiders crawl with unless the user says otherwise, at the add-on's
# priority so that the plan's limits may change them (limits/policy.py) and the user's
# settings still win: AutoThrottle until limits are set, 16 calls in flight.
DEFAULTS: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": True,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}


class TmapiAddon:
    """Every feature of the project, switched on from settings (see the module docstring).
    Only for this project's spiders (`tmapi_job = True`): a user's own spider in the same
    project keeps Scrapy's behaviour."""

    def __init__(self, crawler: Crawler) -> None:
        self.spider_name = str(getattr(crawler.spidercls, "name", "") or "")
        self.ours = bool(getattr(crawler.spidercls, "tmapi_job", False))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        if not self.ours:
            return
        for name, value in DEFAULTS.items():
            set_unless_given(settings, name, value)
        feeds.configure(settings, self.spider_name)
        cache.configure(settings)
        distributed.configure(settings)
        limits.configure(settings)
        monitoring.configure(settings)

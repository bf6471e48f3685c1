"""`TmapiAddon` (ADDONS): for this project's spiders (`tmapi_job = True`), completes the settings after
`-s`/`-o` are merged: feeds, the answer store, a shared job's worker, the plan's limits, Spidermon. Plain
values go in at Scrapy's `addon` priority (the user's win); a dict the user gave keeps its entries."""

from __future__ import annotations

from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from tmapi_spiders import distributed, limits, monitoring
from tmapi_spiders.crawl import feeds
from tmapi_spiders.jobs import cache, quiet_log

# At the add-on's priority, so the plan's limits may change them and the user's settings win.
DEFAULTS: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": True,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}


class TmapiAddon:
    """Every feature of the project, switched on from settings; a user's own spider keeps Scrapy's behaviour."""

    def __init__(self, crawler: Crawler) -> None:
        self.spider_name = str(getattr(crawler.spidercls, "name", "") or "")
        self.ours = bool(getattr(crawler.spidercls, "tmapi_job", False))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        if not self.ours:
            return
        settings.setdict(DEFAULTS, priority="addon")
        feeds.configure(settings, self.spider_name)
        cache.configure(settings)
        distributed.configure(settings)
        limits.configure(settings)
        monitoring.configure(settings)
        quiet_log.skip_dropped_records()  # not a setting: Scrapy's handler is in place by now

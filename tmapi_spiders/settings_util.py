"""Small helpers for setting Scrapy settings from the project's own code."""

from __future__ import annotations

from scrapy.settings import BaseSettings


def priority_above(settings: BaseSettings, name: str) -> int:
    """One above the setting's priority and the project's: `CrawlerProcess.crawl(crawler)`
    merges the process settings back in wherever the crawler's priority is not higher."""
    return max(settings.getpriority(name) or 0, 20) + 1

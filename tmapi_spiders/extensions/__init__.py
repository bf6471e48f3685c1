"""Operators' extensions: log redaction (every spider), progress, summary and report (TMAPI jobs only)."""

from __future__ import annotations

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector


def for_tmapi_job(crawler: Crawler) -> bool:
    """Whether the crawl is one of ours (a spider class with `tmapi_job = True`)."""
    return bool(getattr(crawler.spidercls, "tmapi_job", False))


def stat(stats: StatsCollector, name: str) -> int:
    """A counter stat, 0 when unset."""
    return int(stats.get_value(name, 0) or 0)

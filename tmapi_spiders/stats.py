"""Scrapy's in-memory stats collector, without a Python hook on every attribute.

Since Scrapy 2.14, StatsCollector defines `__getattribute__` to wrap its methods in a
check that warns about the deprecated `spider` argument. Every `stats.inc_value(...)`
then runs two extra Python calls, and the crawl makes several per record (CoreStats,
the validation pipeline): about 5 % of the crawl's CPU. Our code never passes `spider`;
a third-party component that does still works, it only misses the deprecation warning.
"""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector


class MemoryStatsCollectorNoShim(MemoryStatsCollector):
    # object's own attribute lookup, in C: CPython uses it directly when a class sets it back.
    __getattribute__ = object.__getattribute__

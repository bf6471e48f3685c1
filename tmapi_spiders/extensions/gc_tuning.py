"""Garbage-collector settings for a long crawl.

CPython's cyclic collector runs a young-generation pass every 700 new container objects
and, every so often, a full pass over everything alive. A crawl allocates several
thousand short-lived objects per page (the parsed JSON, items, Twisted and asyncio
plumbing) on top of ~100,000 long-lived ones that importing Scrapy, Twisted and
pydantic left behind. Measured on the CPU benchmark, the collector then took about a
quarter of the crawl's CPU time, most of it full passes re-walking those start-up
objects, which never die.

So, once the engine has started: one collection, `gc.freeze()` (start-up objects are
never walked again) and a larger young-generation threshold (`TMAPI_GC_THRESHOLD`).
Reference counting still frees almost everything at once; only garbage cycles wait a
little longer. Python's own settings come back when the engine stops, so a process
that runs other work after a crawl gets what it had.
"""

from __future__ import annotations

import gc
import logging
from typing import Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

logger = logging.getLogger(__name__)

# Crawls in one process share the collector: the first to start saves Python's settings,
# the last to stop puts them back.
_tuned_by = 0
_saved_threshold: tuple[int, ...] = ()
_frozen = False


class GcTuning:
    def __init__(self, threshold: int, freeze: bool) -> None:
        self.threshold = threshold
        self.freeze = freeze

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        threshold = crawler.settings.getint("TMAPI_GC_THRESHOLD")
        freeze = crawler.settings.getbool("TMAPI_GC_FREEZE")
        if not threshold and not freeze:
            raise NotConfigured
        o = cls(threshold, freeze)
        crawler.signals.connect(o.engine_started, signal=signals.engine_started)
        crawler.signals.connect(o.engine_stopped, signal=signals.engine_stopped)
        return o

    def engine_started(self) -> None:
        global _tuned_by, _saved_threshold, _frozen
        if _tuned_by == 0:
            _saved_threshold = gc.get_threshold()
        _tuned_by += 1
        if self.freeze:
            gc.collect()
            gc.freeze()
            _frozen = True
        if self.threshold:
            gc.set_threshold(self.threshold, *_saved_threshold[1:])
        logger.debug(
            "Garbage collector: %d start-up objects frozen, young-generation threshold %d (Python's: %d)",
            gc.get_freeze_count(),
            gc.get_threshold()[0],
            _saved_threshold[0],
        )

    def engine_stopped(self) -> None:
        global _tuned_by, _frozen
        _tuned_by -= 1
        if _tuned_by == 0:
            gc.set_threshold(*_saved_threshold)
            if _frozen:
                gc.unfreeze()
                _frozen = False

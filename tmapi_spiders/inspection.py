"""The project's only reads of Scrapy and Twisted attributes that are not public API.

Why they exist (each has no public equivalent in Scrapy 2.19):

- `ExecutionEngine._slot.nextcall.schedule()`: asks the engine for the scheduler's next
  requests now, not at its 5-second heartbeat, when another worker queued work.
- `Scraper.slot` and `Scraper.start_itemproc_async()`: a request the job refuses to queue
  gets a failure record through the same pipelines and feeds as every other record.
- `HTTP11DownloadHandler._pool.retryAutomatically`: Twisted's pool re-sends a failed
  idempotent request once, unseen by Scrapy: a paid call nobody counts.
- The receivers of `item_scraped` (PyDispatcher's getAllReceivers for the crawler's
  `signals.sender`): tmapi_spiders/itemproc.py takes Scrapy's CoreStats and FeedExporter
  off the signal and calls them itself, which is right only if no receiver of theirs is
  left on it (else each record is counted or exported twice).

A rename in a later Scrapy or Twisted must not fail silently, so each read is declared as
a `Need` and checked when the spider opens (`InspectionCheck`): a missing attribute or an
unexpected shape stops the crawl before its first paid call, with finish reason
`tmapi_scrapy_unsupported` (exit 1) and one log line naming the attribute.
tests/e2e/test_inspection.py pins the verdict.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import Deferred

logger = logging.getLogger(__name__)

UNSUPPORTED_REASON = "tmapi_scrapy_unsupported"
SUPPORTED = "Scrapy >=2.19,<2.20 with Twisted >=26.10,<27 (pyproject.toml)"  # tests/e2e/test_inspection.py pins it
_MISSING = object()


@dataclass(frozen=True)
class Need:
    """One attribute path read from a Scrapy or Twisted object, and the shape it must have."""

    path: tuple[str, ...]
    shape: str  # what the value must be, in words, for the error
    fits: Callable[[Any], bool]
    why: str  # what breaks without it

    def __str__(self) -> str:
        return ".".join(self.path)


ENGINE_NEEDS: tuple[Need, ...] = (
    Need(("_slot", "nextcall", "schedule"), "a method", callable, "queued work would wait for the engine's heartbeat"),
    Need(("scraper", "slot"), "the scraper's open slot", lambda value: value is not None, "no failure records"),
    Need(
        ("scraper", "start_itemproc_async"),
        "a coroutine function",
        inspect.iscoroutinefunction,
        "a refused request's failure record could not be written",
    ),
)
POOL_NEEDS: tuple[Need, ...] = (
    Need(
        ("_pool", "retryAutomatically"),
        "a bool",
        lambda value: isinstance(value, bool),
        "Twisted would re-send a failed paid call unseen by the cap and tmapi/paid_calls",
    ),
)

# Problems found before the spider opened (the download handler is built with the engine).
_early: weakref.WeakKeyDictionary[Crawler, list[str]] = weakref.WeakKeyDictionary()


def _read(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        obj = getattr(obj, name, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return obj


def problems(obj: Any, needs: tuple[Need, ...]) -> list[str]:
    """The verdict on `obj`: one line per need it does not meet (empty: all met)."""
    owner = type(obj).__name__
    found = []
    for need in needs:
        value = _read(obj, need.path)
        if value is _MISSING:
            found.append(f"{owner}.{need} is missing ({need.why})")
        elif not need.fits(value):
            found.append(f"{owner}.{need} is not {need.shape} but {type(value).__name__} ({need.why})")
    return found


def _message(found: list[str]) -> str:
    return f"This Scrapy cannot run tmapi-spiders safely: {'; '.join(found)}. Supported: {SUPPORTED}"


# the reads themselves


def wake(engine: Any) -> None:
    """Ask the engine for the scheduler's next requests now."""
    slot = engine._slot
    if slot is not None:
        slot.nextcall.schedule()


def start_itemproc(engine: Any, item: Any) -> Deferred[None] | None:
    """Send `item` through the pipelines and feeds as a record with no response (None: the
    scraper is not open, so nothing can be written)."""
    if engine is None or engine.scraper.slot is None:
        return None
    return deferred_from_coro(engine.scraper.start_itemproc_async(item, response=None))


def stop_automatic_retries(handler: Any, crawler: Crawler) -> None:
    """Turn off Twisted's unseen re-send of a failed request on `handler`'s connection pool;
    a handler without one is reported when the spider opens (InspectionCheck)."""
    found = problems(handler, POOL_NEEDS)
    if found:
        _early.setdefault(crawler, []).extend(found)
        return
    handler._pool.retryAutomatically = False


def automatic_retries(handler: Any) -> bool:
    """Whether `handler`'s pool would re-send a failed request by itself."""
    return bool(handler._pool.retryAutomatically)


def item_scraped_receivers(crawler: Crawler) -> list[Any]:
    """Every live receiver of the crawler's `item_scraped` signal."""
    from pydispatch.dispatcher import getAllReceivers, liveReceivers

    return list(liveReceivers(getAllReceivers(crawler.signals.sender, signals.item_scraped)))


def called_twice(crawler: Crawler) -> list[str]:
    """One line per receiver still on `item_scraped` of an extension ItemProcessor calls itself."""
    from tmapi_spiders.itemproc import called_directly

    direct = {id(extension): extension for extension in called_directly(crawler)}
    found = []
    for receiver in item_scraped_receivers(crawler):
        owner = getattr(receiver, "__self__", None)
        if id(owner) in direct and direct[id(owner)] is owner:
            found.append(
                f"{type(owner).__name__}.{getattr(receiver, '__name__', receiver)} still receives item_scraped"
                " although ITEM_PROCESSOR calls the extension itself (every record would be counted or exported"
                " twice; set ITEM_PROCESSOR = 'scrapy.pipelines.ItemPipelineManager')"
            )
    return found


class InspectionCheck:
    """Stops the crawl at open when a read above would fail or mean something else.

    The engine's reads matter to distributed workers only (REDIS_URL); the pool's to
    every crawl that uses the project's download handler, the item_scraped check to every
    crawl whose ITEM_PROCESSOR is tmapi_spiders.itemproc.ItemProcessor."""

    engine_needs: tuple[Need, ...] = ENGINE_NEEDS

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        check = cls(crawler)
        crawler.signals.connect(check.spider_opened, signal=signals.spider_opened)
        return check

    def spider_opened(self) -> None:
        from tmapi_spiders import backends

        found = list(_early.pop(self.crawler, []))
        found += called_twice(self.crawler)
        if backends.shared(self.crawler.settings):
            found += problems(self.crawler.engine, self.engine_needs)
        if found:
            logger.error(_message(found))
            raise CloseSpider(UNSUPPORTED_REASON)

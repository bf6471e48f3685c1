"""`item_scraped` for Scrapy's own receivers without an asyncio task each, per item.

Scrapy sends `item_scraped` with `send_catch_log_async`, which runs every receiver as its
own asyncio task (`asyncio.gather`) for every item. A crawl connects two stock ones,
CoreStats (`item_scraped_count`) and FeedExporter (writes the record), and those two
tasks were a quarter of the crawl's instructions per page (benchmarks/instructions.py:
14.18 M -> 10.76 M) and 30 % of its CPU time. Both receivers are synchronous methods, so
ItemProcessor calls them as an item leaves the pipeline chain, just before Scrapy sends
the signal for it, and they stay off the signal. The signal is still sent: any other
receiver, a user's extension say, gets every item as before.

What differs from Scrapy's own path, both documented in README.md ("Performance"):
- the two run before every receiver of the signal, so a receiver that changes an item
  no longer changes what the feed wrote (change items in a pipeline);
- an item counts as scraped whenever ItemProcessor.process_item_async lets it through,
  so code that runs the pipelines itself (`scrapy parse --pipelines`, which this
  project's `parse` refuses anyway) would count and export it.

CoreStats and FeedExporter below decide for themselves, once, whether ItemProcessor will
call them (it is ITEM_PROCESSOR, and their receiver is synchronous); otherwise they stay
on the signal like Scrapy's. ItemProcessor calls exactly the ones that decided so.

What this leans on in Scrapy: each of the two listens to `item_scraped` through its
`item_scraped` method and nothing else. If a later Scrapy connected another receiver
(or a renamed one), disconnecting `item_scraped` would leave it on the signal and every
record would be counted or exported twice; tmapi_spiders/inspection.py checks when the
spider opens that no receiver of either extension is left on the signal, and stops the
crawl otherwise (tests/e2e/test_inspection.py). Kept because it saves ~20 % of the crawl's
instructions per page (benchmarks/internals.py, issue 13).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import scrapy.extensions.corestats
import scrapy.extensions.feedexport
from scrapy import Spider, signals
from scrapy.extensions import corestats, feedexport
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.misc import load_object

from tmapi_spiders.items import CheckedProductItem
from tmapi_spiders.pipelines import only_ours

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

# The logger send_catch_log writes a failing receiver to: filters on it keep working.
signal_logger = logging.getLogger("scrapy.utils.signal")


class _ScrapedByItemProcessor:
    """An extension whose `item_scraped` ItemProcessor may call instead of the signal."""

    item_scraped: Callable[[Any, Spider], None]
    called_by_item_processor = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        extension = super().from_crawler(crawler)  # type: ignore[misc]
        processor = load_object(crawler.settings["ITEM_PROCESSOR"])
        if (
            isinstance(processor, type)
            and issubclass(processor, ItemProcessor)
            # A later Scrapy whose receiver awaits something keeps it on the signal.
            and not inspect.iscoroutinefunction(extension.item_scraped)
        ):
            crawler.signals.disconnect(extension.item_scraped, signal=signals.item_scraped)
            extension.called_by_item_processor = True
        return extension


class CoreStats(_ScrapedByItemProcessor, scrapy.extensions.corestats.CoreStats):
    """Scrapy's CoreStats; `item_scraped_count` is counted by ItemProcessor's call."""


class FeedExporter(_ScrapedByItemProcessor, scrapy.extensions.feedexport.FeedExporter):
    """Scrapy's FeedExporter; each record is written by ItemProcessor's call."""


def called_directly(crawler: Crawler) -> list[_ScrapedByItemProcessor]:
    """The crawler's extensions that ItemProcessor calls instead of the signal."""
    try:  # a crawl builds its extensions before its engine, so before ItemProcessor
        found = [crawler.get_extension(cls) for cls in (corestats.CoreStats, feedexport.FeedExporter)]
    except RuntimeError:  # "only after the extension manager has been created": a crawler that never crawled
        return []
    return [ext for ext in found if isinstance(ext, _ScrapedByItemProcessor) and ext.called_by_item_processor]


class ItemProcessor(ItemPipelineManager):
    """Scrapy's pipeline manager (ITEM_PROCESSOR) that hands each item it lets through
    to the extensions above, as the `item_scraped` signal would have."""

    def __init__(self, *middlewares: Any, crawler: Crawler | None = None) -> None:
        super().__init__(*middlewares, crawler=crawler)
        # In the extensions' order, the order Scrapy connected them to the signal in.
        self.receivers = [ext.item_scraped for ext in called_directly(crawler)] if crawler is not None else []
        # The spider normalised, validated and counted a CheckedProductItem with its page, so
        # our two pipelines hand it on untouched: with no other pipeline, calling them costs
        # Scrapy's chain (a name built and an awaitable check per pipeline) and nothing else.
        self.skips_checked = crawler is not None and only_ours(crawler.settings)

    async def process_item_async(self, item: Any) -> Any:
        if type(item) is not CheckedProductItem or not self.skips_checked:
            item = await super().process_item_async(item)
        spider = self.crawler.spider if self.crawler is not None else None
        for receiver in self.receivers:
            try:
                receiver(item, spider)
            except Exception:  # as send_catch_log does: log it, go on with the next
                signal_logger.error(
                    "Error caught on signal handler: %(receiver)s",
                    {"receiver": receiver},
                    exc_info=True,
                    extra={"spider": spider},
                )
        return item

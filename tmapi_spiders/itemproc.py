"""`item_scraped` for Scrapy's own receivers without an asyncio task each, per item.

Scrapy sends `item_scraped` with `send_catch_log_async`, which runs every receiver as its
own asyncio task (`asyncio.gather`) for every item. A crawl connects two stock ones,
CoreStats (`item_scraped_count`) and FeedExporter (writes the record), and those two
tasks were a quarter of the crawl's instructions per page (benchmarks/instructions.py:
14.18 M -> 10.73 M). Both receivers are plain functions, so ItemProcessor calls them
where an item leaves the pipeline chain, the very point at which Scrapy sends the signal
for it, and they stay off the signal. The signal is still sent: any other receiver, a
user's extension say, gets every item as before.

The three are one unit, keyed on ITEM_PROCESSOR: with Scrapy's own item processor
there, CoreStats and FeedExporter below connect to the signal like Scrapy's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import scrapy.extensions.corestats
import scrapy.extensions.feedexport
from scrapy import Spider, signals
from scrapy.pipelines import ItemPipelineManager
from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


def _called_directly(settings: BaseSettings) -> bool:
    processor = load_object(settings["ITEM_PROCESSOR"])
    return isinstance(processor, type) and issubclass(processor, ItemProcessor)


class _ScrapedByItemProcessor:
    """An extension whose `item_scraped` ItemProcessor calls, when it is the item processor."""

    item_scraped: Callable[[Any, Spider], None]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        extension = super().from_crawler(crawler)  # type: ignore[misc]
        if _called_directly(crawler.settings):
            crawler.signals.disconnect(extension.item_scraped, signal=signals.item_scraped)
        return extension


class CoreStats(_ScrapedByItemProcessor, scrapy.extensions.corestats.CoreStats):
    """Scrapy's CoreStats; `item_scraped_count` is counted by ItemProcessor's call."""


class FeedExporter(_ScrapedByItemProcessor, scrapy.extensions.feedexport.FeedExporter):
    """Scrapy's FeedExporter; each record is written by ItemProcessor's call."""


class ItemProcessor(ItemPipelineManager):
    """Scrapy's pipeline manager (ITEM_PROCESSOR) that hands each item it lets through
    to the extensions above, as the `item_scraped` signal would have."""

    def __init__(self, *middlewares: Any, crawler: Crawler | None = None) -> None:
        super().__init__(*middlewares, crawler=crawler)
        # A crawl builds its extensions before its engine, so before us; a bare crawler has none.
        manager = getattr(crawler, "extensions", None)
        extensions = manager.middlewares if manager is not None else ()
        # In the extensions' order, the order Scrapy connected them to the signal in.
        self._receivers = [ext.item_scraped for ext in extensions if isinstance(ext, _ScrapedByItemProcessor)]

    async def process_item_async(self, item: Any) -> Any:
        item = await super().process_item_async(item)
        for receiver in self._receivers:
            try:
                receiver(item, self._spider)
            except Exception:  # what send_catch_log does: log it, go on with the next
                logger.error(
                    "Error caught on signal handler: %(receiver)s",
                    {"receiver": receiver},
                    exc_info=True,
                    extra={"spider": self._spider},
                )
        return item

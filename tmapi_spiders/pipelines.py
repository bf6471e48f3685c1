"""Item pipelines: normalise, then validate, each product record.

Both are coroutines although neither waits for anything: Scrapy awaits a coroutine as it
is, where a plain return value costs it an `inspect.isawaitable` ABC check and a wrapper
coroutine per pipeline per record (1 % of the crawl's instructions, benchmarks/RESULTS.md).

The spider validates a page's records together (one pydantic call, one depth count of the
body), normalises them itself (`normalise`, the same code) and counts them in `tmapi/items`
once per page, then emits them as CheckedProductItem: neither pipeline has anything left to
do for those, so both let them through untouched (and itemproc.ItemProcessor skips the two
altogether). The spider does so only when nothing but NormalisationPipeline can change a
record on its way to ValidationPipeline (`checks_pages_in_spider`). A page that fails that
check comes as plain ProductItems, normalised and checked here one by one, so the drop
reasons and counts are the same.

Failure records pass through untouched. A dropped record is counted by reason under
`tmapi/items_dropped/<reason>` and each reason is logged once, not once per item.
Duplicates of an item across an image's pages are removed earlier, in the spider's
pagination state, because that state follows the image from worker to worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from tmapi_spiders.items import CheckedProductItem, ProductItem

logger = logging.getLogger(__name__)


class ValidationPipeline:
    """Drops product records that miss a required field or carry a wrong type."""

    def __init__(self, crawler: Crawler) -> None:
        assert crawler.stats is not None
        self.stats = crawler.stats
        # Looked up once: Scrapy's stats classes run a Python __getattribute__ (a deprecation
        # check) on every attribute access.
        self.inc_value = crawler.stats.inc_value
        self.logged: set[str] = set()
        # The schema (pydantic, ~70 ms to import and build) is loaded at the first record,
        # not at start: it is not needed before the first answer (time to the first call).
        self.invalid_reason: Callable[[dict[str, Any]], str | None] = self._load_schema
        self.trusts_checked = checks_pages_in_spider(crawler.settings)

    def _load_schema(self, record: dict[str, Any]) -> str | None:
        from tmapi_spiders.schema import invalid_reason

        self.invalid_reason = invalid_reason
        return invalid_reason(record)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_item(self, item: Any) -> Any:
        if type(item) is CheckedProductItem and self.trusts_checked:
            return item  # checked and counted with its page, in the spider
        if not isinstance(item, ProductItem):
            return item
        reason = self.invalid_reason(item)
        if reason is None:
            self.inc_value("tmapi/items")
            return item
        self.inc_value(f"tmapi/items_dropped/{reason}")
        self.inc_value("tmapi/items_dropped")
        if reason not in self.logged:
            self.logged.add(reason)
            logger.warning(
                "Dropping product records with %s (first: item_id %r of %s); counted in stats, logged once",
                reason.replace("_", " ", 1),
                item.get("item_id"),
                item.get("query_image_url"),
            )
        raise DropItem(reason)


class NormalisationPipeline:
    """Makes URLs absolute and trims titles; prices keep the API's exact strings."""

    URL_FIELDS = ("product_url", "img")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    async def process_item(self, item: Any) -> Any:
        # A CheckedProductItem was normalised with its page, in the spider.
        if isinstance(item, ProductItem) and type(item) is not CheckedProductItem:
            normalise(item)
        return item


def normalise(record: dict[str, Any]) -> None:
    """NormalisationPipeline's work on one record, in place (the spider does it for a checked
    page): idempotent, so a record normalised twice is the same as once."""
    for name in NormalisationPipeline.URL_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.startswith("//"):
            record[name] = "https:" + value
    for name in ("title", "title_origin"):
        value = record.get(name)
        if isinstance(value, str):
            record[name] = " ".join(value.split())
    shop = record.get("shop_info")
    if isinstance(shop, dict):
        url = shop.get("shop_url")
        if isinstance(url, str) and url.startswith("//"):
            shop["shop_url"] = "https:" + url


def checks_pages_in_spider(settings: BaseSettings) -> bool:
    """True when a record the spider validated with its page can reach ValidationPipeline
    only through NormalisationPipeline, unchanged otherwise: then the spider's check
    (scheme-relative URLs allowed, as NormalisationPipeline makes them absolute) is the
    same as this pipeline's, and neither side needs the other's work done again.

    False when ValidationPipeline is off, when any other pipeline (a user's own) runs
    before it or NormalisationPipeline does not, or when a spider middleware from outside
    Scrapy and this project could change records after the spider: then the spider does
    not check pages and every record is checked here, as before."""
    chain = pipeline_chain(settings)
    validating = [i for i, cls in enumerate(chain) if isinstance(cls, type) and issubclass(cls, ValidationPipeline)]
    if not validating or chain[: validating[0]] != [NormalisationPipeline]:
        return False
    for path, order in settings.getwithbase("SPIDER_MIDDLEWARES").items():
        if order is None:
            continue
        middleware = load_object(path)
        changes_output = hasattr(middleware, "process_spider_output") or hasattr(
            middleware, "process_spider_output_async"
        )
        if changes_output and not middleware.__module__.startswith(("scrapy.", "tmapi_spiders.")):
            return False
    return True


def pipeline_chain(settings: BaseSettings) -> list[Any]:
    """ITEM_PIPELINES' classes (or objects) in the order Scrapy runs them."""
    pipelines = [
        (order, load_object(path))
        for path, order in settings.getwithbase("ITEM_PIPELINES").items()
        if order is not None
    ]
    return [cls for _, cls in sorted(pipelines, key=lambda entry: entry[0])]


def only_ours(settings: BaseSettings) -> bool:
    """True when the pipelines are exactly NormalisationPipeline then ValidationPipeline (not
    subclasses, nothing else): then a CheckedProductItem leaves both exactly as it came, and
    itemproc.ItemProcessor need not call them for it."""
    return pipeline_chain(settings) == [NormalisationPipeline, ValidationPipeline] and checks_pages_in_spider(settings)

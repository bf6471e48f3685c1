"""Item pipelines: normalise, then validate, each product record.

Both are coroutines although neither waits for anything: Scrapy awaits a coroutine as it
is, where a plain return value costs it an `inspect.isawaitable` ABC check and a wrapper
coroutine per pipeline per record.

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

from tmapi_spiders.items import ProductItem

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

    def _load_schema(self, record: dict[str, Any]) -> str | None:
        from tmapi_spiders.schema import invalid_reason

        self.invalid_reason = invalid_reason
        return invalid_reason(record)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_item(self, item: Any) -> Any:
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
        if isinstance(item, ProductItem):
            normalise(item)
        return item


def normalise(record: dict[str, Any]) -> None:
    """NormalisationPipeline's work on one record, in place: idempotent, so a record
    normalised twice is the same as once."""
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

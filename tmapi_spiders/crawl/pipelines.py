"""The item pipeline that checks each product record (the spider has normalised it); failure records pass
untouched. A coroutine, although it never waits: Scrapy takes one more cheaply than a plain return."""

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
        self.inc_value = crawler.stats.inc_value
        self.logged: set[str] = set()
        # pydantic is slow to import: loaded at the first record.
        self.invalid_reason: Callable[[dict[str, Any]], str | None] = self._load_schema

    def _load_schema(self, record: dict[str, Any]) -> str | None:
        from tmapi_spiders.api.schema import invalid_reason

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

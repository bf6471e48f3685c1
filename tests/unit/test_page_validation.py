"""Per-record validation on Scrapy's item path: a page's records leave the spider as plain
ProductItems the spider normalised, and ValidationPipeline checks and counts
each one (drop reasons in stats)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from scrapy.exceptions import DropItem
from scrapy.http import TextResponse
from scrapy.utils.misc import load_object
from scrapy.utils.test import get_crawler

import tmapi_spiders.settings as project_settings
from tmapi_spiders.api.schema import MAX_DEPTH
from tmapi_spiders.crawl.seeds import Seed
from tmapi_spiders.items import ProductItem
from tmapi_spiders.spiders.image_search import ImageSearchSpider, normalise

IMAGE = "https://cbu01.alicdn.com/img/ibank/page-check.jpg"
GOOD: dict[str, Any] = {
    "item_id": 1,
    "product_url": "https://detail.1688.com/offer/1.html",
    "title": "Phone Case",
    "img": "https://cbu01.alicdn.com/O1CN01.jpg",
    "price": "19.00",
    "price_info": {"drop_ship_price": "19.00", "origin_price": None},
    "quantity_prices": [{"begin_num": "1", "end_num": "", "price": "19.00"}],
    "shop_info": {"member_id": "b2b-1", "is_factory": True, "location": ["Guangdong"]},
}


def nest(levels: int, inner: Any) -> Any:
    for n in range(levels):
        inner = [inner] if n % 2 else {"[": inner, "k]": "]]"}
    return inner


def normalised(record: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(record)
    normalise(record)
    return record


def crawler_settings(**changes: Any) -> dict[str, Any]:
    values = {name: getattr(project_settings, name) for name in dir(project_settings) if name.isupper()}
    values.update(TMAPI_API_TOKEN="page-token", TMAPI_BASE_URL="http://127.0.0.1:9", LOG_LEVEL="ERROR")
    values.update(changes)
    return values


class UserPipeline:
    """A user's own pipeline: it may change a record in any way."""

    def process_item(self, item: Any) -> Any:
        item["price"] = "free"
        return item


PIPELINES = project_settings.ITEM_PIPELINES


def page_through(changes: dict[str, Any], items: list[dict[str, Any]]) -> tuple[list[Any], list[Any], Any]:
    """One page through the spider's callback and the configured pipelines in their order."""
    crawler = get_crawler(ImageSearchSpider, crawler_settings(**changes))
    spider = ImageSearchSpider.from_crawler(crawler, urls=IMAGE)
    crawler.spider = spider
    request = spider.first_request(Seed(IMAGE, 1), spider.job.query, 0)
    body = json.dumps({"code": 200, "msg": "success", "data": {"total_count": len(items), "items": items}})
    response = TextResponse(request.url, body=body.encode(), request=request, encoding="utf-8")
    products = [o for o in spider.parse_search(response) if isinstance(o, ProductItem)]
    chain = sorted(
        ((order, path) for path, order in crawler.settings.getwithbase("ITEM_PIPELINES").items() if order is not None),
    )
    pipelines = []
    for _, path in chain:
        cls = load_object(path)
        pipelines.append(cls.from_crawler(crawler) if hasattr(cls, "from_crawler") else cls())
    kept = []
    for product in products:
        item: Any = product
        try:
            for pipeline in pipelines:
                result = pipeline.process_item(item)
                item = asyncio.run(result) if asyncio.iscoroutine(result) else result
        except DropItem:
            continue
        kept.append(item)
    return products, kept, crawler.stats


def test_a_page_leaves_the_spider_as_plain_records_normalised_then_counted_by_the_pipeline() -> None:
    messy = {**GOOD, "item_id": 2, "img": "//cbu01.alicdn.com/b.jpg", "title": "  Phone \n Case "}
    messy["shop_info"] = {"shop_url": "//shop.1688.com/x"}
    products, kept, stats = page_through({}, [GOOD, messy])
    assert [type(p) for p in products] == [ProductItem, ProductItem]
    assert [k["img"] for k in kept] == [GOOD["img"], "https://cbu01.alicdn.com/b.jpg"]
    assert kept[1]["title"] == "Phone Case" and kept[1]["shop_info"]["shop_url"] == "https://shop.1688.com/x"
    assert stats.get_value("tmapi/items") == 2 and stats.get_value("tmapi/items_dropped") is None
    for record in kept:  # normalising is idempotent
        assert normalised(dict(record)) == record


def test_each_bad_record_is_dropped_with_its_own_reason() -> None:
    page = [GOOD, {**GOOD, "item_id": 2, "price": 19}, {**GOOD, "item_id": 3, "x": nest(MAX_DEPTH + 1, 1)}]
    products, kept, stats = page_through({}, page)
    assert [type(p) for p in products] == [ProductItem] * 3
    assert [k["item_id"] for k in kept] == [1]
    assert stats.get_value("tmapi/items") == 1
    assert stats.get_value("tmapi/items_dropped/invalid_price") == 1
    assert stats.get_value("tmapi/items_dropped/invalid_nesting") == 1
    assert stats.get_value("tmapi/items_dropped") == 2


def test_a_user_pipeline_before_validation_gets_its_records_validated() -> None:
    """UserPipeline breaks every price between the spider and ValidationPipeline: all dropped."""
    pipelines = {**PIPELINES, f"{__name__}.UserPipeline": 150}
    _, kept, stats = page_through({"ITEM_PIPELINES": pipelines}, [GOOD])
    assert kept == [] and stats.get_value("tmapi/items_dropped/invalid_price") == 1

"""Per-page validation (issue 17): the spider's one look at a page says what the pipeline's
look at each record would, and ValidationPipeline trusts it only when nothing else can
change a record on its way."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scrapy.exceptions import DropItem
from scrapy.http import TextResponse
from scrapy.utils.misc import load_object
from scrapy.utils.test import get_crawler

import tmapi_spiders.settings as project_settings
from tests import strategies
from tmapi_spiders.items import CheckedProductItem, ProductItem
from tmapi_spiders.pipelines import NormalisationPipeline, ValidationPipeline, checks_pages_in_spider
from tmapi_spiders.schema import ITEMS_LEVEL, MAX_DEPTH, invalid_reason, json_depth, page_is_valid
from tmapi_spiders.seeds import Seed
from tmapi_spiders.spiders.image_search import ImageSearchSpider

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
# Text that trips a bracket count which does not strip strings: brackets, quotes and backslashes.
TRICKY = ["[", "]", "{", "}", '"', "\\", '\\"', '"]', "[[[[", "]]]]}}", '\\\\"', "\\u005b", "a\\", "x[redacted]"]
json_values = strategies.json_values([*TRICKY, "19.00", "//cbu01.alicdn.com/x.jpg", ""], text_size=12, max_leaves=20)
texts = st.text(alphabet=st.sampled_from([*'[]{}"\\/ au', "\n", "é", "\ud7ff"]), max_size=12)


def depth_by_walking(value: Any) -> int:
    """The reference: the deepest container's level (the top value is level 1)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def nest(levels: int, inner: Any) -> Any:
    for n in range(levels):
        inner = [inner] if n % 2 else {"[": inner, "k]": "]]"}
    return inner


@settings(max_examples=500, deadline=None)
@given(
    value=json_values | st.recursive(texts, lambda c: st.lists(c, max_size=3) | st.dictionaries(texts, c, max_size=3)),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    limit=st.integers(0, 12),
)
@example(value=['"]]]]', ["\\", "[[", {"\\\\": "\\\\\\"}]], ascii_only=False, indent=None, limit=10)
@example(value={"a": "\\", "b": [["]"]]}, ascii_only=True, indent=None, limit=10)
@example(value={"[": "", "": "]", "x": ["[[", "", "]]"]}, ascii_only=True, indent=None, limit=10)
def test_json_depth_counts_only_brackets_outside_strings(value: Any, ascii_only: bool, indent: int, limit: int) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode("utf-8", errors="surrogatepass")
    assert json_depth(body, limit) == min(depth_by_walking(value), limit + 1)


def test_json_depth_stops_past_the_limit() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    assert json_depth(body, MAX_DEPTH) == MAX_DEPTH + 1
    assert json_depth(b'{"a":"[[[[[[","b":[{}]}', 2) == 3
    assert json_depth(b'{"a":"[[[[[[","b":[{}]}', 3) == 3


def normalised(record: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(NormalisationPipeline().process_item(ProductItem(copy.deepcopy(record))))


@st.composite
def records(draw: st.DrawFn) -> Any:
    """A good record with some fields changed: bad, scheme-relative, deep, or any JSON."""
    record = copy.deepcopy(GOOD)
    record["item_id"] = draw(st.integers(1, 10**6))
    for name in draw(st.lists(st.sampled_from([*GOOD, "extra", "shop_info.is_factory"]), max_size=3, unique=True)):
        found = strategies.field_holder(record, name)
        if found is None:
            continue
        holder, target = found
        action = draw(st.sampled_from(["delete", "value", "relative", "deep"]))
        if action == "delete":
            holder.pop(target, None)
        elif action == "value":
            holder[target] = draw(json_values)
        elif action == "relative":
            holder[target] = draw(st.sampled_from(["//cbu01.alicdn.com/a.jpg", "//", "///x", "// x", "http://a b"]))
        else:
            holder[target] = nest(draw(st.integers(MAX_DEPTH - 3, MAX_DEPTH + 2)), draw(st.sampled_from(["]", 1])))
    return record


@settings(max_examples=300, deadline=None)
@given(page=st.lists(records(), min_size=1, max_size=6))
@example(page=[{**GOOD, "extra": nest(MAX_DEPTH - 1, "]")}])  # MAX_DEPTH levels: kept
@example(page=[{**GOOD, "extra": nest(MAX_DEPTH, "]")}])  # one more: dropped
def test_a_valid_page_is_exactly_a_page_of_records_the_pipeline_would_keep(page: list[dict[str, Any]]) -> None:
    body = json.dumps({"code": 200, "msg": "success", "data": {"total_count": 99, "items": page}}).encode()
    each_kept = all(invalid_reason(normalised(record)) is None for record in page)
    assert page_is_valid(page, body) == each_kept


def test_depth_bound_is_counted_below_items() -> None:
    deepest_kept = {**GOOD, "extra": nest(MAX_DEPTH - 1, 1)}  # the record is level 1: MAX_DEPTH in all
    body = json.dumps({"code": 200, "data": {"items": [deepest_kept]}}).encode()
    assert json_depth(body, 99) == MAX_DEPTH + ITEMS_LEVEL
    assert page_is_valid([deepest_kept], body)
    # Deep elsewhere in the body: the page is checked record by record (False is never wrong).
    body = json.dumps({"code": 200, "data": {"items": [GOOD], "x": nest(MAX_DEPTH + 5, 1)}}).encode()
    assert not page_is_valid([GOOD], body)


# -- who trusts the page check ----------------------------------------------------------------


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


class UserSpiderMiddleware:
    def process_spider_output(self, response: Any, result: Any) -> Any:
        yield from result


PIPELINES = project_settings.ITEM_PIPELINES
NORMALISE, VALIDATE = "tmapi_spiders.pipelines.NormalisationPipeline", "tmapi_spiders.pipelines.ValidationPipeline"


@pytest.mark.parametrize(
    ("changes", "trusted"),
    [
        ({}, True),
        ({"ITEM_PIPELINES": {**PIPELINES, f"{__name__}.UserPipeline": 300}}, True),  # after validation
        ({"ITEM_PIPELINES": {**PIPELINES, f"{__name__}.UserPipeline": 150}}, False),  # between the two
        ({"ITEM_PIPELINES": {**PIPELINES, f"{__name__}.UserPipeline": 50}}, False),  # before both
        ({"ITEM_PIPELINES": {**PIPELINES, NORMALISE: None}}, False),  # scheme-relative URLs stay invalid
        ({"ITEM_PIPELINES": {**PIPELINES, NORMALISE: 300}}, False),
        ({"ITEM_PIPELINES": {**PIPELINES, VALIDATE: None}}, False),  # nothing to trust it
        ({"SPIDER_MIDDLEWARES": {f"{__name__}.UserSpiderMiddleware": 500}}, False),
        ({"SPIDER_MIDDLEWARES": {"scrapy.spidermiddlewares.depth.DepthMiddleware": 500}}, True),
    ],
)
def test_the_page_check_is_trusted_only_when_nothing_else_changes_records(
    changes: dict[str, Any], trusted: bool
) -> None:
    assert checks_pages_in_spider(get_crawler(ImageSearchSpider, crawler_settings(**changes)).settings) is trusted


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


def test_a_valid_page_comes_checked_and_is_counted_not_checked_again() -> None:
    page = [GOOD, {**GOOD, "item_id": 2, "img": "//cbu01.alicdn.com/b.jpg"}]
    products, kept, stats = page_through({}, page)
    assert [type(p) for p in products] == [CheckedProductItem, CheckedProductItem]
    assert [k["img"] for k in kept] == [GOOD["img"], "https://cbu01.alicdn.com/b.jpg"]
    assert stats.get_value("tmapi/items") == 2 and stats.get_value("tmapi/items_dropped") is None


def test_a_page_with_one_bad_record_is_checked_record_by_record_with_the_same_reasons() -> None:
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
    products, kept, stats = page_through({"ITEM_PIPELINES": pipelines}, [GOOD])
    assert [type(p) for p in products] == [ProductItem]
    assert kept == [] and stats.get_value("tmapi/items_dropped/invalid_price") == 1


def test_a_checked_record_is_checked_again_where_the_pipeline_cannot_trust_it() -> None:
    crawler = get_crawler(ImageSearchSpider, crawler_settings(ITEM_PIPELINES={VALIDATE: 200}))
    validate = ValidationPipeline.from_crawler(crawler)
    with pytest.raises(DropItem, match="invalid_img"):
        asyncio.run(validate.process_item(CheckedProductItem({**GOOD, "img": "//cbu01.alicdn.com/b.jpg"})))


def test_a_checked_page_leaves_the_spider_normalised_and_counted() -> None:
    """Nothing left for either pipeline: URLs absolute, titles trimmed, `tmapi/items` counted once."""
    messy = {**GOOD, "item_id": 2, "img": "//cbu01.alicdn.com/b.jpg", "title": "  Phone \n Case ", "shop_info": {}}
    messy["shop_info"] = {"shop_url": "//shop.1688.com/x"}
    crawler = get_crawler(ImageSearchSpider, crawler_settings())
    spider = ImageSearchSpider.from_crawler(crawler, urls=IMAGE)
    crawler.spider = spider
    request = spider.first_request(Seed(IMAGE, 1), spider.job.query, 0)
    body = json.dumps({"code": 200, "msg": "success", "data": {"total_count": 2, "items": [GOOD, messy]}})
    response = TextResponse(request.url, body=body.encode(), request=request, encoding="utf-8")
    products = [o for o in spider.parse_search(response) if isinstance(o, ProductItem)]
    assert [type(p) for p in products] == [CheckedProductItem] * 2
    assert products[1]["img"] == "https://cbu01.alicdn.com/b.jpg" and products[1]["title"] == "Phone Case"
    assert products[1]["shop_info"]["shop_url"] == "https://shop.1688.com/x"
    assert crawler.stats.get_value("tmapi/items") == 2
    for product in products:  # the pipelines change nothing more
        assert normalised(dict(product)) == product


@pytest.mark.parametrize(
    ("pipelines", "skipped"),
    [
        (PIPELINES, True),
        ({**PIPELINES, f"{__name__}.UserPipeline": 300}, False),  # a user's pipeline gets every record
        ({NORMALISE: 100, f"{__name__}.StrictValidation": 200}, False),  # a subclass may do more
        ({VALIDATE: 200}, False),
    ],
)
def test_item_processor_skips_only_our_own_two_pipelines_for_a_checked_record(
    pipelines: dict[str, Any], skipped: bool
) -> None:
    from tmapi_spiders.itemproc import ItemProcessor

    crawler = get_crawler(ImageSearchSpider, crawler_settings(ITEM_PIPELINES=pipelines))
    crawler.spider = ImageSearchSpider.from_crawler(crawler, urls=IMAGE)
    processor = ItemProcessor.from_crawler(crawler)
    assert processor.skips_checked is skipped
    record = asyncio.run(processor.process_item_async(CheckedProductItem(GOOD)))
    assert (record["price"] == "free") is (f"{__name__}.UserPipeline" in pipelines)


class StrictValidation(ValidationPipeline):
    """A user's stricter ValidationPipeline: not ours, so not skipped."""

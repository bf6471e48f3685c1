"""Hostile API answers: arbitrary JSON shapes through the envelope, the spider's callbacks,
the pipelines and the real feed exporters. No crash ever; every product record is either
kept or dropped by the rules in docs/reliability.md, and every drop is counted in stats.

Property tests call the real callbacks of a spider built by Scrapy's own `get_crawler`
with real `TextResponse`s; a few broken bodies also go end to end over HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.exporters import CsvItemExporter, JsonItemExporter, JsonLinesItemExporter, XmlItemExporter
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

import tmapi_spiders.settings as project_settings
from tests import strategies
from tests.crawl_helpers import crawl
from tmapi_spiders.api.envelope import Envelope, read_envelope
from tmapi_spiders.api.schema import MAX_DEPTH, invalid_reason
from tmapi_spiders.crawl.exporters import FlatCsvItemExporter
from tmapi_spiders.crawl.pipelines import ValidationPipeline
from tmapi_spiders.crawl.seeds import Seed
from tmapi_spiders.items import FailureItem, ProductItem
from tmapi_spiders.spiders.image_search import ImageSearchSpider

IMAGE = "https://cbu01.alicdn.com/img/ibank/hostile.jpg"
GOOD_ITEM: dict[str, Any] = {
    "item_id": 865835426638,
    "product_url": "https://detail.1688.com/offer/865835426638.html",
    "title": "Phone Case",
    "title_origin": "手机壳",
    "img": "https://cbu01.alicdn.com/O1CN01MJvUUV26UATGC9C8o.jpg",
    "category_path": ["1042207", "50911"],
    "price": "19.00",
    "price_info": {"drop_ship_price": "19.00", "wholesale_price": "19.00", "origin_price": "19.00"},
    "quantity_prices": [{"begin_num": "1", "end_num": "", "price": "19.00"}],
    "shop_info": {"member_id": "b2b-1", "company_name": "x", "is_factory": True, "location": ["Guangdong"]},
    "sale_info": {"sale_quantity": 27},
}
FIELDS = [*GOOD_ITEM, "shop_info.is_factory", "price_info.origin_price", "brand", "new_field"]


def strict_loads(line: str | bytes) -> Any:
    """json.loads that refuses NaN/Infinity, as every non-Python reader does."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


# -- a real spider, pipelines and exporters ---------------------------------------------------


class Harness:
    """A spider made by Scrapy's own crawler factory, plus the project's pipelines."""

    def __init__(self) -> None:
        values = {name: getattr(project_settings, name) for name in dir(project_settings) if name.isupper()}
        values.update(TMAPI_API_TOKEN="hostile-token", TMAPI_BASE_URL="http://127.0.0.1:9", LOG_LEVEL="ERROR")
        self.crawler: Crawler = get_crawler(ImageSearchSpider, values)
        self.spider: ImageSearchSpider = ImageSearchSpider.from_crawler(self.crawler, urls=IMAGE)
        self.validate = ValidationPipeline.from_crawler(self.crawler)
        self.stats = self.crawler.stats
        assert self.stats is not None

    def first_request(self) -> Request:
        return self.spider.first_request(Seed(IMAGE, 1), self.spider.job.query, 0)

    def search_response(self, body: bytes, status: int = 200, page: int = 1) -> TextResponse:
        request = self.first_request()
        if page > 1:
            request = self.spider._search({**request.meta["tmapi"], "page": page})
        return TextResponse(request.url, status=status, body=body, request=request, encoding="utf-8")

    def stat(self, key: str) -> int:
        assert self.stats is not None
        return int(self.stats.get_value(key, 0))

    def pipe(self, product: ProductItem) -> ProductItem | None:
        try:
            return asyncio.run(self.validate.process_item(product))
        except DropItem:
            return None


@pytest.fixture(scope="module")
def harness() -> Harness:
    return Harness()


def export_everywhere(items: list[dict[str, Any]]) -> None:
    """Every feed format the project writes, with the real exporters; JSON must parse back."""
    for exporter_class in (JsonLinesItemExporter, JsonItemExporter, CsvItemExporter, FlatCsvItemExporter):
        buffer = io.BytesIO()
        exporter = exporter_class(buffer, encoding="utf-8")
        exporter.start_exporting()
        for item in items:
            exporter.export_item(item)
        exporter.finish_exporting()
        if exporter_class is JsonLinesItemExporter:
            for line in buffer.getvalue().splitlines():
                strict_loads(line.decode("utf-8"))
        if exporter_class is JsonItemExporter:
            strict_loads(buffer.getvalue().decode("utf-8"))
    xml = XmlItemExporter(io.BytesIO(), encoding="utf-8")
    xml.start_exporting()
    for item in items:
        xml.export_item(item)
    xml.finish_exporting()


# -- strategies ---------------------------------------------------------------------------

json_values = strategies.json_values(
    ["", "19.00", "https://x.example/a", "//cbu01.alicdn.com/x.jpg", "\x00\x1f"], text_size=30, max_leaves=15
)


@st.composite
def mutated_items(draw: st.DrawFn) -> Any:
    """A documented item with some fields deleted, nulled, retyped or added; or any JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    item = copy.deepcopy(GOOD_ITEM)
    item["item_id"] = draw(st.integers(1, 10**12))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        found = strategies.field_holder(item, name)
        if found is None:
            continue
        holder, target = found
        action = draw(st.sampled_from(["delete", "null", "value", "huge"]))
        if action == "delete":
            holder.pop(target, None)
        elif action == "null":
            holder[target] = None
        elif action == "value":
            holder[target] = draw(json_values)
        else:
            holder[target] = "x" * 100_000
    return item


@st.composite
def search_bodies(draw: st.DrawFn) -> bytes:
    items = draw(st.lists(mutated_items(), max_size=25) | json_values)
    data: dict[str, Any] = {"items": items}
    data["total_count"] = draw(st.integers(-5, 500) | json_values)
    if draw(st.booleans()):
        data["has_next_page"] = draw(json_values)
    if draw(st.booleans()):
        data[draw(st.text(max_size=10))] = draw(json_values)
    envelope: dict[str, Any] = {"code": draw(st.sampled_from([200, 200, 200, 417, 500, "200", None])), "msg": "x"}
    envelope["data"] = data if draw(st.integers(0, 9)) else draw(json_values)
    body = json.dumps(envelope, ensure_ascii=draw(st.booleans()), allow_nan=False).encode()
    corruption = draw(st.sampled_from(["none", "none", "byte", "cut"]))
    if corruption == "byte" and body:
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + body[at:]
    elif corruption == "cut":
        body = body[: draw(st.integers(0, len(body)))]
    return body


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(status=st.sampled_from([200, 200, 417, 422, 439, 499, 500, 503, 401]), body=st.binary(max_size=200))
@example(status=200, body=b"[" * 100_000)
@example(status=200, body=b'{"code":200,"data":' * 50_000)
@example(status=200, body=b"\xef\xbb\xbf" + b'{"code":200,"msg":"success","data":{}}')
def test_read_envelope_never_raises_on_any_bytes(status: int, body: bytes) -> None:
    envelope = read_envelope(status, body)
    assert isinstance(envelope, Envelope)
    assert envelope.ok == (envelope.data is not None)
    if envelope.ok:
        assert status == 200 and envelope.status == 200 and isinstance(envelope.data, dict)


@settings(max_examples=300, deadline=None)
@given(value=json_values, status=st.sampled_from([200, 500]))
def test_read_envelope_on_any_json_is_ok_only_with_code_200_and_object_data(value: Any, status: int) -> None:
    envelope = read_envelope(status, json.dumps(value).encode())
    expected_ok = (
        status == 200
        and isinstance(value, dict)
        and type(value.get("code")) is int
        and value.get("code") == 200
        and isinstance(value.get("data"), dict)
    )
    assert envelope.ok == expected_ok


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=search_bodies())
def test_parse_search_and_pipelines_never_crash_and_count_every_drop(harness: Harness, body: bytes) -> None:
    before = {key: harness.stat(key) for key in ("tmapi/items", "tmapi/items_dropped", "tmapi/images_failed")}
    outputs = list(harness.spider.parse_search(harness.search_response(body)))
    products = [o for o in outputs if isinstance(o, ProductItem)]
    failures = [o for o in outputs if isinstance(o, FailureItem)]
    requests = [o for o in outputs if isinstance(o, Request)]
    assert len(products) + len(failures) + len(requests) == len(outputs)
    # An image's page ends in exactly one way: a failure record, the next page, or done.
    assert len(failures) + len(requests) <= 1
    assert not (failures and products)
    for request in requests:
        # The next page, or page 1 asked once more: empty while total_count promised items.
        state = request.meta["tmapi"]
        assert state["page"] == 2 or (state["page"] == 1 and state["empty_asks"] == 1 and products == [])
        json.dumps(request.meta["tmapi"])  # chain state stays JSON-able (Redis)
    envelope = read_envelope(200, body)
    if failures:
        assert harness.stat("tmapi/images_failed") == before["tmapi/images_failed"] + 1
    elif envelope.ok:
        items = envelope.data["items"] if envelope.data else None  # type: ignore[index]
        items = [] if items is None else items
        not_objects = sum(1 for raw in items if not isinstance(raw, dict))
        ids = [raw.get("item_id") for raw in items if isinstance(raw, dict) and type(raw.get("item_id")) is int]
        repeats = len(ids) - len(set(ids))
        # Every item on the page is a product, a counted non-object, or a counted repeat.
        assert len(products) + not_objects + repeats == len(items)
    kept = []
    for product in products:
        result = harness.pipe(product)
        if result is not None:
            kept.append(result)
            assert invalid_reason(result) is None
    after_items = harness.stat("tmapi/items") - before["tmapi/items"]
    after_dropped = harness.stat("tmapi/items_dropped") - before["tmapi/items_dropped"]
    assert after_items == len(kept)
    assert after_items + after_dropped >= len(products)
    export_everywhere(kept)


@settings(max_examples=100, deadline=None)
@given(data=json_values)
def test_parse_converted_never_crashes(harness: Harness, data: Any) -> None:
    # An image hosted outside Alibaba: its first request is the conversion.
    request = harness.spider.first_request(Seed("https://example.com/hostile.jpg", 1), harness.spider.job.query, 0)
    body = json.dumps({"code": 200, "msg": "success", "data": data}).encode()
    response = TextResponse(request.url, body=body, request=request, encoding="utf-8")
    outputs = list(harness.spider.parse_converted(response))
    assert len(outputs) == 1
    if isinstance(outputs[0], Request):
        assert isinstance(data, dict) and isinstance(data.get("image_url"), str)
    else:
        assert isinstance(outputs[0], FailureItem)


# -- the documented keep/drop rules, one by one ------------------------------------------------


def product(**changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(GOOD_ITEM)
    for name, value in changes.items():
        if value is ...:
            item.pop(name)
        else:
            item[name] = value
    return item


def page_body(items: list[Any] | None, total: Any = None) -> bytes:
    total = len(items or ()) if total is None else total
    return json.dumps({"code": 200, "msg": "success", "data": {"total_count": total, "items": items}}).encode()


def run_page(harness: Harness, body: bytes) -> tuple[list[ProductItem], list[Any]]:
    outputs = list(harness.spider.parse_search(harness.search_response(body)))
    products = [o for o in outputs if isinstance(o, ProductItem)]
    kept = [p for p in (harness.pipe(p) for p in products) if p is not None]
    export_everywhere(kept)
    return kept, outputs


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"item_id": ...}, "missing_item_id"),
        ({"item_id": None}, "invalid_item_id"),
        ({"item_id": "865835426638"}, "invalid_item_id"),
        ({"item_id": True}, "invalid_item_id"),
        ({"product_url": "/offer/1.html"}, "invalid_product_url"),
        ({"title": ...}, "missing_title"),
        ({"title": 5}, "invalid_title"),
        ({"img": None}, "invalid_img"),
        ({"price": 19.0}, "invalid_price"),
        ({"price": "19,00"}, "invalid_price"),
        ({"price": "19.00\n"}, "invalid_price"),  # Python's `$` let a trailing newline through
        ({"price": "١٩"}, "invalid_price"),  # Arabic-Indic digits: `\d` took them
        ({"product_url": "https://detail.1688.com/offer/1.html "}, "invalid_product_url"),
        ({"price_info": {"origin_price": "cheap"}}, "invalid_price_info.origin_price"),
        ({"quantity_prices": [{"price": None}]}, "invalid_quantity_prices.price"),
        ({"shop_info": {"is_factory": "yes"}}, "invalid_shop_info.is_factory"),
    ],
)
def test_bad_required_field_is_dropped_and_counted_by_reason(
    harness: Harness, changes: dict[str, Any], reason: str
) -> None:
    before = harness.stat(f"tmapi/items_dropped/{reason}")
    kept, _ = run_page(harness, page_body([product(**changes)]))
    assert kept == []
    assert harness.stat(f"tmapi/items_dropped/{reason}") == before + 1


@pytest.mark.parametrize(
    "changes",
    [
        {"brand": None, "sale_info": "n/a", "category_path": 7},  # optional fields of any shape
        {"price_info": None, "quantity_prices": None, "shop_info": None},  # optional objects null
        {"surprise": {"deep": [1, {"x": None}]}, "another_new_field": [1, "a", None]},  # new fields
        {"title": "t" * 1_000_000},  # huge but well-typed
        {"item_id": 10**30},  # huge but an integer
        {"product_url": "//detail.1688.com/offer/1.html", "img": "//cbu01.alicdn.com/x.jpg"},  # made absolute
        {"page": 99, "rank": "first"},  # the API's own fields under our names: kept as api_*
    ],
)
def test_well_typed_or_optional_oddities_are_kept(harness: Harness, changes: dict[str, Any]) -> None:
    kept, _ = run_page(harness, page_body([product(**changes)]))
    assert len(kept) == 1
    record = kept[0]
    for name, value in changes.items():
        if name in ("page", "rank"):
            assert record[f"api_{name}"] == value
        elif name in ("product_url", "img"):
            assert record[name] == "https:" + value
        else:
            assert record[name] == value


def test_nesting_beyond_the_limit_is_dropped_below_it_kept(harness: Harness) -> None:
    def nested(depth: int) -> Any:
        value: Any = "leaf"
        for n in range(depth):
            value = {"d": value} if n % 2 else [value]
        return value

    before = harness.stat("tmapi/items_dropped/invalid_nesting")
    shallow = product(extra=nested(MAX_DEPTH - 2))
    deep = product(item_id=2, extra=nested(MAX_DEPTH + 5))
    very_deep = product(item_id=3, extra=nested(600))
    kept, _ = run_page(harness, page_body([shallow, deep, very_deep]))
    assert [k["item_id"] for k in kept] == [GOOD_ITEM["item_id"]]
    assert harness.stat("tmapi/items_dropped/invalid_nesting") == before + 2


def test_body_nested_past_the_parser_is_malformed_not_a_crash(harness: Harness) -> None:
    envelope = read_envelope(200, b'{"code":200,"data":' + b"[" * 200_000)
    assert not envelope.ok and envelope.status in project_settings.RETRY_HTTP_CODES  # retried like a truncated answer
    _, outputs = run_page(harness, b"[" * 200_000)
    assert len(outputs) == 1 and isinstance(outputs[0], FailureItem) and outputs[0]["status"] == 500


def test_text_that_utf8_cannot_carry_is_kept_as_replacement_characters(harness: Harness) -> None:
    good = json.dumps(product(title="MARK")).encode()
    bad_bytes = good.replace(b"MARK", b"A\xff\xfeB")
    surrogate = json.dumps(product(item_id=2, title="MARK")).encode().replace(b"MARK", b"C\\ud800D")
    body = b'{"code":200,"msg":"success","data":{"total_count":2,"items":[' + bad_bytes + b"," + surrogate + b"]}}"
    kept, _ = run_page(harness, body)
    assert [k["title"] for k in kept] == ["A\ufffd\ufffdB", "C\ufffdD"]


def test_nan_and_infinity_become_null(harness: Harness) -> None:
    body = json.dumps(product(goods_score=0.5)).encode().replace(b"0.5", b"NaN")
    body = b'{"code":200,"msg":"success","data":{"total_count":1,"items":[' + body + b'],"x":Infinity}}'
    kept, _ = run_page(harness, body)
    assert len(kept) == 1 and kept[0]["goods_score"] is None


def test_boolean_item_id_does_not_hide_the_real_item(harness: Harness) -> None:
    kept, _ = run_page(harness, page_body([product(item_id=True), product(item_id=1)]))
    assert [k["item_id"] for k in kept] == [1]


def test_null_items_with_zero_total_is_an_image_without_results(harness: Harness) -> None:
    finished_before = harness.stat("tmapi/images_searched")
    _, outputs = run_page(harness, page_body(None, total=0))
    assert outputs == []
    assert harness.stat("tmapi/images_searched") == finished_before + 1


@pytest.mark.parametrize(
    "data",
    [
        {"items": []},
        {"total_count": "40", "items": []},
        {"total_count": -1, "items": []},
        {"total_count": True, "items": []},
        {"total_count": 40, "items": {"0": {}}},
        {"total_count": 40, "items": None},
    ],
)
def test_page_without_usable_total_or_items_fails_the_image_once(harness: Harness, data: dict[str, Any]) -> None:
    body = json.dumps({"code": 200, "msg": "success", "data": data}).encode()
    _, outputs = run_page(harness, body)
    assert len(outputs) == 1 and isinstance(outputs[0], FailureItem)
    assert outputs[0]["message"] == "response data has no total_count or items"


# -- end to end: broken bodies over real HTTP through a real crawl ------------------------------


class CannedApi:
    """A tiny TMAPI stand-in serving fixed search bodies by image URL (real HTTP on 127.0.0.1)."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies
        self.calls: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                img = query.get("img_url", [""])[0]
                api.calls.append(img)
                body = api.bodies.get(img, b'{"code":422,"msg":"unknown image","data":null}')
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CannedApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_hostile_page_end_to_end_keeps_the_good_drops_the_bad_counts_both(tmp_path: Path) -> None:
    items = [
        product(item_id=1),
        product(item_id=True),  # dropped: invalid_item_id (and must not hide item 1 on the next line)
        product(item_id=2, title="MARK"),  # kept, non-UTF-8 bytes replaced
        product(item_id=3, price=None),  # dropped: invalid_price
        product(item_id=4, extra=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
        "not an object",  # dropped: not_an_object
        product(item_id=5, title="SURR", new_field={"a": [None, 1.5]}),  # kept, surrogate replaced
        product(item_id=1),  # a repeat of item 1: counted, not written
    ]
    body = json.dumps({"code": 200, "msg": "success", "data": {"total_count": 8, "items": items}}).encode()
    body = body.replace(b"MARK", b"\xff\xfe").replace(b"SURR", b"\\udc80")
    deep_image = "https://cbu01.alicdn.com/img/ibank/deep.jpg"
    bodies = {IMAGE: body, deep_image: b'{"code":200,"data":' + b"[" * 100_000}
    with CannedApi(bodies) as api:
        result = crawl(
            tmp_path,
            api.base_url,
            {"urls": f"{IMAGE},{deep_image}"},
            {"RETRY_TIMES": 1, "TMAPI_BACKOFF_BASE": 0.01},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = (tmp_path / "products.jsonl").read_text(encoding="utf-8").splitlines()
    records = [strict_loads(line) for line in lines]
    assert sorted(r["item_id"] for r in records) == [1, 2, 5]
    assert {r["item_id"]: r["title"] for r in records}[2] == "\ufffd\ufffd"
    assert {r["item_id"]: r["title"] for r in records}[5] == "\ufffd"
    stats = result.stats
    assert stats["tmapi/items"] == 3
    assert stats["tmapi/items_dropped/invalid_item_id"] == 1
    assert stats["tmapi/items_dropped/invalid_price"] == 1
    assert stats["tmapi/items_dropped/invalid_nesting"] == 1
    assert stats["tmapi/items_dropped/not_an_object"] == 1
    assert stats["tmapi/items_dropped"] == 4
    assert stats["tmapi/items_duplicate"] == 1
    # each drop reason is one WARNING line, not one per record (Scrapy's own line is DEBUG)
    warnings = [line for line in result.stderr.splitlines() if "] WARNING:" in line]
    assert sum("Dropping product records" in line for line in warnings) == 3, warnings  # id, price, nesting
    assert not any("Dropped:" in line for line in warnings), warnings
    # The body no parser can read was retried (RETRY_TIMES=1), then recorded as a failure.
    assert [f["query_image_url"] for f in result.failures] == [deep_image]
    assert result.failures[0]["message"] == "malformed JSON body (HTTP 200)"
    assert api.calls.count(deep_image) == 2, (api.calls, result.stderr[-3000:])
    assert api.calls.count(IMAGE) == 1

"""The sandbox answers as the TMAPI contract documents: parameters, errors, auth, data rules."""

from __future__ import annotations

import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import SANDBOX_BROKE_TOKEN, SANDBOX_TOKEN, SandboxClient
from tmapi_spiders.api import contract
from tmapi_spiders.sandbox import SandboxThread

IMG = "https://cbu01.alicdn.com/img/ibank/O1CN01Lnbnos2LkORtHhOVp_!!3367999730-0-cib.jpg"


def img(total: int, name: str = "x") -> str:
    return f"https://cbu01.alicdn.com/img/ibank/{name}_total-{total}.jpg"


def assert_error(answer: Any, status: int, *words: str) -> None:
    assert answer.status == status, answer.body
    body = answer.json()
    assert body["code"] == status and body["data"] is None
    for word in words:
        assert word in body["msg"]


# -- the success envelope and the item shape ------------------------------------------------
SEED_ITEM_SHAPE: dict[str, Any] = {
    "item_id": int,
    "product_url": str,
    "title": str,
    "title_origin": str,
    "img": str,
    "category_path": list,
    "price": str,
    "price_info": {"drop_ship_price": str, "wholesale_price": str, "origin_price": str},
    "brand": str,
    "title_tags": list,
    "quantity_begin": int,
    "quantity_prices": list,
    "sale_info": {
        "gmv_fuzzy": str,
        "gmv_30days": int,
        "gmv_30days_cb": int,
        "sale_quantity": int,
        "sale_quantity_month": int,
        "sale_quantity_90days": int,
        "sale_quantity_360days": int,
        "orders_count": int,
    },
    "type": str,
    "delivery_info": {"area_from": list, "weight": (int, float), "suttle_weight": (int, float), "free_postage": bool},
    "item_repurchase_rate": str,
    "goods_score": int,
    "image_dsm_score": int,
    "primary_rank_score": int,
    "super_new_product": bool,
    "shop_info": {
        "login_id": type(None),
        "member_id": str,
        "company_name": str,
        "shop_url": str,
        "biz_type": str,
        "is_factory": bool,
        "is_super_factory": bool,
        "is_gold_supplier": bool,
        "location": list,
        "service_tags": list,
        "tp_member": bool,
        "tp_year": int,
        "factory_inspection": bool,
        "shop_repurchase_rate": str,
    },
}


def check_shape(value: Any, shape: Any, where: str = "item") -> None:
    if isinstance(shape, dict):
        assert isinstance(value, dict), where
        assert list(value) == list(shape), f"{where}: keys {list(value)}"
        for key, sub in shape.items():
            check_shape(value[key], sub, f"{where}.{key}")
    else:
        assert isinstance(value, shape) and not (shape is int and isinstance(value, bool)), f"{where}: {value!r}"


def test_success_envelope_and_every_seed_field(sandbox_client: SandboxClient) -> None:
    answer = sandbox_client.search(img(45))
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    body = answer.json()
    assert list(body) == ["code", "msg", "data"] and body["code"] == 200 and body["msg"] == "success"
    data = body["data"]
    assert list(data) == ["page", "page_size", "total_count", "sort", "filters", "items"]
    assert (data["page"], data["page_size"], data["total_count"], data["sort"], data["filters"]) == (
        1,
        20,
        45,
        "default",
        {},
    )
    assert len(data["items"]) == 20
    for item in data["items"]:
        check_shape(item, SEED_ITEM_SHAPE)
        assert item["product_url"] == f"https://detail.1688.com/offer/{item['item_id']}.html"
        assert 100_000_000_000 <= item["item_id"] < 1_000_000_000_000
        assert item["img"].startswith("https://cbu01.alicdn.com/")
        assert all(isinstance(c, str) and c.isdigit() for c in item["category_path"])
        assert Decimal(item["price"]).as_tuple().exponent == -2
        assert item["price_info"]["wholesale_price"] == item["price"]
        assert item["shop_info"]["location"] == item["delivery_info"]["area_from"]
        assert item["shop_info"]["shop_repurchase_rate"].endswith("%")
        Decimal(item["item_repurchase_rate"])
        assert any("\u4e00" <= ch <= "\u9fff" for ch in item["title_origin"])
        for tier in item["quantity_prices"]:
            assert list(tier) == ["begin_num", "end_num", "price"] and all(isinstance(v, str) for v in tier.values())
    # Chinese is sent as UTF-8, not \u escapes.
    assert "\\u" not in answer.body.decode() and any(ord(ch) > 0x4E00 for ch in answer.body.decode())


# -- parameters: defaults and bounds ---------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "two"}, "page"),
        ({"page": ""}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 21}, "page_size"),
        ({"page_size": "x"}, "page_size"),
        ({"page_size": "1.5"}, "page_size"),
        ({"language": "de"}, "language"),
        ({"language": "EN"}, "language"),
        ({"sort": "newest"}, "sort"),
        ({"sort": ""}, "sort"),
        *(({name: "maybe"}, name) for name in contract.FILTERS),
        *(({name: ""}, name) for name in contract.FILTERS),
    ],
)
def test_bad_parameter_is_422_naming_it(sandbox_client: SandboxClient, params: dict[str, Any], param: str) -> None:
    answer = sandbox_client.search(IMG, **params)
    assert_error(answer, 422, param + ":")


def test_img_url_is_required(sandbox_client: SandboxClient) -> None:
    assert_error(sandbox_client.search(None), 422, "img_url")
    assert_error(sandbox_client.search(""), 422, "img_url")


def test_defaults(sandbox_client: SandboxClient) -> None:
    data = sandbox_client.search(img(50)).json()["data"]
    explicit = sandbox_client.search(img(50), page=1, page_size=20, language="en", sort="default").json()["data"]
    assert (data["page"], data["page_size"], data["sort"]) == (1, 20, "default")
    assert data == explicit


@pytest.mark.parametrize("size", [1, 7, 20])
def test_page_size_bounds_accepted(sandbox_client: SandboxClient, size: int) -> None:
    data = sandbox_client.search(img(30), page_size=size).json()["data"]
    assert data["page_size"] == size and len(data["items"]) == size


def test_page_one_and_page_size_one_walk_the_same_items(sandbox_client: SandboxClient) -> None:
    page = sandbox_client.search(img(5), page=1).json()["data"]["items"]
    singles = [sandbox_client.search(img(5), page=p, page_size=1).json()["data"]["items"][0] for p in range(1, 6)]
    assert [i["item_id"] for i in page] == [i["item_id"] for i in singles]


@pytest.mark.parametrize("language", contract.LANGUAGES)
def test_each_language_translates_the_title_only(sandbox_client: SandboxClient, language: str) -> None:
    english = sandbox_client.search(img(8), language="en").json()["data"]["items"]
    other = sandbox_client.search(img(8), language=language).json()["data"]["items"]
    assert [i["item_id"] for i in other] == [i["item_id"] for i in english]
    for a, b in zip(english, other, strict=True):
        assert {k: v for k, v in a.items() if k != "title"} == {k: v for k, v in b.items() if k != "title"}
    if language == "en":
        assert all(item["title"].isascii() for item in other)
    elif language == "zh":
        assert [i["title"] for i in other] == [i["title_origin"] for i in other]
    else:
        assert [i["title"] for i in other] != [i["title"] for i in english]


@pytest.mark.parametrize("value", ["true", "false", "1", "0", "TRUE", "False"])
def test_boolean_words_accepted(sandbox_client: SandboxClient, value: str) -> None:
    answer = sandbox_client.search(img(30), is_factory=value)
    assert answer.status == 200
    assert answer.json()["data"]["filters"] == {"is_factory": value.lower() in ("true", "1")}


# -- errors and authentication ---------------------------------------------------------------
def test_missing_token_is_401_gateway_message(sandbox_client: SandboxClient) -> None:
    answer = sandbox_client.search(IMG, token=None)
    assert answer.status == 401 and answer.json() == {"message": "No API key found in request"}


def test_unknown_token_is_401_gateway_message(sandbox_client: SandboxClient) -> None:
    answer = sandbox_client.search(IMG, token="nope")
    assert answer.status == 401 and answer.json() == {"message": "Invalid authentication credentials"}
    answer = sandbox_client.convert("https://example.com/a.jpg", token="nope")
    assert answer.status == 401 and answer.json() == {"message": "Invalid authentication credentials"}


def test_token_in_header_is_accepted(sandbox_client: SandboxClient) -> None:
    answer = sandbox_client.request(
        "GET", contract.SEARCH_PATH, {"img_url": IMG}, headers={contract.TOKEN_HEADER: SANDBOX_TOKEN}
    )
    assert answer.status == 200
    assert answer.body == sandbox_client.search(IMG).body
    bad = sandbox_client.request("GET", contract.SEARCH_PATH, {"img_url": IMG}, headers={contract.TOKEN_HEADER: "x"})
    assert bad.status == 401 and bad.json() == {"message": contract.MSG_BAD_KEY}


def test_broke_token_is_439(sandbox_client: SandboxClient) -> None:
    assert_error(sandbox_client.search(IMG, token=SANDBOX_BROKE_TOKEN), 439, "insufficient balance")
    assert_error(sandbox_client.convert("https://example.com/a.jpg", token=SANDBOX_BROKE_TOKEN), 439)


def test_default_token_is_sandbox(make_sandbox: Any) -> None:
    sb = make_sandbox(tokens=())
    assert SandboxClient(sb, token="sandbox").search(IMG).status == 200
    assert SandboxClient(sb, token=SANDBOX_TOKEN).search(IMG).status == 401


def test_non_alibaba_image_is_422(sandbox_client: SandboxClient) -> None:
    for url in ("https://example.com/a.jpg", "https://alicdn.com.evil.net/a.jpg", "not a url"):
        assert_error(sandbox_client.search(url), 422, "Only images from Alibaba-affiliated platforms")
    for url in ("https://img.alicdn.com/a.jpg", "https://sc04.alibaba.com/a.jpg", "https://x.aliimg.com/b.png"):
        assert sandbox_client.search(url).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/1688/search/image"), ("POST", contract.SEARCH_PATH), ("GET", contract.CONVERT_PATH)],
)
def test_unknown_route_is_404(sandbox_client: SandboxClient, method: str, path: str) -> None:
    answer = sandbox_client.request(method, path, {"apiToken": SANDBOX_TOKEN}, body=b"" if method == "POST" else None)
    assert answer.status == 404 and answer.json() == {"message": "no Route matched with those values"}


# -- determinism -----------------------------------------------------------------------------
def test_same_request_same_bytes(sandbox_client: SandboxClient, make_sandbox: Any) -> None:
    first = sandbox_client.search(IMG, page=2, sort="sales", language="ja")
    assert first.body == sandbox_client.search(IMG, page=2, sort="sales", language="ja").body
    other_server = SandboxClient(make_sandbox())  # a fresh process state answers the same
    assert other_server.search(IMG, page=2, sort="sales", language="ja").body == first.body


def test_different_images_different_results(sandbox_client: SandboxClient) -> None:
    a = {i["item_id"] for i in sandbox_client.search(img(40, "a")).json()["data"]["items"]}
    b = {i["item_id"] for i in sandbox_client.search(img(40, "b")).json()["data"]["items"]}
    assert len(a) == len(b) == 20 and a != b
    titles_a = [i["title"] for i in sandbox_client.search(img(40, "a")).json()["data"]["items"]]
    titles_b = [i["title"] for i in sandbox_client.search(img(40, "b")).json()["data"]["items"]]
    assert titles_a != titles_b


def test_natural_totals_cover_the_edge_cases(sandbox_client: SandboxClient) -> None:
    totals = [
        sandbox_client.search(f"https://cbu01.alicdn.com/img/ibank/n{i}.jpg", page_size=1).json()["data"]["total_count"]
        for i in range(150)
    ]
    assert all(0 <= t <= 400 for t in totals)
    assert 0 in totals
    assert any(t > 0 and t % 20 == 0 for t in totals)
    assert any(t % 20 == 1 for t in totals)
    assert len(set(totals)) > 30


def test_total_hint_in_query_and_path(sandbox_client: SandboxClient) -> None:
    assert sandbox_client.search("https://cbu01.alicdn.com/img/a.jpg?total=41").json()["data"]["total_count"] == 41
    assert sandbox_client.search("https://cbu01.alicdn.com/img/total-7.jpg").json()["data"]["total_count"] == 7
    assert sandbox_client.search("https://cbu01.alicdn.com/total-3/a.jpg").json()["data"]["total_count"] == 3


# -- pagination ------------------------------------------------------------------------------
@pytest.mark.parametrize("total", [0, 1, 19, 20, 21, 40, 41])
def test_pages_hold_exactly_total_count_items(sandbox_client: SandboxClient, total: int) -> None:
    url = img(total, "pages")
    last = contract.last_page(total, 20)
    seen: list[int] = []
    for page in range(1, last + 1):
        data = sandbox_client.search(url, page=page).json()["data"]
        assert data["total_count"] == total and data["page"] == page
        expected = 20 if page < last else total - 20 * (last - 1)
        assert len(data["items"]) == expected
        seen += [i["item_id"] for i in data["items"]]
    assert len(seen) == len(set(seen)) == total
    for past in (last + 1, last + 5):
        data = sandbox_client.search(url, page=past).json()["data"]
        assert data["items"] == [] and data["total_count"] == total and data["page"] == past


# -- sort and filters ------------------------------------------------------------------------
def test_sorts_reorder_the_same_set(sandbox_client: SandboxClient) -> None:
    url = img(57, "sort")
    _, default = sandbox_client.all_items(url)
    by_sort = {s: sandbox_client.all_items(url, sort=s)[1] for s in contract.SORTS}
    ids = sorted(i["item_id"] for i in default)
    for sort, items in by_sort.items():
        assert sorted(i["item_id"] for i in items) == ids, sort
        assert sandbox_client.search(url, sort=sort).json()["data"]["sort"] == sort
    assert [i["item_id"] for i in by_sort["default"]] == [i["item_id"] for i in default]
    prices_up = [Decimal(i["price"]) for i in by_sort["price_up"]]
    assert prices_up == sorted(prices_up) and prices_up[0] < prices_up[-1]
    prices_down = [Decimal(i["price"]) for i in by_sort["price_down"]]
    assert prices_down == sorted(prices_down, reverse=True)
    sales = [i["sale_info"]["sale_quantity"] for i in by_sort["sales"]]
    assert sales == sorted(sales, reverse=True)
    assert [i["item_id"] for i in by_sort["price_up"]] != [i["item_id"] for i in default]


FILTER_TEST = {
    "support_dropshipping": lambda i: i["price_info"]["drop_ship_price"] != "",
    "is_factory": lambda i: i["shop_info"]["is_factory"],
    "verified_supplier": lambda i: i["shop_info"]["tp_member"],
    "free_shipping": lambda i: i["delivery_info"]["free_postage"],
    "new_arrival": lambda i: i["super_new_product"],
}


@pytest.mark.parametrize("name", contract.FILTERS)
def test_each_filter_narrows_consistently(sandbox_client: SandboxClient, name: str) -> None:
    url = img(120, "filter")
    total_all, everything = sandbox_client.all_items(url)
    total, kept = sandbox_client.all_items(url, **{name: "true"})
    expected = [i["item_id"] for i in everything if FILTER_TEST[name](i)]
    assert total == len(kept) == len(expected) and 0 < total < total_all
    assert [i["item_id"] for i in kept] == expected
    assert all(FILTER_TEST[name](i) for i in kept)
    echoed = sandbox_client.search(url, **{name: "true"}).json()["data"]["filters"]
    assert echoed == {name: True}
    # false applies no filter, and is echoed as given
    off = sandbox_client.search(url, **{name: "false"}).json()["data"]
    assert off["total_count"] == total_all and off["filters"] == {name: False}


def test_filters_combine_with_sort(sandbox_client: SandboxClient) -> None:
    url = img(200, "combo")
    total, items = sandbox_client.all_items(url, is_factory=1, free_shipping=1, sort="price_up")
    assert total == len(items) > 0
    assert all(i["shop_info"]["is_factory"] and i["delivery_info"]["free_postage"] for i in items)
    prices = [Decimal(i["price"]) for i in items]
    assert prices == sorted(prices)
    data = sandbox_client.search(url, is_factory=1, free_shipping=1).json()["data"]
    assert data["filters"] == {"is_factory": True, "free_shipping": True}


# -- conversion ------------------------------------------------------------------------------
def test_conversion_is_stable_and_searchable(sandbox_client: SandboxClient) -> None:
    url = "https://example.com/photos/shoe.jpg"
    first = sandbox_client.convert(url, search_api_endpoint=contract.CONVERT_SEARCH_ENDPOINT)
    assert first.status == 200
    body = first.json()
    assert body["code"] == 200 and body["msg"] == "success"
    path = body["data"]["image_url"]
    assert path.startswith("/search/imgextra/") and path.endswith(".jpg")
    assert sandbox_client.convert(url).json()["data"]["image_url"] == path
    assert sandbox_client.convert(url + "?v=2").json()["data"]["image_url"] != path
    search = sandbox_client.search(path)
    assert search.status == 200 and search.body == sandbox_client.search(path).body


def test_conversion_keeps_identity_and_total_hint(sandbox_client: SandboxClient) -> None:
    source = img(41, "convert-me")
    path = sandbox_client.convert(source).json()["data"]["image_url"]
    assert path.endswith("_total-41.jpg")
    assert sandbox_client.search(path, page=3).json()["data"] == sandbox_client.search(source, page=3).json()["data"]
    assert sandbox_client.search(path).json()["data"]["total_count"] == 41


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{}", "url"),
        (b'{"url": ""}', "url"),
        (b'{"url": "ftp://example.com/a.jpg"}', "url"),
        (b'{"url": 42}', "url"),
        (b'{"url": "https://example.com/a.jpg", "search_api_endpoint": "/nope"}', "search_api_endpoint"),
        (b"not json", "body"),
        (b'["https://example.com/a.jpg"]', "body"),
    ],
)
def test_conversion_bad_body_is_422(sandbox_client: SandboxClient, raw: bytes, param: str) -> None:
    assert_error(sandbox_client.convert(raw=raw), 422, param + ":")


def test_conversion_denied(sandbox_client: SandboxClient) -> None:
    for _ in range(2):  # denied for good
        answer = sandbox_client.convert("https://denied.example.com/a.jpg")
        assert answer.status == 422
        assert answer.json() == {"code": 422, "msg": "Access to the image has been denied", "data": None}


def test_conversion_times_out_once(sandbox_client: SandboxClient) -> None:
    url = "https://slow.example.com/a.jpg"
    assert sandbox_client.convert(url).json() == {"code": 422, "msg": "Image URL request timed out", "data": None}
    assert sandbox_client.convert(url).json()["data"]["image_url"].startswith("/search/imgextra/")
    assert sandbox_client.convert(url).status == 200
    other = sandbox_client.convert("https://slow.example.com/b.jpg")
    assert other.json()["msg"] == "Image URL request timed out"


def test_conversion_accepts_header_token(sandbox: SandboxThread) -> None:
    req = urllib.request.Request(
        sandbox.base_url + contract.CONVERT_PATH,
        data=b'{"url": "https://example.com/h.jpg"}',
        method="POST",
        headers={contract.TOKEN_HEADER: SANDBOX_TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200
    client = SandboxClient(sandbox, token=None)
    assert client.convert("https://example.com/h.jpg").json() == {"message": contract.MSG_NO_KEY}

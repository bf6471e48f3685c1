"""The best offers, the supplier ranking and the sourcing workbook, on small hand-made records.

Records with `input`/`input_row`/`converted` (CONTRACT.md) and records without them (a plain
URL list, no currency) both go through; the workbook is read back with openpyxl.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.report_data import failure, record
from tmapi_spiders.items import FailureItem, ProductItem
from tmapi_spiders.spreadsheets import sourcing, workbook
from tmapi_spiders.spreadsheets.exporter import XlsxItemExporter

A, B, C = (f"https://img.example/{name}.jpg" for name in ("a", "b", "c"))


def offer(query: str, rank: int, price: str, member: str, name: str = "", **fields: Any) -> dict[str, Any]:
    r = record(query, rank=rank, price=price, **fields)
    r["shop_info"]["member_id"] = member
    r["shop_info"]["company_name"] = name or f"Shop {member}"
    return r


def with_input(r: dict[str, Any], row: int, sku: str, qty: int | None = 10) -> dict[str, Any]:
    r["input"] = {"sku": sku, "qty": qty, "note": None}
    r["input_row"] = row
    return r


def converted(r: dict[str, Any], rate: float = 0.1385, currency: str = "USD") -> dict[str, Any]:
    price = round(float(r["price"]) * rate, 4)
    r["converted"] = {
        "currency": currency,
        "rate": rate,
        "price": price,
        "price_info": {"drop_ship_price": None, "wholesale_price": price, "origin_price": price},
        "quantity_prices": [{"begin_num": "2", "end_num": "", "price": price}],
    }
    return r


def collection(records: list[dict[str, Any]], failures: list[dict[str, Any]] = ()) -> sourcing.Collection:
    c = sourcing.Collection()
    for r in records:
        c.add_product(r)
    for f in failures:
        c.add_failure(f)
    return c


# -- the choice ------------------------------------------------------------------------------


def test_choice_defaults_and_arguments() -> None:
    assert sourcing.choice_from({}) == sourcing.Choice(3, "rank", None, None, 0)
    choice = sourcing.choice_from(
        {"best": "5", "best_by": "Price", "max_price": "20.5", "max_moq": "100", "badges": "factory, verified"}
    )
    assert choice == sourcing.Choice(5, "price", 20.5, 100, sourcing.BADGES["factory"] | sourcing.BADGES["verified"])
    assert choice.describe() == "best 5 by price; price at most 20.5 CNY; MOQ at most 100; badges: factory, verified"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"best_by": "cheapest"}, "bad argument best_by: 'cheapest' is not one of rank, price, sales"),
        ({"best": "0"}, "bad argument best: 0 must be between 1 and 20"),
        ({"best": "three"}, "bad argument best: 'three' is not a whole number"),
        ({"max_price": "cheap"}, "bad argument max_price: 'cheap' is not a price above 0 (CNY)"),
        ({"max_moq": "-1"}, "bad argument max_moq: -1 must be at least 1"),
        ({"badges": "factory,shiny"}, "bad argument badges: 'shiny' is not one of factory, verified"),
    ],
)
def test_bad_choice_is_one_line_naming_the_argument(args: dict[str, str], message: str) -> None:
    with pytest.raises(sourcing.ChoiceError) as caught:
        sourcing.choice_from(args)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


# -- the supplier ranking ----------------------------------------------------------------------


def small_case() -> list[dict[str, Any]]:
    """Three products; S2 has all three, S1 two (two offers for A), S3 one, S4 one but cheaper."""
    return [
        offer(A, 1, "12.00", "S1"),
        offer(A, 2, "10.00", "S1"),
        offer(B, 1, "5.00", "S1"),
        offer(A, 3, "30.00", "S2", factory=True),
        offer(B, 2, "31.00", "S2"),
        offer(C, 1, "32.00", "S2"),
        offer(C, 2, "9.00", "S3"),
        offer(C, 3, "8.00", "S4"),
    ]


def test_suppliers_ranked_by_products_matched_then_sum_of_lowest_prices() -> None:
    ranked = sourcing.rank_suppliers(collection(small_case()).offers)
    # By hand: S2 matches 3 products, S1 2 (A at its lowest 10.00, B 5.00), S4 and S3 one
    # each: S4's 8.00 sums lower than S3's 9.00.
    assert [s.member_id for s in ranked] == ["S2", "S1", "S4", "S3"]
    assert [len(s.products) for s in ranked] == [3, 2, 1, 1]
    s1 = ranked[1]
    assert {image: o.price for image, o in s1.products.items()} == {A: 10.0, B: 5.0}
    assert s1.total == 15.0
    assert sourcing.badge_names(ranked[0].badges) == ["factory"]


def test_suppliers_count_only_offers_within_the_filters() -> None:
    offers = collection(small_case()).offers
    cheap = sourcing.rank_suppliers(offers, sourcing.choice_from({"max_price": "12"}))
    assert [(s.member_id, len(s.products)) for s in cheap] == [("S1", 2), ("S4", 1), ("S3", 1)]
    factories = sourcing.rank_suppliers(offers, sourcing.choice_from({"badges": "factory"}))
    assert [(s.member_id, len(s.products)) for s in factories] == [("S2", 1)]


# -- the best offers ---------------------------------------------------------------------------


def test_best_offers_by_rank_price_and_sales() -> None:
    records = [
        offer(A, 1, "20.00", "S1", sold=5),
        offer(A, 2, "10.00", "S2", sold=50),
        offer(A, 3, "15.00", "S3", sold=500),
    ]
    c = collection(records)
    by = {how: [o.rank for o in sourcing.best_offers(c, sourcing.Choice(2, how))[0].offers] for how in sourcing.BEST_BY}
    assert by == {"rank": [1, 2], "price": [2, 3], "sales": [3, 2]}


def test_best_says_why_a_product_has_none() -> None:
    c = collection(
        [offer(A, 1, "50.00", "S1"), offer(B, 1, "5.00", "S1")],
        [failure(C, stage="search", status=500, message="gateway error"), failure(B, stage="search", status=500)],
    )
    c.add_result({"query_image_url": "https://img.example/empty.jpg", "status": "done", "items": 0})
    c.add_result({"query_image_url": "https://img.example/late.jpg", "status": "unfinished"})
    rows = {
        b.product.image.rsplit("/", 1)[-1]: b
        for b in sourcing.best_offers(c, sourcing.choice_from({"max_price": "10"}))
    }
    assert {name: b.status for name, b in rows.items()} == {
        "a.jpg": "none within the filters",
        "b.jpg": "partial",
        "c.jpg": "failed",
        "empty.jpg": "no match",
        "late.jpg": "not searched",
    }
    assert rows["c.jpg"].reason == "search 500: gateway error"
    assert rows["a.jpg"].reason == "1 offers, none with best 3 by rank; price at most 10 CNY"
    assert [o.price for o in rows["b.jpg"].offers] == [5.0]


def test_products_follow_their_spreadsheet_rows_and_keep_the_first_rows_input() -> None:
    c = collection(
        [
            with_input(offer(B, 1, "5.00", "S1"), 3, "SKU-B"),
            with_input(offer(A, 1, "9.00", "S1"), 2, "SKU-A", qty=None),
            with_input(offer(A, 2, "8.00", "S2"), 7, "SKU-A-again"),
        ]
    )
    products = c.ordered_products()
    assert [(p.input_row, (p.input or {}).get("sku")) for p in products] == [(2, "SKU-A"), (3, "SKU-B")]
    assert list(c.input_columns) == ["sku", "qty", "note"]
    assert products[0].label() == "row 2 (SKU-A)"
    assert sourcing.Product("https://img.example/x/mug.jpg").label() == "mug.jpg"


def test_converted_prices_are_read_from_the_record() -> None:
    c = collection([converted(offer(A, 1, "10.00", "S1")), offer(B, 1, "4.00", "S1")])
    assert c.offers[0].converted == ("USD", 1.385, 1.385)
    assert c.offers[1].converted is None
    assert c.rates == {("USD", 0.1385): 1}


# -- the workbook ------------------------------------------------------------------------------


def read(path: Path | io.BytesIO) -> dict[str, list[list[Any]]]:
    book = load_workbook(path)
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in book.worksheets}


def test_workbook_with_input_and_converted_prices(tmp_path: Path) -> None:
    records = [
        with_input(converted(r), {A: 2, B: 3, C: 4}[r["query_image_url"]], r["query_image_url"][-5])
        for r in small_case()
    ]
    c = collection(records, [])
    out = tmp_path / "sourcing.xlsx"
    workbook.write(c, sourcing.Choice(best=2), str(out), "products.jsonl")
    book = load_workbook(out)
    assert book.sheetnames == ["offers", "best", "suppliers", "about"]
    offers = book["offers"]
    assert offers.freeze_panes == "A2"
    assert offers.auto_filter.ref == "A1:U9"
    header = [cell.value for cell in offers[1]]
    assert header[:4] == ["sheet row", "sku", "qty", "note"]
    assert header[header.index("price from (CNY)") : header.index("price from (CNY)") + 4] == [
        "price from (CNY)",
        "price to (CNY)",
        "price from (USD)",
        "price to (USD)",
    ]
    first = {name: cell for name, cell in zip(header, offers[2], strict=True)}
    assert first["sheet row"].value == 2 and first["sku"].value == "a"
    assert first["price from (CNY)"].value == 12.0 and first["price from (USD)"].value == 1.662
    assert first["link"].hyperlink.target == records[0]["product_url"]
    best = read(out)["best"]
    assert best[0][:9] == [
        "sheet row",
        "sku",
        "qty",
        "note",
        "query image",
        "status",
        "reason",
        "offers found",
        "within the filters",
    ]
    # Product A's two best by rank: rank 1 (S1, 12.00) and rank 2 (S1, 10.00).
    assert best[1][4:6] == [A, "ok"] and best[1][10] == 12.0
    suppliers = read(out)["suppliers"]
    assert [row[1] for row in suppliers[1:]] == ["S2", "S1", "S4", "S3"]
    assert suppliers[2][2:6] == [2, 3, "row 2 (a): 10; row 3 (b): 5", 15.0]
    about = dict((row[0], row[1]) for row in read(out)["about"])
    assert about["currency rate"] == "1 CNY = 0.1385 USD (8 offers)"


def test_workbook_of_records_without_input_or_currency(tmp_path: Path) -> None:
    out = tmp_path / "plain.xlsx"
    workbook.write(collection(small_case(), [failure("https://img.example/d.jpg")]), sourcing.Choice(), str(out))
    sheets = read(out)
    assert sheets["offers"][0][0] == "query image"
    assert not any("USD" in str(name) for name in sheets["offers"][0])
    assert sheets["best"][-1][:3] == ["https://img.example/d.jpg", "failed", "convert 403: Access denied"]
    assert dict((r[0], r[1]) for r in sheets["about"])["currency rate"].startswith("none")


def test_exporter_builds_the_workbook_at_finish() -> None:
    file = io.BytesIO()
    exporter = XlsxItemExporter(file)
    exporter.start_exporting()
    for r in small_case():
        exporter.export_item(ProductItem(r))
    exporter.export_item(FailureItem(failure("https://img.example/d.jpg")))
    assert file.getvalue() == b""  # nothing is written before the end
    exporter.finish_exporting()
    sheets = read(io.BytesIO(file.getvalue()))
    assert len(sheets["offers"]) == 1 + 8
    assert [row[1] for row in sheets["best"][1:]] == ["ok", "ok", "ok", "failed"]


def test_a_long_title_is_cut_to_a_cells_limit(tmp_path: Path) -> None:
    out = tmp_path / "long.xlsx"
    workbook.write(collection([offer(A, 1, "1.00", "S1", title="x" * 40_000)]), sourcing.Choice(), str(out))
    assert len(read(out)["offers"][1][2]) == 500  # the report's reading keeps a card's length


def test_an_xlsx_feed_gets_failures_too_and_is_written_whole() -> None:
    from scrapy.settings import Settings

    from tmapi_spiders.crawl import feeds

    settings = Settings({"FEEDS": {"out/sourcing.xlsx": {"format": "xlsx"}, "out/p.jsonl": {"format": "jsonlines"}}})
    feeds.configure(settings, "image_search")
    wanted = settings.getdict("FEEDS")
    assert wanted["out/sourcing.xlsx"]["item_classes"] == [feeds.PRODUCTS, feeds.FAILURES]
    assert wanted["out/sourcing.xlsx"]["overwrite"] is True  # `-o` cannot append to a zip
    assert wanted["out/p.jsonl"]["item_classes"] == [feeds.PRODUCTS]
    # The failures feed is still written beside the first feed: the workbook is not one.
    assert wanted["out/sourcing.failures.jsonl"]["item_classes"] == [feeds.FAILURES]
    assert [feeds.failures_only(o) for o in wanted.values()] == [False, False, True]

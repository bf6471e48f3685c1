"""A products feed read for a diff: each record reduced to the few fields compared, as it is read.

Offers are keyed by query image and item_id; a torn line or a record that is not ours is
counted, not fatal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

# Supplier badges compared between runs (shop_info fields, booleans in the API's answers).
BADGES = ("is_gold_supplier", "tp_member", "is_factory", "is_super_factory", "factory_inspection")
# Sales figures compared between runs (sale_info fields).
SALES = ("sale_quantity", "sale_quantity_month", "sale_quantity_90days", "orders_count")


@dataclass(frozen=True, slots=True)
class Offer:
    """The fields of one offer that a diff compares (and shows)."""

    item_id: str
    title: str
    product_url: str
    price: float | None
    price_text: str
    tiers: tuple[tuple[str, float | None], ...]  # (begin_num, price) in the record's order
    moq: int | None
    sales: tuple[float | None, ...]  # SALES, in order
    repurchase: float | None
    rank: int | None
    badges: tuple[Any, ...]  # BADGES, in order
    member_id: str
    company: str


@dataclass(slots=True)
class Product:
    """One query image of a run: its spreadsheet row (when the list was one) and its offers."""

    query: str
    input: Any = None
    input_row: Any = None
    offers: dict[str, Offer] = field(default_factory=dict)


@dataclass(slots=True)
class Run:
    """A products feed, reduced. `torn` and `foreign` count lines that were skipped."""

    products: dict[str, Product] = field(default_factory=dict)
    lines: int = 0
    torn: int = 0
    foreign: int = 0
    failures: int = 0  # failure records (an image that could not be searched) seen in the feed

    @property
    def offers(self) -> int:
        return sum(len(p.offers) for p in self.products.values())


def number(value: Any) -> float | None:
    """A price, rate or count as a float: "19.00", 19, "12.5%", "0.3"; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip().rstrip("%").replace(",", "")
        try:
            result = float(text)
        except ValueError:
            return None
        return result if math.isfinite(result) else None
    return None


def _int(value: Any) -> int | None:
    n = number(value)
    return int(n) if n is not None and n == int(n) else None


def offer_of(record: Mapping[str, Any]) -> Offer:
    """The compared fields of a product record (missing or odd fields become None)."""
    shop = record.get("shop_info") if isinstance(record.get("shop_info"), dict) else {}
    sale = record.get("sale_info") if isinstance(record.get("sale_info"), dict) else {}
    tiers_raw = record.get("quantity_prices") if isinstance(record.get("quantity_prices"), list) else []
    tiers = tuple((str(t.get("begin_num", "")), number(t.get("price"))) for t in tiers_raw if isinstance(t, dict))
    price = record.get("price")
    return Offer(
        item_id=str(record["item_id"]),
        title=str(record.get("title") or ""),
        product_url=str(record.get("product_url") or ""),
        price=number(price),
        price_text="" if price is None else str(price),
        tiers=tiers,
        moq=_int(record.get("quantity_begin")),
        sales=tuple(number(sale.get(name)) for name in SALES),
        repurchase=number(record.get("item_repurchase_rate")),
        rank=_int(record.get("rank")),
        badges=tuple(shop.get(name) for name in BADGES),
        member_id=str(shop.get("member_id") or ""),
        company=str(shop.get("company_name") or ""),
    )


def is_product(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("query_image_url"), str) and "item_id" in record


def is_failure(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("query_image_url"), str) and "stage" in record


def read_lines(lines: Iterable[bytes]) -> Run:
    """A Run from a feed's lines. A line that is not JSON (a torn last line, a crash mid-write)
    is counted in `torn`, a JSON line that is not one of our product records in `foreign`;
    neither stops the reading. The first record of an offer (image, item_id) is kept."""
    run = Run()
    for line in lines:
        if not line.strip():
            continue
        run.lines += 1
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            run.torn += 1
            continue
        if is_failure(record):
            run.failures += 1
            _product_of(run, record)
            continue
        if not is_product(record):
            run.foreign += 1
            continue
        product = _product_of(run, record)
        offer = offer_of(record)
        product.offers.setdefault(offer.item_id, offer)
    return run


def _product_of(run: Run, record: Mapping[str, Any]) -> Product:
    query = record["query_image_url"]
    product = run.products.get(query)
    if product is None:
        product = run.products[query] = Product(query, record.get("input"), record.get("input_row"))
    return product

"""One product record as the page's short offer row (`O_*` positions, as in `static/report.js`).

Outside data is made harmless here: strings cut to a card's length, URLs not http(s) dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from tmapi_spiders.crawl.seeds import MAX_URL_LENGTH

# Positions in an offer row (the page's script uses the same numbers).
O_ID, O_URL, O_TITLE, O_ORIGIN, O_IMG, O_PMIN, O_PMAX, O_TIERS = 0, 1, 2, 3, 4, 5, 6, 7
O_MOQ, O_SOLD, O_ORDERS, O_REPURCHASE, O_SUPPLIER, O_YEARS, O_LOCATION, O_BADGES, O_RANK = range(8, 17)

# Badge bits, in the order the page shows them.
FACTORY, VERIFIED, DROPSHIP, FREE_SHIPPING, NEW_ARRIVAL = 1, 2, 4, 8, 16

# The product page URL of almost every offer: stored as 0, rebuilt in the page from the id.
STANDARD_OFFER_URL = "https://detail.1688.com/offer/{}.html"
MAX_TEXT = 500  # characters kept of a title, supplier or location: a card is not a document

# A number as the API writes one: no underscores, no other scripts' digits (float() takes both).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Whitespace, controls and the characters that end an HTML attribute or a CSS url().
_NOT_IN_URLS = re.compile(r'[\x00-\x20\x7f"<>\\`]')


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """Any scalar as display text ("" for null, objects and lists: never a Python repr on a card)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value)[:limit]


def safe_url(value: Any) -> str | None:
    """An http(s) URL with a host, or None: nothing else may become a link or an image source."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH or _NOT_IN_URLS.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def number(value: Any) -> float | None:
    """A price or count from the API's decimal strings (ASCII digits, as JSON writes numbers), or None
    when it is not one or is beyond a float (a price of 1e400 would rank as infinite)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip().rstrip("%")
        value = float(text) if _DECIMAL.fullmatch(text) else None
    if not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:  # an integer beyond a float's range
        return None
    return result if math.isfinite(result) else None


def count(value: Any) -> int | None:
    n = number(value)
    return int(n) if n is not None and n >= 0 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def badges(record: dict[str, Any]) -> int:
    """The badge bits, decided as the query filters decide them (docs/sandbox.md, "The data rules")."""
    shop = _dict(record.get("shop_info"))
    flags = (
        (FACTORY, shop.get("is_factory") is True or shop.get("is_super_factory") is True),
        (VERIFIED, shop.get("tp_member") is True),
        (DROPSHIP, _dict(record.get("price_info")).get("drop_ship_price") not in (None, "")),
        (FREE_SHIPPING, _dict(record.get("delivery_info")).get("free_postage") is True),
        (NEW_ARRIVAL, record.get("super_new_product") is True),
    )
    return sum(bit for bit, on in flags if on)


def repurchase(value: Any) -> str:
    """`"0.6"` (a fraction) -> `"60%"`; `"31.6%"` stays; anything else is dropped."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return text(value.strip(), 12) if number(value) is not None else ""
    n = number(value)
    if n is None or n < 0:
        return ""
    return f"{n * 100:.4g}%" if n <= 1 else f"{n:.4g}%"


def offer_row(record: dict[str, Any]) -> list[Any]:
    """One product record as the page's short array (positions O_*)."""
    item_id = record.get("item_id")
    item_id = item_id if isinstance(item_id, int) and not isinstance(item_id, bool) else text(item_id, 40)
    url = safe_url(record.get("product_url"))
    stored_url: str | int | None = 0 if url is not None and url == STANDARD_OFFER_URL.format(item_id) else url
    tiers: list[list[str]] = []
    prices: list[float] = []
    main = number(record.get("price"))
    if main is not None:
        prices.append(main)
    for tier in record.get("quantity_prices") if isinstance(record.get("quantity_prices"), list) else ():
        tier = _dict(tier)
        price = number(tier.get("price"))
        if price is None:
            continue
        prices.append(price)
        tiers.append([text(tier.get("begin_num"), 20), text(tier.get("end_num"), 20), text(tier.get("price"), 20)])
    sale, shop = _dict(record.get("sale_info")), _dict(record.get("shop_info"))
    sold = count(sale.get("sale_quantity"))
    if sold is None:
        sold = count(sale.get("sale_quantity_90days"))
    location = shop.get("location") or _dict(record.get("delivery_info")).get("area_from")
    where = ", ".join(text(p, 80) for p in location if text(p, 80)) if isinstance(location, list) else text(location)
    return [
        item_id,
        stored_url,
        text(record.get("title")),
        text(record.get("title_origin")),
        safe_url(record.get("img")),
        min(prices) if prices else None,
        max(prices) if prices else None,
        tiers,
        count(record.get("quantity_begin")),
        sold,
        count(sale.get("orders_count")),
        repurchase(record.get("item_repurchase_rate")),
        text(shop.get("company_name")),
        count(shop.get("tp_year")),
        where[:MAX_TEXT],
        badges(record),
        count(record.get("rank")),
    ]

"""The sandbox's later "days": offers whose price, MOQ, sales or badge move, and offers
replaced by others, deterministically, so a watch over several runs can be tested.

Day 0 is the catalogue as it always was. Day N applies the changes of days 1..N in turn,
each a pure function of (item_id, day): the same item on the same day always moves the
same way, in every process. The order of a page is the catalogue's and does not change
(sorting and filtering read the day-0 figures), so ranks stay where they were. Tests read
`kind_of` to know what was planted; it does not depend on the crawler's code.
"""

from __future__ import annotations

import hashlib
from typing import Any

# What happens to an item on a day, by a byte of its hash: 6 of 25 items move each day.
KINDS = ("replaced", "price_drop", "price_rise", "moq", "badge", "sales")
SHARE = 25
DROP_PERCENT = 12  # a price drop takes 12% off every price of the offer (cents, rounded down)
RISE_PERCENT = 8  # a price rise adds 8%
SALES_STEP = 10  # sales (sale_quantity and orders_count) grow by this much


def _hash(item_id: int, day: int) -> bytes:
    return hashlib.blake2b(b"day:%d:%d" % (day, item_id), digest_size=8).digest()


def kind_of(item_id: int, day: int) -> str | None:
    """What happens to `item_id` on `day` (>= 1): one of KINDS, or None (nothing)."""
    n = _hash(item_id, day)[0] % SHARE
    return KINDS[n] if n < len(KINDS) else None


def replacement(item_id: int, day: int) -> int:
    """The offer that takes a replaced item's place on `day` (an id in the catalogue's range)."""
    return 100_000_000_000 + int.from_bytes(_hash(item_id, day)[1:], "big") % 900_000_000_000


def scaled(price: Any, percent: int) -> Any:
    """A price string times (100 + percent)/100, in whole cents rounded down; other values as they are."""
    if not isinstance(price, str) or not price:
        return price
    try:
        cents = round(float(price) * 100)
    except ValueError:
        return price
    whole, part = divmod(cents * (100 + percent) // 100, 100)
    return f"{whole}.{part:02d}"


def reprice(item: dict[str, Any], percent: int) -> None:
    item["price"] = scaled(item.get("price"), percent)
    info = item.get("price_info")
    if isinstance(info, dict):
        for name in ("drop_ship_price", "wholesale_price", "origin_price"):
            if name in info:
                info[name] = scaled(info[name], percent)
    for tier in item.get("quantity_prices") or ():
        if isinstance(tier, dict):
            tier["price"] = scaled(tier.get("price"), percent)


def apply(item: dict[str, Any], day: int) -> dict[str, Any]:
    """The item as it stands on `day` (changed in place and returned)."""
    for d in range(1, day + 1):
        kind = kind_of(int(item["item_id"]), d)
        if kind == "replaced":
            new_id = replacement(int(item["item_id"]), d)
            item["item_id"] = new_id
            item["product_url"] = f"https://detail.1688.com/offer/{new_id}.html"
        elif kind == "price_drop":
            reprice(item, -DROP_PERCENT)
        elif kind == "price_rise":
            reprice(item, RISE_PERCENT)
        elif kind == "moq":
            item["quantity_begin"] = int(item.get("quantity_begin") or 1) + 1
        elif kind == "badge":
            shop = item.get("shop_info")
            if isinstance(shop, dict):
                shop["tp_member"] = not shop.get("tp_member")
        elif kind == "sales":
            sale = item.get("sale_info")
            if isinstance(sale, dict):
                for name in ("sale_quantity", "orders_count"):
                    sale[name] = int(sale.get(name) or 0) + SALES_STEP
    return item

"""Prices in the user's currency, at the rate the user gives (`-a currency=USD -a rate=0.1385`).

Every product record keeps the API's CNY prices as they came (exact strings) and gains
`converted`: the currency, the rate, and each price times the rate as a JSON number
rounded to 4 decimal places (half up, as a price is rounded by hand), null where the
CNY value is missing or not a number. No rate is looked up: the figures depend only on
the record and the rate written in the run's summary.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

PRICE_INFO_FIELDS = ("drop_ship_price", "wholesale_price", "origin_price")
_PLACES = Decimal("0.0001")


def convert_price(value: Any, rate: Decimal) -> float | None:
    """One CNY price (the API's string, or a number) times `rate`, rounded to 4 places."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return float((amount * rate).quantize(_PLACES, rounding=ROUND_HALF_UP))


def rate_decimal(rate: float) -> Decimal:
    """The rate as the user wrote it (0.1385 stays 0.1385, not its binary approximation)."""
    return Decimal(repr(rate))


def converted(record: dict[str, Any], currency: str, rate: float, exact_rate: Decimal | None = None) -> dict[str, Any]:
    """A product record's `converted` field (record fields: price, price_info, quantity_prices)."""
    factor = exact_rate if exact_rate is not None else rate_decimal(rate)
    info = record.get("price_info")
    info = info if isinstance(info, dict) else {}
    tiers = record.get("quantity_prices")
    return {
        "currency": currency,
        "rate": rate,
        "price": convert_price(record.get("price"), factor),
        "price_info": {name: convert_price(info.get(name), factor) for name in PRICE_INFO_FIELDS},
        "quantity_prices": [
            {
                "begin_num": tier.get("begin_num"),
                "end_num": tier.get("end_num"),
                "price": convert_price(tier.get("price"), factor),
            }
            for tier in (tiers if isinstance(tiers, list) else ())
            if isinstance(tier, dict)
        ],
    }

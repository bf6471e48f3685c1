"""Prices in the user's currency, at the rate the user gives (`-a currency=USD -a rate=0.1385`).

Every product record keeps the API's CNY prices as they came (exact strings) and gains
`converted`: the currency, the rate, and each price times the rate as a JSON number
rounded to 4 decimal places (half up, as a price is rounded by hand), null where the
CNY value is missing or not a number. No rate is looked up: the figures depend only on
the record and the rate written in the run's summary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from tmapi_spiders.registry import ConfigError

CURRENCY_ARGS = ("currency", "rate")  # 1 CNY = rate units of currency
PRICE_INFO_FIELDS = ("drop_ship_price", "wholesale_price", "origin_price")
_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Currency:
    """`-a currency=USD -a rate=0.1385`: the user's rate (1 CNY = rate units), never looked up."""

    code: str
    rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.code, "rate": self.rate}

    @cached_property
    def exact_rate(self) -> Decimal:
        """rate_decimal(rate), worked out once for all the crawl's records."""
        return rate_decimal(self.rate)

    def convert(self, record: dict[str, Any]) -> dict[str, Any]:
        """A product record's `converted` field in this currency."""
        return converted(record, self.code, self.rate, self.exact_rate)


_CURRENCY_CODE = re.compile(r"[A-Za-z]{3}")


def currency_from(args: Mapping[str, Any]) -> Currency | None:
    """The checked currency and rate, or None when neither is given; ConfigError otherwise."""
    code, rate = args.get("currency") or None, args.get("rate") or None
    if code is None and rate is None:
        return None
    if code is None or rate is None:
        given, missing = ("currency", "rate") if rate is None else ("rate", "currency")
        raise ConfigError(
            f"-a {given} needs -a {missing} too (e.g. -a currency=USD -a rate=0.1385: 1 CNY = 0.1385 USD)"
        )
    code = str(code).strip()
    if not _CURRENCY_CODE.fullmatch(code):
        raise ConfigError(f"bad argument currency: {code!r} is not a 3-letter currency code (e.g. USD, EUR)")
    try:
        number = float(str(rate).strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"bad argument rate: {rate!r} is not a positive number (units of {code.upper()} per CNY)")
    return Currency(code.upper(), number)


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

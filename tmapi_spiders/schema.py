"""What a product record must look like to be kept (pydantic, validation only).

The model checks the fields users rely on and allows everything else through:
a field the API adds later is kept as it came, never a crash, never lost.
Records are not rebuilt from the model; prices stay the API's exact strings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

_DECIMAL = re.compile(r"^\d{1,12}(\.\d{1,6})?$")
_ABSOLUTE_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


def _decimal_string(value: Any) -> Any:
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueError("not a decimal string")
    return value


def _optional_decimal_string(value: Any) -> Any:
    return value if value in (None, "") else _decimal_string(value)


def _absolute_url(value: Any) -> Any:
    if not isinstance(value, str) or not _ABSOLUTE_URL.match(value):
        raise ValueError("not an absolute http(s) URL")
    return value


DecimalString = Annotated[str, BeforeValidator(_decimal_string)]
OptionalDecimalString = Annotated[str | None, BeforeValidator(_optional_decimal_string)]
AbsoluteUrl = Annotated[str, BeforeValidator(_absolute_url)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class PriceInfo(_Open):
    drop_ship_price: OptionalDecimalString = None
    wholesale_price: OptionalDecimalString = None
    origin_price: OptionalDecimalString = None


class QuantityPrice(_Open):
    begin_num: StrictStr | None = None
    end_num: StrictStr | None = None
    price: DecimalString


class ShopInfo(_Open):
    member_id: StrictStr | None = None
    company_name: StrictStr | None = None
    is_factory: StrictBool | None = None


class Product(_Open):
    item_id: StrictInt
    product_url: AbsoluteUrl
    title: StrictStr
    img: AbsoluteUrl
    price: DecimalString
    price_info: PriceInfo | None = None
    quantity_prices: list[QuantityPrice] | None = None
    shop_info: ShopInfo | None = None


# A real record is 3 levels deep; far deeper ones break recursive exporters (CSV, JSON).
MAX_DEPTH = 32


def too_deep(record: Any, limit: int = MAX_DEPTH) -> bool:
    """True when lists/dicts nest more than `limit` levels (checked without recursion)."""
    stack = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def invalid_reason(record: dict[str, Any]) -> str | None:
    """A short, stable reason naming the first bad field (a stats key), or None."""
    if too_deep(record):
        return "invalid_nesting"
    try:
        Product.model_validate(record)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "item"
        kind = "missing" if error["type"] == "missing" else "invalid"
        return f"{kind}_{where}"
    return None

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
    # Other fields are neither checked nor copied into the model ("allow" copied ~20 of them per
    # record into a dict nobody reads: half of pydantic's time); the record itself keeps them.
    model_config = ConfigDict(extra="ignore")


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
_CONTAINERS = (dict, list)  # a constant: `dict | list` in the loop built a new union per value


def too_deep(record: Any, limit: int = MAX_DEPTH) -> bool:
    """True when lists/dicts nest more than `limit` levels (the record is level 1).

    Recursive, but never more than `limit` calls deep (keep it far below the interpreter's
    recursion limit), and it stops at the first level too many: a walk with a stack of
    (value, depth) tuples cost more than pydantic."""
    return limit < 1 or _nests_deeper(record, limit - 1)


def _nests_deeper(value: Any, levels: int) -> bool:
    """True when a container inside `value` nests more than `levels` further levels."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    for child in value:
        if isinstance(child, _CONTAINERS) and (levels == 0 or _nests_deeper(child, levels - 1)):
            return True
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

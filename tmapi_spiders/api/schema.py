"""What a product record must look like to be kept: pydantic checks the fields users rely on and lets
the rest through; records are not rebuilt, so prices stay the API's exact strings."""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

import orjson
from pydantic import StrictBool, StrictInt, StrictStr, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

_DECIMAL = r"[0-9]{1,12}(\.[0-9]{1,6})?"
DecimalString = Annotated[StrictStr, StringConstraints(pattern=rf"^{_DECIMAL}$")]
OptionalDecimalString = Annotated[StrictStr, StringConstraints(pattern=rf"^({_DECIMAL})?$")] | None
AbsoluteUrl = Annotated[StrictStr, StringConstraints(pattern=r"^https?://[^\s/?#]+\S*$")]


# TypedDicts, not models: checked without building instances; other keys are ignored (pydantic's default).
class PriceInfo(TypedDict):
    drop_ship_price: NotRequired[OptionalDecimalString]
    wholesale_price: NotRequired[OptionalDecimalString]
    origin_price: NotRequired[OptionalDecimalString]


class QuantityPrice(TypedDict):
    begin_num: NotRequired[StrictStr | None]
    end_num: NotRequired[StrictStr | None]
    price: DecimalString


class ShopInfo(TypedDict):
    member_id: NotRequired[StrictStr | None]
    company_name: NotRequired[StrictStr | None]
    is_factory: NotRequired[StrictBool | None]


class Product(TypedDict):
    """A product record as kept (normalised by the spider)."""

    item_id: StrictInt
    product_url: AbsoluteUrl
    title: StrictStr
    img: AbsoluteUrl
    price: DecimalString
    price_info: NotRequired[PriceInfo | None]
    quantity_prices: NotRequired[list[QuantityPrice] | None]
    shop_info: NotRequired[ShopInfo | None]


_VALIDATE = TypeAdapter(Product).validator.validate_python  # pydantic-core's own, no wrapper per record


# A real record is 3 levels deep; far deeper ones break recursive exporters (CSV, JSON).
MAX_DEPTH = 32
# Below the record, containers are the JSON parser's own dicts and lists: exact types, the cheapest test.
_CONTAINER_TYPES = frozenset((dict, list))


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when lists/dicts nest more than `limit` levels (the record is level 1)."""
    if limit < 1:
        return True
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    if _CONTAINER_TYPES.isdisjoint(map(type, value)):  # the common leaf container, checked in C
        return False
    return any(type(child) in _CONTAINER_TYPES and too_deep(child, limit - 1) for child in value)


_DEEP_LINE = b"\n" + b"  " * MAX_DEPTH  # where a container at level MAX_DEPTH + 1 opens in orjson's indented text


def _may_be_too_deep(record: dict[str, Any]) -> bool:
    """False when the record's orjson text, indented 2 a level, has no _DEEP_LINE (JSON strings hold no raw
    newline): it nests at most MAX_DEPTH levels. True when orjson cannot write it (an int beyond 64 bits)."""
    try:
        return _DEEP_LINE in orjson.dumps(record, option=orjson.OPT_INDENT_2)
    except TypeError:
        return True


def invalid_reason(record: dict[str, Any]) -> str | None:
    """A short, stable reason naming the first bad field (a stats key), or None."""
    if _may_be_too_deep(record) and too_deep(record):  # the walk only for the few the text leaves open
        return "invalid_nesting"
    try:
        _VALIDATE(record)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "item"
        kind = "missing" if error["type"] == "missing" else "invalid"
        return f"{kind}_{where}"
    return None

"""What a product record must look like to be kept (pydantic, validation only).

The model checks the fields users rely on and allows everything else through:
a field the API adds later is kept as it came, never a crash, never lost.
Records are not rebuilt from the model; prices stay the API's exact strings.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, NotRequired, TypeVar

from pydantic import (
    ConfigDict,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

# Checked inside pydantic-core (Rust regex, where `$` is the end of the text): a Python
# validator per field cost a call back into the interpreter for every record.
_DECIMAL = r"[0-9]{1,12}(\.[0-9]{1,6})?"
DecimalString = Annotated[StrictStr, StringConstraints(pattern=rf"^{_DECIMAL}$")]
OptionalDecimalString = Annotated[StrictStr, StringConstraints(pattern=rf"^({_DECIMAL})?$")] | None
AbsoluteUrl = Annotated[StrictStr, StringConstraints(pattern=r"^https?://[^\s/?#]+\S*$")]
# What the spider accepts for a page, before NormalisationPipeline: a scheme-relative URL
# ("//host/...") too, which that pipeline makes "https://host/..." (so exactly the URLs that
# pass AbsoluteUrl once normalised).
UrlBeforeNormalising = Annotated[StrictStr, StringConstraints(pattern=r"^(https?:)?//[^\s/?#]+\S*$")]


# TypedDicts, not models: pydantic-core checks a dict without building five model instances
# per record (less than half the time). Other keys are neither checked nor copied; the record
# itself keeps them.
_OPEN = ConfigDict(extra="ignore")


@with_config(_OPEN)
class PriceInfo(TypedDict):
    drop_ship_price: NotRequired[OptionalDecimalString]
    wholesale_price: NotRequired[OptionalDecimalString]
    origin_price: NotRequired[OptionalDecimalString]


@with_config(_OPEN)
class QuantityPrice(TypedDict):
    begin_num: NotRequired[StrictStr | None]
    end_num: NotRequired[StrictStr | None]
    price: DecimalString


@with_config(_OPEN)
class ShopInfo(TypedDict):
    member_id: NotRequired[StrictStr | None]
    company_name: NotRequired[StrictStr | None]
    is_factory: NotRequired[StrictBool | None]


_Url = TypeVar("_Url")


@with_config(_OPEN)
class _Product(TypedDict, Generic[_Url]):
    """A product record, with `_Url` for its two URL fields: one list of fields for the record
    as kept (`Product`) and as the spider reads it off a page (`ProductBeforeNormalising`)."""

    item_id: StrictInt
    product_url: _Url
    title: StrictStr
    img: _Url
    price: DecimalString
    price_info: NotRequired[PriceInfo | None]
    quantity_prices: NotRequired[list[QuantityPrice] | None]
    shop_info: NotRequired[ShopInfo | None]


Product = _Product[AbsoluteUrl]
ProductBeforeNormalising = _Product[UrlBeforeNormalising]  # before NormalisationPipeline

_PRODUCT = TypeAdapter(Product)
# One validation for a page's items: one call into pydantic-core instead of one per record.
_PAGE = TypeAdapter(list[ProductBeforeNormalising])


# A real record is 3 levels deep; far deeper ones break recursive exporters (CSV, JSON).
MAX_DEPTH = 32
_CONTAINERS = (dict, list)  # a constant: `dict | list` in the loop built a new union per value
_CONTAINER_TYPES = frozenset(_CONTAINERS)


def too_deep(record: Any, limit: int = MAX_DEPTH) -> bool:
    """True when lists/dicts nest more than `limit` levels (the record is level 1).

    Recursive, but never more than `limit` calls deep (keep it far below the interpreter's
    recursion limit), and it stops at the first level too many: a walk with a stack of
    (value, depth) tuples cost more than pydantic."""
    return limit < 1 or _nests_deeper(record, limit - 1)


def _nests_deeper(value: Any, levels: int) -> bool:
    """True when a container inside `value` nests more than `levels` further levels.

    Most lists and objects of a record hold no container: `map(type, ...)` tells so in C,
    before any Python loop over them."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    if _CONTAINER_TYPES.isdisjoint(map(type, value)):
        return False
    for child in value:
        if isinstance(child, _CONTAINERS) and (levels == 0 or _nests_deeper(child, levels - 1)):
            return True
    return False


# A search body holds its items three levels down: the envelope, `data`, the `items` list.
ITEMS_LEVEL = 3
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"(())")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))


def json_depth(body: bytes, limit: int) -> int:
    """How deep the lists/objects of a well-formed JSON body nest (the top value is level
    1), counted up to `limit` + 1 (anything deeper reads as `limit` + 1).

    Brackets inside strings do not count. Escaped backslashes and quotes go first (JSON
    pairs backslashes from the left, as `bytes.replace` does); then everything but quotes
    and brackets. Two quotes side by side hold no bracket between them, whether they open
    and close one string or close one and open the next: dropping them keeps every bracket
    on its side, so only the few strings that hold a bracket are left to cut out (what
    remains alternates outside and inside a string at each quote). Each round of removing
    "()" then takes away exactly the innermost level. All of it runs in C: ~85 us for a
    page of 20 (27 KB), where the walk of each parsed record cost more than pydantic
    itself. Only for a body a JSON parser accepted: for broken JSON the count
    means nothing."""
    if b"\\" in body:  # a search for a byte; replace() read the whole body even with nothing to replace
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = body.translate(_OPEN_CLOSE, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in outside:
        outside = b"".join(outside.split(b'"')[::2])
    depth = 0
    while outside and depth <= limit:
        outside = outside.replace(b"()", b"")
        depth += 1
    return depth


def page_is_valid(records: list[dict[str, Any]], body: bytes) -> bool:
    """True when every record of a page passes: what invalid_reason would say of each one
    after NormalisationPipeline, in one look at the page.

    The depth bound holds for every record when the whole body nests no deeper than
    MAX_DEPTH levels below `items` (a record's level 1 is the body's level 4). False says
    only that some record may fail: the caller checks those records one by one."""
    if json_depth(body, MAX_DEPTH + ITEMS_LEVEL) > MAX_DEPTH + ITEMS_LEVEL:
        return False
    try:
        _PAGE.validate_python(records)
    except ValidationError:
        return False
    return True


def invalid_reason(record: dict[str, Any]) -> str | None:
    """A short, stable reason naming the first bad field (a stats key), or None."""
    if too_deep(record):
        return "invalid_nesting"
    try:
        _PRODUCT.validate_python(record)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "item"
        kind = "missing" if error["type"] == "missing" else "invalid"
        return f"{kind}_{where}"
    return None

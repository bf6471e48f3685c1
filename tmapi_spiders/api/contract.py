"""The TMAPI contract as data (from TMAPI's endpoint page): paths, parameters, allowed values, statuses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Paths
SEARCH_PATH = "/1688/global/search/image"
CONVERT_PATH = "/1688/tools/image/convert_url"
# What the conversion body's `search_api_endpoint` names for our search endpoint.
CONVERT_SEARCH_ENDPOINT = "/global/search/image"
# A converted image is a path on TMAPI's side, passed unchanged as `img_url`.
CONVERTED_PREFIX = "/search/"

# Auth: the endpoint page documents the query parameter; newer pages the header.
TOKEN_QUERY_PARAM = "apiToken"
TOKEN_HEADER = "apikey"

# Search parameters
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 20
LANGUAGES = ("en", "zh", "ru", "th", "pt", "es", "tr", "vi", "ja", "ko")
LANGUAGE_DEFAULT = "en"
SORTS = ("default", "sales", "price_up", "price_down")
SORT_DEFAULT = "default"
FILTERS = ("support_dropshipping", "is_factory", "verified_supplier", "free_shipping", "new_arrival")

# Hosts whose images the search recognises without conversion (subdomains included).
ALIBABA_HOSTS = ("alicdn.com", "1688.com", "alibaba.com", "aliimg.com")

# Statuses (HTTP status and, usually, the body's `code`)
OK = 200
RETRY_LATER = 417  # failed to retrieve data, try again
PARAM_ERROR = 422  # parameter error; also: image could not be fetched or recognised
NO_BALANCE = 439  # subscription expired or insufficient balance
UPSTREAM_TIMEOUT = 499  # upstream timeout
UNEXPECTED = 500
CONCURRENCY_LIMIT = 503  # API request concurrency limit exceeded
UNAUTHORIZED = 401  # gateway: no or unknown key (bare {"message": ...})

STATUS_MEANINGS = {
    RETRY_LATER: "failed to retrieve data, try again",
    PARAM_ERROR: "parameter error",
    NO_BALANCE: "subscription expired or insufficient balance",
    UPSTREAM_TIMEOUT: "upstream timeout",
    UNEXPECTED: "unexpected error",
    CONCURRENCY_LIMIT: "API request concurrency limit exceeded",
    UNAUTHORIZED: "authentication failed",
}
TRANSIENT_STATUSES = frozenset({RETRY_LATER, UPSTREAM_TIMEOUT, UNEXPECTED, CONCURRENCY_LIMIT, 502, 504, 408, 429})
NO_ROUTE = 404  # gateway: {"message": "no Route matched ..."}: TMAPI_BASE_URL is wrong
FATAL_STATUSES = frozenset({NO_BALANCE, UNAUTHORIZED, 403, NO_ROUTE})
# TMAPI's 499 text asks for a 60 s timeout.
REQUEST_TIMEOUT = 60

# Gateway messages (bare {"message": ...}, no `code`)
MSG_NO_KEY = "No API key found in request"
MSG_BAD_KEY = "Invalid authentication credentials"
MSG_NO_ROUTE = "no Route matched with those values"
MSG_NO_BALANCE = "Insufficient API balance"
# Bare gateway answers refusing the key itself (fatal); any other fails that one call.
GATEWAY_AUTH_MESSAGES = (MSG_NO_KEY.lower(), MSG_BAD_KEY.lower(), "invalid api key", "unauthorized")

# API messages (in the {"code", "msg", "data"} envelope)
MSG_IMAGE_TIMEOUT = "Image URL request timed out"  # conversion failed transiently
# A 422 with this message is transient: the next identical call succeeds.
TRANSIENT_422_MESSAGES = frozenset({MSG_IMAGE_TIMEOUT})


# A search answer's item object as documented, nested objects with their fields (the CSV columns).
ITEM_SHAPE: dict[str, Any] = {
    **dict.fromkeys("item_id product_url title title_origin img category_path price".split()),
    "price_info": dict.fromkeys(("drop_ship_price", "wholesale_price", "origin_price")),
    **dict.fromkeys(("brand", "title_tags", "quantity_begin", "quantity_prices")),
    "sale_info": dict.fromkeys(
        "gmv_fuzzy gmv_30days gmv_30days_cb sale_quantity sale_quantity_month sale_quantity_90days"
        " sale_quantity_360days orders_count".split()
    ),
    "type": None,
    "delivery_info": dict.fromkeys(("area_from", "weight", "suttle_weight", "free_postage")),
    **dict.fromkeys("item_repurchase_rate goods_score image_dsm_score primary_rank_score super_new_product".split()),
    "shop_info": dict.fromkeys(
        "login_id member_id company_name shop_url biz_type is_factory is_super_factory is_gold_supplier"
        " location service_tags tp_member tp_year factory_inspection shop_repurchase_rate".split()
    ),
}


def is_alibaba_hosted(url: str) -> bool:
    """True when the search can recognise the image without conversion."""
    if url.startswith(CONVERTED_PREFIX):
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in ALIBABA_HOSTS)


def parse_bool(value: Any) -> bool:
    """Parse a filter flag the way users write it (true/false/1/0/yes/no; a bool as itself)."""
    word = str(value).strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use one of true/false/1/0/yes/no)")


def last_page(total_count: int, page_size: int) -> int:
    """The last page that can hold results."""
    return max(0, math.ceil(total_count / page_size))


class ParamError(ValueError):
    """A search parameter outside the documented domain: "<parameter>: <why>"."""


@dataclass(frozen=True)
class SearchQuery:
    """The query arguments of one image search, as `from_args` checked them against the documented domain."""

    language: str = LANGUAGE_DEFAULT
    sort: str = SORT_DEFAULT
    page_size: int = PAGE_SIZE_DEFAULT
    filters: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> SearchQuery:
        """Build from string arguments (spider -a options, seed JSON)."""
        given = {name: value for name, value in args.items() if value not in (None, "")}
        kwargs = {name: str(given[name]).strip().lower() for name in ("language", "sort") if name in given}
        if "page_size" in given:
            kwargs["page_size"] = parse_int("page_size", given["page_size"], 1, PAGE_SIZE_MAX)
        filters = {}
        for name in FILTERS:
            if name in given:
                try:
                    filters[name] = parse_bool(given[name])
                except ValueError as exc:
                    raise ParamError(f"{name}: {exc}") from None
        for name, allowed in (("language", LANGUAGES), ("sort", SORTS)):
            if name in kwargs and kwargs[name] not in allowed:
                raise ParamError(f"{name}: {kwargs[name]!r} is not one of {', '.join(allowed)}")
        return cls(**kwargs, filters=filters)

    def to_dict(self) -> dict[str, Any]:
        return dict(language=self.language, sort=self.sort, page_size=self.page_size, filters=dict(self.filters))


def search_params(q: dict[str, Any], img_url: str, page: int) -> list[tuple[str, str]]:
    """Query parameters for one page of a query (as `SearchQuery.to_dict()` spells it, the form requests
    carry), in a stable order (stable fingerprints)."""
    out = [("img_url", img_url), ("page", str(page)), ("page_size", str(q["page_size"]))]
    out += [("language", q["language"]), ("sort", q["sort"])]
    out.extend((name, "true" if q["filters"][name] else "false") for name in FILTERS if name in q["filters"])
    return out


def parse_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ParamError(f"{name}: {value!r} is not an integer") from None
    if number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ParamError(f"{name}: {number} is out of range (an integer {bound})")
    return number

"""The sandbox's own reading of TMAPI, written from the endpoint page and TMAPI's notes.

The crawler reads the API in `tmapi_spiders/api/contract.py`; the sandbox must not share
that reading, or the end-to-end tests would only prove that the crawler agrees with
itself. So nothing here is imported from the crawler: each value is copied literally
from the documents (the endpoint page "Search for 1688 products by image
(Multilingual version)", the image URL conversion page, TMAPI's error table, and the
gateway's own wording). `tests/unit/test_two_readings.py` compares the two readings: where
they differ, one of them misread the documents.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# "API URL: GET https://api.tmapi.io/1688/global/search/image"
SEARCH_PATH = "/1688/global/search/image"
# "POST {base}/1688/tools/image/convert_url?apiToken=TOKEN", JSON body {url, search_api_endpoint}
CONVERT_PATH = "/1688/tools/image/convert_url"
# search_api_endpoint: "one of /search/image (default), /global/search/image, /global/search/image/v2"
CONVERT_SEARCH_ENDPOINTS = ("/search/image", "/global/search/image", "/global/search/image/v2")
# "data.image_url is a path, not a full URL", e.g. "/search/imgextra/1692942898123_q7ftzxs9.jpg"
CONVERTED_PREFIX = "/search/"

# "Add your apiToken to the request parameters" (and newer pages: a header `apikey`)
TOKEN_QUERY_PARAM = "apiToken"
TOKEN_HEADER = "apikey"

# Query table of the endpoint page
PAGE_DEFAULT = 1  # "page: Page number. Default value: 1"
PAGE_SIZE_DEFAULT = 20  # "page_size: Default value: 20"
PAGE_SIZE_MAX = 20  # "Max: 20."
LANGUAGES = ("en", "zh", "ru", "th", "pt", "es", "tr", "vi", "ja", "ko")  # "Optional values: ..."
LANGUAGE_DEFAULT = "en"
SORTS = ("default", "sales", "price_up", "price_down")
SORT_DEFAULT = "default"
FILTERS = ("support_dropshipping", "is_factory", "verified_supplier", "free_shipping", "new_arrival")  # boolean

# Statuses: the error table every TMAPI endpoint documents, and the gateway's own answers.
OK = 200
RETRY_LATER = 417
PARAM_ERROR = 422
NO_BALANCE = 439
UPSTREAM_TIMEOUT = 499
UNEXPECTED = 500
CONCURRENCY_LIMIT = 503
STATUS_MEANINGS = {  # the table's "meaning" column, as written
    RETRY_LATER: "failed to retrieve data, try again",
    PARAM_ERROR: "parameter error",
    NO_BALANCE: "subscription expired or insufficient balance",
    UPSTREAM_TIMEOUT: "upstream timeout",
    UNEXPECTED: "unexpected error",
    CONCURRENCY_LIMIT: "API request concurrency limit exceeded",
}

# The gateway in front of the API (Kong: its wording above) limits the rate per consumer with its
# rate-limiting plugin: HTTP 429, a bare message, and a `Retry-After` header, which RFC 9110
# (section 10.2.3) allows as delay-seconds ("120") or as an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT").
RATE_LIMITED = 429
MSG_RATE_LIMITED = "API rate limit exceeded"
RETRY_AFTER_HEADER = "Retry-After"

MSG_SUCCESS = "success"
MSG_NO_KEY = "No API key found in request"
MSG_BAD_KEY = "Invalid authentication credentials"
MSG_NO_ROUTE = "no Route matched with those values"
MSG_IMAGE_DENIED = "Access to the image has been denied"
MSG_IMAGE_TIMEOUT = "Image URL request timed out"
MSG_IMAGE_NOT_SUPPORTED = "Only images from Alibaba-affiliated platforms can be identified; convert the image URL first"

# "Only images from Alibaba-affiliated platforms can be identified": the hosts public
# clients search without conversion (Taobao and Tmall images are served from alicdn.com).
ALIBABA_HOSTS = ("alicdn.com", "1688.com", "alibaba.com", "aliimg.com")

# The one token a sandbox started without --token accepts.
SANDBOX_TOKEN = "sandbox"


def is_alibaba_hosted(img_url: str) -> bool:
    """True for a converted path or an image on an Alibaba host (subdomains included)."""
    if img_url.startswith(CONVERTED_PREFIX):
        return len(img_url) > len(CONVERTED_PREFIX)
    try:
        host = (urlsplit(img_url).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    return any(host == known or host.endswith("." + known) for known in ALIBABA_HOSTS)


def parse_bool(value: str) -> bool:
    """A boolean query value as an HTTP API reads one: true/false or 1/0, any case."""
    word = value.strip().lower()
    if word in ("true", "1"):
        return True
    if word in ("false", "0"):
        return False
    raise ValueError(value)

"""The HTML match report: each query photo beside the 1688 offers found for it.

Pure functions from records to one self-contained HTML string (`scrapy report`, and the
TMAPI_REPORT extension, are thin wrappers). The page carries its data as JSON inside a
`<script type="application/json">` block and renders cards with DOM APIs (textContent,
never innerHTML with data), a page of cards per image at a time, so a feed of 100,000
records opens and scrolls like a small one (benchmarks/RESULTS.md, "HTML report").

Offers are stored as short arrays (the `O_*` positions below, mirrored in the page's
script) rather than the records' objects: a record is about 1.7 kB of JSON, a row 0.3 kB.
Every string goes through the `Redactor` before it is embedded, and URLs that are not
http(s) are dropped here (and checked again in the page), so a hostile title stays text
and a `javascript:` URL never becomes a link.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from tmapi_spiders.redact import Redactor
from tmapi_spiders.report_page import CSS, JS

SUFFIX = ".report.html"

# Positions in an offer row (the page's script uses the same numbers).
O_ID, O_URL, O_TITLE, O_ORIGIN, O_IMG, O_PMIN, O_PMAX, O_TIERS = 0, 1, 2, 3, 4, 5, 6, 7
O_MOQ, O_SOLD, O_ORDERS, O_REPURCHASE, O_SUPPLIER, O_YEARS, O_LOCATION, O_BADGES, O_RANK = range(8, 17)

# Badge bits, in the order the page shows them.
FACTORY, VERIFIED, DROPSHIP, FREE_SHIPPING, NEW_ARRIVAL = 1, 2, 4, 8, 16

# The product page URL the API gives for almost every offer: stored as 0 and rebuilt in the
# page from the id (about 50 bytes per offer).
STANDARD_OFFER_URL = "https://detail.1688.com/offer/{}.html"
# Most thumbnails live under this prefix: stored as "^" + the rest (about 35 bytes per offer).
IMG_PREFIX = "https://cbu01.alicdn.com/img/ibank/"
# The page is drawn from a first block of data (these few images, the first screen), then
# the rest is parsed: cards show before a large report's bulk has even been read.
HEAD_IMAGES = 8
HEAD_OFFERS = 2000
MAX_TEXT = 500  # characters kept of a title, supplier or location: a card is not a document
MAX_URL = 4096  # the seed lists' own limit (seeds.py)
FAILURE_MESSAGES_SHOWN = 3


# Whitespace, controls and the characters that end an HTML attribute or a CSS url().
_NOT_IN_URLS = re.compile(r'[\x00-\x20\x7f"<>\\`]')


class ReportError(Exception):
    """Bad input for a report (missing file, malformed line): its text is the one-line cause."""


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """Any scalar as display text ("" for null, objects and lists: a record the API changed
    must not put a Python repr on a card)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    out = value if isinstance(value, str) else str(value)
    return out[:limit]


def safe_url(value: Any) -> str | None:
    """An http(s) URL with a host, or None: anything else (`javascript:`, `data:`, relative,
    control characters) must not become a link or an image source."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return None
    if _NOT_IN_URLS.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def number(value: Any) -> float | None:
    """A price or count from the API's decimal strings, or None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = Decimal(value.strip().rstrip("%"))
        except InvalidOperation:
            return None
        return float(parsed) if parsed.is_finite() else None
    return None


def count(value: Any) -> int | None:
    n = number(value)
    return int(n) if n is not None and n >= 0 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def badges(record: dict[str, Any]) -> int:
    """The five badges, decided as the query filters decide them (docs/sandbox.md, "The data rules")."""
    shop, price_info, delivery = (
        _dict(record.get("shop_info")),
        _dict(record.get("price_info")),
        _dict(record.get("delivery_info")),
    )
    bits = 0
    if shop.get("is_factory") is True or shop.get("is_super_factory") is True:
        bits |= FACTORY
    if shop.get("tp_member") is True:
        bits |= VERIFIED
    if price_info.get("drop_ship_price") not in (None, ""):
        bits |= DROPSHIP
    if delivery.get("free_postage") is True:
        bits |= FREE_SHIPPING
    if record.get("super_new_product") is True:
        bits |= NEW_ARRIVAL
    return bits


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
    for tier in record.get("quantity_prices") or () if isinstance(record.get("quantity_prices"), list) else ():
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
    rank = count(record.get("rank"))
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
        rank,
    ]


def read_jsonl(path: Path, what: str = "record", require: str = "") -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file, one a line (blank lines skipped); a missing file, a
    line that is not a JSON object, or one without the `require` field raises ReportError
    naming the file and line (another kind of file given by mistake is caught on line 1)."""
    try:
        f = open(path, "rb")  # closed by the `with` below, once read
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a JSON Lines file") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with f:
        for number_, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ReportError(f"{path} line {number_}: malformed JSON ({exc})") from None
            if not isinstance(value, dict):
                raise ReportError(f"{path} line {number_}: not a {what} (a JSON {type(value).__name__}, not an object)")
            if require and require not in value:
                raise ReportError(f"{path} line {number_}: not a {what} (no {require})")
            yield value


def read_summary(path: Path) -> dict[str, Any]:
    """The run summary (`<stem>.summary.json`); a file that is there but is not one is an error."""
    try:
        value = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except orjson.JSONDecodeError as exc:
        raise ReportError(f"{path}: malformed JSON ({exc})") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not isinstance(value, dict):
        raise ReportError(f"{path}: not a run summary (a JSON {type(value).__name__}, not an object)")
    return value


def beside(products: Path, suffix: str) -> Path:
    """`x/products.jsonl` -> `x/products<suffix>`, the way the crawl names its other files."""
    stem, dot, _ext = products.name.rpartition(".")
    return products.with_name((stem if dot and stem else products.name) + suffix)


@dataclass
class ImageGroup:
    """Everything the report shows for one query image."""

    url: str
    search_url: str = ""
    language: str = ""
    offers: list[list[Any]] = field(default_factory=list)
    pages: set[int] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)
    found: int = 0  # offers in the feed, before --top


def group(
    records: Iterable[dict[str, Any]],
    failures: Iterable[dict[str, Any]] = (),
    summary: dict[str, Any] | None = None,
    top: int | None = None,
) -> list[ImageGroup]:
    """Records grouped by query image, in the order images first appear (images known only
    from the summary or the failures feed come after); each image's offers by rank, at most
    `top` of them."""
    groups: dict[str, ImageGroup] = {}

    def of(url: Any) -> ImageGroup:
        key = text(url, MAX_URL)
        found = groups.get(key)
        if found is None:
            found = groups[key] = ImageGroup(key)
        return found

    for record in records:
        image = of(record.get("query_image_url"))
        if not image.search_url:
            image.search_url = text(record.get("search_image_url"), MAX_URL)
            image.language = text(record.get("language"), 10)
        page = count(record.get("page"))
        if page is not None:
            image.pages.add(page)
        image.offers.append(offer_row(record))
    for entry in (summary or {}).get("images") or ():
        if isinstance(entry, dict) and "query_image_url" in entry:
            of(entry["query_image_url"])
    for failure in failures:
        image = of(failure.get("query_image_url"))
        image.failures.append(failure)
        if not image.search_url:
            image.search_url = text(failure.get("search_image_url"), MAX_URL)
    for image in groups.values():
        image.found = len(image.offers)
        image.offers.sort(key=lambda row: (row[O_RANK] is None, row[O_RANK] or 0))
        if top is not None:
            del image.offers[top:]
    return list(groups.values())


def image_data(image: ImageGroup, summary_entry: dict[str, Any] | None, summary_known: bool = False) -> dict[str, Any]:
    """One image's block of the page's data: counts, status, failure messages and offers."""
    entry = summary_entry or {}
    pages = count(entry.get("pages"))
    if pages is None:
        pages = len(image.pages)
    converted = bool(image.search_url) and image.search_url != image.url
    # A refused conversion was called (and paid) too.
    conversion_called = converted or any(f.get("stage") == "convert" for f in image.failures)
    messages = [
        f"{text(f.get('stage'), 40)} {text(f.get('status'), 20)}: {text(f.get('message'))}".strip(": ")
        for f in image.failures[:FAILURE_MESSAGES_SHOWN]
    ]
    # The summary lists every image the run finished: one it does not list was left unfinished
    # (a cap, a shutdown). Without a summary only a failure record tells anything.
    status = text(entry.get("status"), 20) or ("failed" if image.failures else "unfinished" if summary_known else "")
    return {
        "u": image.url,
        "safe": safe_url(image.url),
        "s": image.search_url if converted else "",
        "l": image.language,
        "status": status,
        "reason": text(entry.get("reason")),
        "total": count(entry.get("total_count")),
        "found": image.found,
        "pages": pages,
        # A conversion is one paid call, each page one more (the run's exact total is in the header).
        "calls": pages + (1 if conversion_called else 0),
        "failures": len(image.failures),
        "fm": messages,
        "o": image.offers,
    }


def summary_header(summary: dict[str, Any] | None, groups: list[ImageGroup]) -> dict[str, Any]:
    """The run summary the header shows, or what the records tell when there is none."""
    if summary is None:
        return {
            "totals": {
                "images": len(groups),
                "items": sum(g.found for g in groups),
                "pages": sum(len(g.pages) for g in groups),
            }
        }
    keep = ("spider", "finish_reason", "started_at", "finished_at", "max_calls", "job")
    header: dict[str, Any] = {name: summary.get(name) for name in keep if summary.get(name) is not None}
    totals = summary.get("totals")
    if not isinstance(totals, dict):
        totals = {}
    header["totals"] = {k: v for k, v in totals.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return header


def report_data(
    records: Iterable[dict[str, Any]],
    failures: Iterable[dict[str, Any]] = (),
    summary: dict[str, Any] | None = None,
    top: int | None = None,
    source: str = "products.jsonl",
    secrets: Iterable[str | None] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the page needs, redacted: the run header and each image with its offers."""
    groups = group(records, failures, summary, top)
    entries: dict[str, dict[str, Any]] = {}
    for entry in (summary or {}).get("images") or ():
        if isinstance(entry, dict):
            entries[text(entry.get("query_image_url"), MAX_URL)] = entry
    data = {
        "source": source,
        "generated": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "top": top,
        "run": summary_header(summary, groups),
        "failures": sum(len(g.failures) for g in groups),
        "images": [image_data(g, entries.get(g.url), summary is not None) for g in groups],
    }
    return Redactor(secrets).value(data)


def script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: `<`, `>` and `&` only occur inside JSON
    strings, where their \\u escapes mean the same, so neither `</script>` nor `<!--` can end
    or change the block."""
    raw = orjson.dumps(data)
    return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026").decode("utf-8")


def pack(images: list[dict[str, Any]]) -> dict[str, Any]:
    """Images as embedded: suppliers and places (repeated across offers) as indexes into one
    string table, thumbnails under IMG_PREFIX shortened, single price tiers dropped (the price
    says it). The page's `prepare` undoes the first; the rest it reads as they are."""
    table: dict[str, int] = {}

    def index(value: str) -> int:
        return table.setdefault(value, len(table))

    packed = []
    for image in images:
        rows = []
        for row in image["o"]:
            row = list(row)
            row[O_SUPPLIER], row[O_LOCATION] = index(row[O_SUPPLIER]), index(row[O_LOCATION])
            img = row[O_IMG]
            if img is not None and img.startswith(IMG_PREFIX):
                row[O_IMG] = "^" + img[len(IMG_PREFIX) :]
            if len(row[O_TIERS]) <= 1:
                row[O_TIERS] = []
            rows.append(row)
        packed.append({**image, "o": rows})
    return {"images": packed, "strings": list(table)}


def head_size(images: list[dict[str, Any]]) -> int:
    """How many images go in the first block: HEAD_IMAGES, fewer if they hold HEAD_OFFERS."""
    offers = 0
    for n, image in enumerate(images[:HEAD_IMAGES], 1):
        offers += len(image["o"])
        if offers >= HEAD_OFFERS:
            return n
    return min(len(images), HEAD_IMAGES)


def render(data: dict[str, Any], title: str = "1688 matches") -> str:
    """The whole page: markup, style, data and script in one file (no external resource)."""
    images = data["images"]
    cut = head_size(images)
    first = {**{k: v for k, v in data.items() if k != "images"}, "img_prefix": IMG_PREFIX, **pack(images[:cut])}
    return PAGE.format(
        title=html.escape(title),
        css=CSS,
        data=script_json(first),
        rest=script_json(pack(images[cut:])),
        js=JS,
    )


def build(
    products: Path,
    failures: Path | None = None,
    summary: Path | None = None,
    top: int | None = None,
    secrets: Iterable[str | None] = (),
    discover: bool = True,
) -> str:
    """The report of a products feed. The failures feed and the run summary are looked for
    beside it (`<stem>.failures.jsonl`, `<stem>.summary.json`) unless given or `discover` is
    false (a crawl knows its own, and an older run's file there must not be shown); given
    ones must exist."""
    if top is not None and top < 1:
        raise ReportError(f"--top must be at least 1 (got {top})")
    secrets = list(secrets)
    if discover and failures is None and beside(products, ".failures.jsonl").is_file():
        failures = beside(products, ".failures.jsonl")
    if discover and summary is None and beside(products, ".summary.json").is_file():
        summary = beside(products, ".summary.json")
    run = read_summary(summary) if summary is not None else None
    failure_records = list(read_jsonl(failures, "failure record", "query_image_url")) if failures is not None else []
    data = report_data(
        read_jsonl(products, "product record", "query_image_url"), failure_records, run, top, products.name, secrets
    )
    return render(data, Redactor(secrets).text(f"1688 matches: {products.name}"))


def write(html_text: str, path: Path) -> None:
    """Written whole or not at all: a reader never opens half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, path)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src http: https:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<a class="skip" href="#results">Skip to the results</a>
<header class="top">
<h1>{title}</h1>
<div id="run" class="run"></div>
<form id="controls" class="controls" role="search" aria-label="Sort and filter the offers">
<div class="field"><label for="sort">Sort by</label>
<select id="sort" name="sort">
<option value="rank">Rank (as the API gave them)</option>
<option value="price_up">Price: low to high</option>
<option value="price_down">Price: high to low</option>
<option value="sales">Sales: most first</option>
</select></div>
<div class="field"><label for="q">Search</label>
<input id="q" name="q" type="search" placeholder="title, supplier, place" autocomplete="off"></div>
<div class="field price-range"><label for="min">Price from (¥)</label>
<input id="min" name="min" type="number" min="0" step="any" inputmode="decimal">
<label for="max">to</label>
<input id="max" name="max" type="number" min="0" step="any" inputmode="decimal"></div>
<fieldset class="badges"><legend>Only offers with</legend><div id="badge-boxes"></div></fieldset>
<div class="buttons">
<button type="reset" id="reset">Clear filters</button>
<button type="button" id="collapse-all">Collapse all</button>
<button type="button" id="expand-all">Expand all</button>
</div>
</form>
<p id="status" class="status" role="status" aria-live="polite"></p>
</header>
<main id="results" tabindex="-1"></main>
<div id="more-images" class="more-images"></div>
<noscript><p class="noscript">This report draws its cards with JavaScript: allow scripts for this file.</p></noscript>
<script type="application/json" id="report-data">{data}</script>
<script>{js}</script>
<script type="application/json" id="report-rest">{rest}</script>
<script>window.reportRest();</script>
</body>
</html>
"""

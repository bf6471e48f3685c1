"""The report page: the data packed small and embedded in one self-contained HTML file.

The markup, style and script are the package's files `static/report.html`, `report.css` and
`report.js`. The page carries its data as JSON inside `<script type="application/json">`
blocks and draws cards with DOM APIs (textContent, never innerHTML with data), a page of
cards per image at a time, so a feed of 100,000 records opens and scrolls like a small one
(benchmarks/RESULTS.md, "HTML report"). A first block (the first screen's images) is drawn
before the rest is even parsed.
"""

from __future__ import annotations

import functools
import html
from importlib import resources
from typing import Any

import orjson

from tmapi_spiders.report.offers import O_IMG, O_LOCATION, O_SUPPLIER, O_TIERS

# Most thumbnails live under this prefix: stored as "^" + the rest (about 35 bytes per offer).
IMG_PREFIX = "https://cbu01.alicdn.com/img/ibank/"
# The page is drawn from a first block of data (these few images, the first screen), then
# the rest is parsed: cards show before a large report's bulk has even been read.
HEAD_IMAGES = 8
HEAD_OFFERS = 2000


@functools.cache
def static(name: str) -> str:
    """A file of `static/`, read once. `report.html` is a `str.format` template: its only
    braces are the fields `render` fills ({title}, {css}, {data}, {rest}, {js})."""
    return resources.files("tmapi_spiders.report").joinpath("static", name).read_text(encoding="utf-8")


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
    return static("report.html").format(
        title=html.escape(title),
        css=static("report.css"),
        data=script_json(first),
        rest=script_json(pack(images[cut:])),
        js=static("report.js"),
    )

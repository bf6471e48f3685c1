"""The report page: `static/`'s markup, style and script with the data packed small, in one HTML file.

The data is JSON in `<script type="application/json">` blocks, drawn with DOM APIs (never
innerHTML with data); a first block, the first screen's images, is drawn before the rest is parsed.
"""

from __future__ import annotations

import functools
import html
import itertools
from importlib import resources
from typing import Any

import orjson

from tmapi_spiders.report.offers import O_IMG, O_LOCATION, O_SUPPLIER, O_TIERS

# Most thumbnails live under this prefix: stored as "^" + the rest.
IMG_PREFIX = "https://cbu01.alicdn.com/img/ibank/"
# The first block of data: at most these images, fewer if they hold HEAD_OFFERS offers.
HEAD_IMAGES = 8
HEAD_OFFERS = 2000


@functools.cache
def static(name: str) -> str:
    """A file of `static/`, read once (`report.html` is a `str.format` template)."""
    return resources.files("tmapi_spiders.report").joinpath("static", name).read_text(encoding="utf-8")


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: `<`, `>` and `&` (only ever in strings) as \\u escapes."""
    raw = orjson.dumps(data)
    return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026").decode("utf-8")


def pack(images: list[dict[str, Any]]) -> dict[str, Any]:
    """Images as embedded: suppliers and places as indexes into one string table, thumbnails under
    IMG_PREFIX shortened, single price tiers dropped (the price says it)."""
    table: dict[str, int] = {}
    packed = []
    for image in images:
        rows = []
        for row in image["o"]:
            row = list(row)
            for column in (O_SUPPLIER, O_LOCATION):
                row[column] = table.setdefault(row[column], len(table))
            img = row[O_IMG]
            if img is not None and img.startswith(IMG_PREFIX):
                row[O_IMG] = "^" + img[len(IMG_PREFIX) :]
            if len(row[O_TIERS]) <= 1:
                row[O_TIERS] = []
            rows.append(row)
        packed.append({**image, "o": rows})
    return {"images": packed, "strings": list(table)}


def head_size(images: list[dict[str, Any]]) -> int:
    running = itertools.accumulate(len(image["o"]) for image in images[:HEAD_IMAGES])
    return next((n for n, offers in enumerate(running, 1) if offers >= HEAD_OFFERS), min(len(images), HEAD_IMAGES))


def render(data: dict[str, Any], title: str = "1688 matches") -> str:
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

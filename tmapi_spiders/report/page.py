"""The report page: the data packed small, the markup, and the one self-contained HTML file.

The page carries its data as JSON inside `<script type="application/json">` blocks and draws
cards with DOM APIs (textContent, never innerHTML with data), a page of cards per image at a
time, so a feed of 100,000 records opens and scrolls like a small one
(benchmarks/RESULTS.md, "HTML report"). A first block (the first screen's images) is drawn
before the rest is even parsed. The style is `style.py`, the script `script_state.py` then
`script_draw.py`.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from tmapi_spiders.report.offers import O_IMG, O_LOCATION, O_SUPPLIER, O_TIERS
from tmapi_spiders.report.script_draw import DRAW
from tmapi_spiders.report.script_state import STATE
from tmapi_spiders.report.style import CSS

# The page's script: one closure, kept in two modules.
JS = STATE + DRAW

# Most thumbnails live under this prefix: stored as "^" + the rest (about 35 bytes per offer).
IMG_PREFIX = "https://cbu01.alicdn.com/img/ibank/"
# The page is drawn from a first block of data (these few images, the first screen), then
# the rest is parsed: cards show before a large report's bulk has even been read.
HEAD_IMAGES = 8
HEAD_OFFERS = 2000


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
<div class="field"><label for="moq">MOQ at most</label>
<input id="moq" name="moq" type="number" min="1" step="1" inputmode="numeric"></div>
<fieldset class="badges"><legend>Only offers with</legend><div id="badge-boxes"></div></fieldset>
<div class="buttons">
<button type="reset" id="reset">Clear filters</button>
<button type="button" id="collapse-all">Collapse all</button>
<button type="button" id="expand-all">Expand all</button>
</div>
</form>
<p id="status" class="status" role="status" aria-live="polite"></p>
</header>
<details id="suppliers" class="suppliers"><summary id="suppliers-summary">Suppliers</summary>
<div id="suppliers-body"></div></details>
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

"""Reading two feeds and writing their changes as JSON Lines, HTML or XLSX (by extension).

A file that cannot be read as a products feed is one DiffError line. Changes are written
whole or not at all (a `.part` file renamed), so a scheduled reader never opens half a file.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from tmapi_spiders.report.page import script_json, static
from tmapi_spiders.watch import diff as d
from tmapi_spiders.watch import feed

FORMATS = (".jsonl", ".html", ".xlsx")


def read_run(path: Path) -> feed.Run:
    """A products feed as a diff.Run; DiffError for a file that cannot be one."""
    try:
        f = open(path, "rb")  # closed by the `with` below
    except FileNotFoundError:
        raise d.DiffError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise d.DiffError(f"{path}: is a directory, not a products feed (.jsonl)") from None
    except OSError as exc:
        raise d.DiffError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with f:
        try:
            run = feed.read_lines(f)
        except OSError as exc:
            raise d.DiffError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if run.lines and not run.products:
        raise d.DiffError(
            f"{path}: not a products feed of image_search (none of its {run.lines} lines is a product record"
            " with query_image_url and item_id)"
        )
    return run


def check_same_job(old: feed.Run, new: feed.Run, old_path: Path, new_path: Path) -> None:
    """DiffError for two runs of different lists (no query image in common): every offer
    would be new and gone."""
    if old.products and new.products and not (old.products.keys() & new.products.keys()):
        raise d.DiffError(f"{old_path} and {new_path} have no query image in common: not two runs of the same list")


def output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise d.DiffError(f"{path}: unknown output format {suffix or '(none)'!r} (use .jsonl, .html or .xlsx)")
    return suffix


def write(path: Path, summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]], title: str = "") -> None:
    """The changes at `path`, in the format its extension names (OSError if it cannot be written)."""
    kind = output_kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        if kind == ".jsonl":
            with open(tmp, "wb") as f:
                f.writelines(d.jsonl_lines(summary, records))
        elif kind == ".html":
            tmp.write_text(render_html(summary, records, title), encoding="utf-8")
        else:
            write_xlsx(tmp, summary, records)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# A table row per offer change, shared by the HTML and XLSX views.
COLUMNS = (
    "change",
    "query_image_url",
    "input_row",
    "item_id",
    "title",
    "old_price",
    "new_price",
    "delta",
    "pct",
    "details",
    "alerts",
    "product_url",
)


def details(changes: Mapping[str, Any]) -> str:
    """What moved besides the price, in a few words ("MOQ 2 → 3; tp_member true → false")."""
    parts = []
    rng = changes.get("price_range")
    if rng:
        parts.append(f"range {_span(rng['old'])} → {_span(rng['new'])}")
    for tier in changes.get("tiers", ()):
        parts.append(f"tier ≥{tier['begin_num']}: {_n(tier['old'])} → {_n(tier['new'])}")
    if "moq" in changes:
        parts.append(f"MOQ {_n(changes['moq']['old'])} → {_n(changes['moq']['new'])}")
    for name, m in (changes.get("sales") or {}).items():
        parts.append(f"{name} {_n(m['old'])} → {_n(m['new'])}")
    if "repurchase_rate" in changes:
        m = changes["repurchase_rate"]
        parts.append(f"repurchase {_n(m['old'])} → {_n(m['new'])}")
    if "rank" in changes:
        parts.append(f"rank {_n(changes['rank']['old'])} → {_n(changes['rank']['new'])}")
    for name, m in (changes.get("badges") or {}).items():
        parts.append(f"{name} {_j(m['old'])} → {_j(m['new'])}")
    if "supplier" in changes:
        s = changes["supplier"]
        before, after = (
            s["old"]["company_name"] or s["old"]["member_id"],
            s["new"]["company_name"] or s["new"]["member_id"],
        )
        parts.append(f"supplier {before} → {after}")
    return "; ".join(parts)


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _j(value: Any) -> str:
    return orjson.dumps(value).decode()


def _span(pair: Sequence[Any]) -> str:
    low, high = pair
    return _n(low) if low == high else f"{_n(low)}-{_n(high)}"


def row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One offer record as a flat table row (COLUMNS)."""
    changes = record.get("changes") or {}
    price = changes.get("price") or {}
    change = record["change"]
    return {
        "change": change,
        "query_image_url": record["query_image_url"],
        "input_row": record.get("input_row"),
        "item_id": record["item_id"],
        "title": record.get("title", ""),
        "old_price": price.get("old") if price else (feed.number(record.get("price")) if change == "gone" else None),
        "new_price": price.get("new") if price else (feed.number(record.get("price")) if change != "gone" else None),
        "delta": price.get("delta"),
        "pct": price.get("pct"),
        "details": details(changes),
        "alerts": ", ".join(record.get("alerts", ())),
        "product_url": record.get("product_url", ""),
    }


def offer_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [row(r) for r in records if r.get("type") == "offer"]


def write_xlsx(path: Path, summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> None:
    """Sheets "Changes" (one row per offer change, the table's order), "Products" and "Summary"."""
    from openpyxl import Workbook  # only `-o *.xlsx` needs it

    wb = Workbook(write_only=True)
    changes = wb.create_sheet("Changes")
    changes.append(list(COLUMNS))
    for r in offer_rows(records):
        changes.append([_cell(r[c]) for c in COLUMNS])
    products = wb.create_sheet("Products")
    product_columns = ("query_image_url", "input_row", "status", "offers_old", "offers_new")
    counts = ("offers_new", "offers_gone", "offers_changed", "offers_unchanged")
    products.append([*product_columns, "new", "gone", "changed", "unchanged", "input"])
    for r in records:
        if r.get("type") == "product":
            products.append(
                [_cell(r.get(c)) for c in product_columns] + [r.get(c, 0) for c in counts] + [_cell(r.get("input"))]
            )
    sheet = wb.create_sheet("Summary")
    sheet.append(["summary", d.summary_line(summary)])
    for key, value in summary.items():
        if key != "type":
            sheet.append([key, _cell(value)])
    wb.save(path)


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _j(value)


TABLE_CSS = """
.changes-table { width: 100%; border-collapse: collapse; background: var(--card); font-size: .9rem; }
.changes-table th, .changes-table td { border-bottom: 1px solid var(--line); padding: .35rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
.changes-table th button { all: unset; cursor: pointer; font-weight: 600; }
.changes-table th[aria-sort=ascending] button::after { content: " ▲"; }
.changes-table th[aria-sort=descending] button::after { content: " ▼"; }
.changes-table td.num { text-align: right; white-space: nowrap; }
.chg-new { color: #1b7a36; } .chg-gone { color: #8a1c1c; } .down { color: #1b7a36; } .up { color: var(--accent); }
.alert { font-weight: 600; color: var(--accent); }
.table-wrap { overflow-x: auto; }
"""

SCRIPT = r"""
(function () {
  var data = JSON.parse(document.getElementById('changes-data').textContent);
  var rows = data.rows, body = document.getElementById('rows'), count = document.getElementById('shown');
  var q = document.getElementById('q'), kind = document.getElementById('kind');
  var alerts = document.getElementById('alerts-only');
  var sortKey = null, sortDir = 1;
  function text(v) { return v === null || v === undefined ? '' : String(v); }
  function cell(tr, v, cls) {
    var td = document.createElement('td'); td.textContent = text(v);
    if (cls) td.className = cls;
    tr.appendChild(td); return td;
  }
  function draw() {
    var needle = q.value.trim().toLowerCase(), want = kind.value, only = alerts.checked;
    var shown = rows.filter(function (r) {
      if (want && r.change !== want && !(want === 'price' && r.pct !== null)) return false;
      if (only && !r.alerts) return false;
      var hay = (r.title + ' ' + r.item_id + ' ' + r.query_image_url + ' ' + r.details).toLowerCase();
      if (needle && hay.indexOf(needle) < 0) return false;
      return true;
    });
    if (sortKey) {
      shown = shown.slice().sort(function (a, b) {
        var x = a[sortKey], y = b[sortKey];
        if (x === null || x === '') return 1; if (y === null || y === '') return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
      });
    }
    body.textContent = '';
    shown.forEach(function (r) {
      var tr = document.createElement('tr'); tr.dataset.item = r.item_id; tr.dataset.change = r.change;
      cell(tr, r.change, 'chg-' + r.change);
      cell(tr, r.query_image_url + (r.input_row ? ' (row ' + r.input_row + ')' : ''));
      var td = document.createElement('td');
      if (/^https?:\/\//.test(r.product_url)) {
        var a = document.createElement('a'); a.href = r.product_url; a.rel = 'noopener';
        a.textContent = r.item_id; td.appendChild(a);
      }
      else td.textContent = r.item_id;
      tr.appendChild(td);
      cell(tr, r.title);
      cell(tr, r.old_price, 'num'); cell(tr, r.new_price, 'num');
      cell(tr, r.delta, 'num ' + (r.delta < 0 ? 'down' : r.delta > 0 ? 'up' : ''));
      cell(tr, r.pct === null ? '' : r.pct + '%', 'num ' + (r.pct < 0 ? 'down' : r.pct > 0 ? 'up' : ''));
      cell(tr, r.details); cell(tr, r.alerts, r.alerts ? 'alert' : '');
      body.appendChild(tr);
    });
    count.textContent = shown.length + ' of ' + rows.length;
    document.documentElement.dataset.ready = '1';
  }
  Array.prototype.forEach.call(document.querySelectorAll('th[data-key] button'), function (b) {
    b.addEventListener('click', function () {
      var th = b.parentNode, key = th.dataset.key;
      sortDir = sortKey === key ? -sortDir : 1; sortKey = key;
      Array.prototype.forEach.call(document.querySelectorAll('th[data-key]'), function (o) {
        o.removeAttribute('aria-sort');
      });
      th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      draw();
    });
  });
  [q, kind, alerts].forEach(function (el) { el.addEventListener('input', draw); el.addEventListener('change', draw); });
  draw();
})();
"""

HEADERS = (
    ("change", "change"),
    ("query_image_url", "query image"),
    ("item_id", "offer"),
    ("title", "title"),
    ("old_price", "old price"),
    ("new_price", "new price"),
    ("delta", "Δ CNY"),
    ("pct", "Δ %"),
    ("details", "other changes"),
    ("alerts", "alerts"),
)


def render_html(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """A self-contained page: the summary line, then a sortable, filterable table of offer
    changes (biggest price drops first). Every text goes through the DOM's textContent or
    html.escape; the data sits in a JSON script block (script_json escapes `</`)."""
    rows = offer_rows(records)
    o = summary["offers"]
    facts = [
        ("products", summary["products"]),
        ("new offers", o["new"]),
        ("gone", o["gone"]),
        ("changed", o["changed"]),
        ("price drops", summary["price_drops"]),
        ("price rises", summary["price_rises"]),
        ("alerts", len(summary["alerts"]["matches"])),
    ]
    run = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd></div>" for k, v in facts)
    heads = "".join(
        f'<th data-key="{k}" scope="col"><button type="button">{html.escape(label)}</button></th>'
        for k, label in HEADERS
    )
    heading = html.escape(title or "What changed")
    return PAGE.format(
        title=heading,
        css=static("report.css") + TABLE_CSS,
        run=run,
        line=html.escape(d.summary_line(summary)),
        heads=heads,
        data=script_json({"rows": rows}),
        script=SCRIPT,
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
<header class="top"><h1>{title}</h1><dl class="run">{run}</dl>
<p id="summary-line">{line}</p>
<div class="controls">
<label class="field">Search<input type="search" id="q" placeholder="title, offer id, image"></label>
<label class="field">Change<select id="kind"><option value="">all</option><option value="price">price moved</option>
<option value="changed">changed</option><option value="new">new</option><option value="gone">gone</option>
</select></label>
<label class="field"><span><input type="checkbox" id="alerts-only"> alerts only</span></label>
<span class="field" aria-live="polite">shown <b id="shown"></b></span>
</div></header>
<main><div class="table-wrap"><table class="changes-table"><thead><tr>{heads}</tr></thead>
<tbody id="rows"></tbody></table></div></main>
<script type="application/json" id="changes-data">{data}</script>
<script>{script}</script>
</body></html>
"""

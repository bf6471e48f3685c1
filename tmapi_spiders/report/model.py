"""The report's data, from plain records: grouped by query image, with counts, status and the run header,
every string redacted before `page.render` embeds it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.report.offers import MAX_URL, O_RANK, count, number, offer_row, safe_url, text
from tmapi_spiders.spreadsheets import sourcing

FAILURE_MESSAGES_SHOWN = 3
# The suppliers view lists the top of the ranking: its long tail is the offers themselves.
SUPPLIERS_SHOWN = 100
INPUT_COLUMNS_SHOWN = 20


@dataclass
class ImageGroup:
    url: str
    search_url: str = ""
    language: str = ""
    offers: list[list[Any]] = field(default_factory=list)
    pages: set[int] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)
    found: int = 0  # offers in the feed, before --top
    input: dict[str, Any] | None = None  # the spreadsheet row's other columns (CONTRACT.md)
    input_row: int | None = None


def group(
    records: Iterable[dict[str, Any]],
    failures: Iterable[dict[str, Any]],
    listed: Iterable[str],
    top: int | None,
    ranked: list[sourcing.Offer],
) -> list[ImageGroup]:
    """Records grouped by query image in order of appearance (those the summary `listed` or known only
    from failures after), offers by rank, at most `top`; every offer also goes to `ranked`."""
    groups: dict[str, ImageGroup] = {}

    def keep_input(image: ImageGroup, record: dict[str, Any]) -> None:
        if image.input is None and isinstance(record.get("input"), dict):
            image.input = record["input"]
            row = record.get("input_row")
            image.input_row = row if isinstance(row, int) and not isinstance(row, bool) else None

    def of(url: Any) -> ImageGroup:
        key = text(url, MAX_URL)
        if key not in groups:
            groups[key] = ImageGroup(key)
        return groups[key]

    for record in records:
        image = of(record.get("query_image_url"))
        if not image.search_url:
            image.search_url = text(record.get("search_image_url"), MAX_URL)
            image.language = text(record.get("language"), 10)
        page = count(record.get("page"))
        if page is not None:
            image.pages.add(page)
        row = offer_row(record)
        image.offers.append(row)
        keep_input(image, record)
        offer = sourcing.offer_of(record, row)
        offer.image = image.url
        ranked.append(offer)
    for url in listed:
        of(url)
    for failure in failures:
        image = of(failure.get("query_image_url"))
        image.failures.append(failure)
        keep_input(image, failure)
        if not image.search_url:
            image.search_url = text(failure.get("search_image_url"), MAX_URL)
    for image in groups.values():
        image.found = len(image.offers)
        image.offers.sort(key=lambda row: (row[O_RANK] is None, row[O_RANK] or 0))
        if top is not None:
            del image.offers[top:]
    return list(groups.values())


def image_data(image: ImageGroup, entry: dict[str, Any], summary_known: bool) -> dict[str, Any]:
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
        "row": image.input_row,
        # The row's columns as [name, shown value] pairs, in the spreadsheet's order.
        "in": [[text(k, 80), text(v, 200)] for k, v in list((image.input or {}).items())[:INPUT_COLUMNS_SHOWN]],
    }


def suppliers_data(ranked: list[sourcing.Offer], groups: list[ImageGroup], choice: sourcing.Choice) -> dict[str, Any]:
    """The workbook's supplier ranking, each product as [image number, lowest price, offer URL]."""
    number_of = {g.url: n for n, g in enumerate(groups, 1)}
    suppliers = sourcing.rank_suppliers(ranked, choice)
    rows = [
        {
            "n": s.name,
            "id": s.member_id,
            "y": s.years,
            "loc": s.location,
            "b": s.badges,
            "p": [[number_of.get(image, 0), o.price, sourcing.link(o)] for image, o in s.products.items()],
        }
        for s in suppliers[:SUPPLIERS_SHOWN]
    ]
    return {"rows": rows, "all": len(suppliers), "products": len(groups), "filters": "; ".join(choice.filter_words())}


def defaults_of(choice: sourcing.Choice | None) -> dict[str, Any]:
    if choice is None:
        return {}
    sort = {"rank": "rank", "price": "price_up", "sales": "sales"}[choice.best_by]
    return {"sort": sort, "badges": choice.badges, "max": choice.max_price, "moq": choice.max_moq}


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
    totals = summary.get("totals") if isinstance(summary.get("totals"), dict) else {}
    header["totals"] = {k: v for k, v in totals.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return header


def report_data(
    records: Iterable[dict[str, Any]],
    failures: Iterable[dict[str, Any]] = (),
    summary: dict[str, Any] | None = None,
    top: int | None = None,
    source: str = "products.jsonl",
    secrets: Iterable[str | None] = (),
    choice: sourcing.Choice | None = None,
) -> dict[str, Any]:
    """Everything the page needs, redacted; `choice`'s filters rank the suppliers and are the page's defaults."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in (summary or {}).get("images") or ():
        if isinstance(entry, dict) and "query_image_url" in entry:
            entries[text(entry["query_image_url"], MAX_URL)] = entry
    ranked: list[sourcing.Offer] = []
    groups = group(records, failures, entries, top, ranked)
    data = {
        "source": source,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "top": top,
        "run": summary_header(summary, groups),
        "failures": sum(len(g.failures) for g in groups),
        "images": [image_data(g, entries.get(g.url, {}), summary is not None) for g in groups],
        "suppliers": suppliers_data(ranked, groups, choice or sourcing.Choice()),
        "defaults": defaults_of(choice),
        "currency": currency_of(summary),
    }
    return Redactor(secrets).value(data)


def currency_of(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The currency and rate the run converted prices at, from its summary (None: it converted none)."""
    given = (summary or {}).get("currency")
    if isinstance(given, dict) and isinstance(given.get("currency"), str) and number(given.get("rate")):
        return {"code": text(given["currency"], 8), "rate": number(given["rate"])}
    return None

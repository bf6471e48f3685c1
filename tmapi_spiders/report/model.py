"""The report's data, from plain records: grouped by query image, with counts, status and the run header,
every string redacted before `page.render` embeds it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.clock import utc_now
from tmapi_spiders.report.offers import MAX_URL_LENGTH, O_RANK, count, number, offer_row, safe_url, text
from tmapi_spiders.report.suppliers import SheetRow, defaults_of, sheet_row, sheet_row_data, suppliers_data
from tmapi_spiders.spreadsheets import sourcing

FAILURE_MESSAGES_SHOWN = 3


@dataclass
class ImageGroup:
    url: str
    search_url: str = ""
    language: str = ""
    offers: list[list[Any]] = field(default_factory=list)
    pages: set[int] = field(default_factory=set)
    failures: list[dict[str, Any]] = field(default_factory=list)
    found: int = 0  # offers in the feed, before --top
    input: SheetRow | None = None  # the spreadsheet row it came from


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

    def of(url: Any) -> ImageGroup:
        key = text(url, MAX_URL_LENGTH)
        return groups.get(key) or groups.setdefault(key, ImageGroup(key))

    for record in records:
        image = of(record.get("query_image_url"))
        if not image.search_url:
            image.search_url = text(record.get("search_image_url"), MAX_URL_LENGTH)
            image.language = text(record.get("language"), 10)
        page = count(record.get("page"))
        if page is not None:
            image.pages.add(page)
        row = offer_row(record)
        image.offers.append(row)
        image.input = image.input or sheet_row(record)
        ranked.append(sourcing.offer_of(record, row))
    for url in listed:
        of(url)
    for failure in failures:
        image = of(failure.get("query_image_url"))
        image.failures.append(failure)
        image.input = image.input or sheet_row(failure)
        if not image.search_url:
            image.search_url = text(failure.get("search_image_url"), MAX_URL_LENGTH)
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
        **sheet_row_data(image.input),
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
    listed = [e for e in (summary or {}).get("images") or () if isinstance(e, dict) and "query_image_url" in e]
    entries = {text(e["query_image_url"], MAX_URL_LENGTH): e for e in listed}
    ranked: list[sourcing.Offer] = []
    groups = group(records, failures, entries, top, ranked)
    data = {
        "source": source,
        "generated": utc_now(),
        "top": top,
        "run": summary_header(summary, groups),
        "failures": sum(len(g.failures) for g in groups),
        "images": [image_data(g, entries.get(g.url, {}), summary is not None) for g in groups],
        "suppliers": suppliers_data(ranked, [g.url for g in groups], choice or sourcing.Choice()),
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

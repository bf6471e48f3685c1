"""The report's data: records grouped by query image, each image's counts and status, the
run header, all of it redacted.

What the page shows is decided here, from plain records (no files, no HTML): `report_data`
is what `page.render` embeds. Offers arrive as rows (`offers.offer_row`); every string,
header and failure message included, goes through the `Redactor` before it is embedded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tmapi_spiders.redact import Redactor
from tmapi_spiders.report.offers import MAX_URL, O_RANK, count, offer_row, safe_url, text

FAILURE_MESSAGES_SHOWN = 3


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

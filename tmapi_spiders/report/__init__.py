"""The HTML match report: each query photo beside the 1688 offers found for it.

From disk to page: `files` (reading and writing), `offers` (a record as a safe offer row),
`model` (records grouped by image, redacted), `page` (the data embedded in `static/`'s page).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.report.files import SUFFIX, ReportError, beside, read_jsonl, read_summary, write
from tmapi_spiders.report.model import report_data
from tmapi_spiders.report.page import render
from tmapi_spiders.spreadsheets import sourcing

__all__ = ["SUFFIX", "ReportError", "beside", "build", "write"]


def build(
    products: Path,
    failures: Path | None = None,
    summary: Path | None = None,
    top: int | None = None,
    secrets: Iterable[str | None] = (),
    discover: bool = True,
    choice: sourcing.Choice | None = None,
) -> str:
    """The report of a products feed. Unless given, or `discover` is false (a crawl knows its own
    files), the failures feed and run summary are looked for beside it; `choice` sets the page's
    default filters and the offers the suppliers view counts."""
    secrets = list(secrets)
    if discover and failures is None and beside(products, ".failures.jsonl").is_file():
        failures = beside(products, ".failures.jsonl")
    if discover and summary is None and beside(products, ".summary.json").is_file():
        summary = beside(products, ".summary.json")
    run = read_summary(summary) if summary is not None else None
    failure_records = list(read_jsonl(failures, "failure record", "query_image_url")) if failures is not None else []
    records = read_jsonl(products, "product record", "query_image_url")
    data = report_data(records, failure_records, run, top, products.name, secrets, choice=choice)
    return render(data, Redactor(secrets).text(f"1688 matches: {products.name}"))

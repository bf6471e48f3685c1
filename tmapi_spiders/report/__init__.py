"""The HTML match report: each query photo beside the 1688 offers found for it.

`scrapy report` (commands/report.py) and the TMAPI_REPORT extension (extensions/report.py)
are thin wrappers around `build` and `write`. The package follows the report from disk to
page, one module a step:

- `files`: reading the products feed, the failures feed and the run summary; the names of
  the files beside a feed; writing the page whole (`ReportError` for bad input).
- `offers`: one product record as a short offer row, its strings and URLs made safe.
- `model`: records grouped by query image, counts, status and the run header, redacted.
- `page`: the data packed small and embedded in the page, whose markup, style and script
  are the files in `static/`.
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
    """The report of a products feed. The failures feed and the run summary are looked for
    beside it (`<stem>.failures.jsonl`, `<stem>.summary.json`) unless given or `discover` is
    false (a crawl knows its own, and an older run's file there must not be shown); given
    ones must exist. `choice` (the best offers' filters) sets the page's default filters and
    which offers the suppliers view counts."""
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
        read_jsonl(products, "product record", "query_image_url"),
        failure_records,
        run,
        top,
        products.name,
        secrets,
        choice=choice,
    )
    return render(data, Redactor(secrets).text(f"1688 matches: {products.name}"))

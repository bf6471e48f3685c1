"""The HTML match report: each query photo beside the 1688 offers found for it.

From disk to page: here the reading and writing, `offers` (a record as a safe offer row),
`model` (records grouped by image, redacted), `page` (the data embedded in `static/`'s page).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.outputs import SUMMARY_SUFFIX, beside
from tmapi_spiders.report.model import report_data
from tmapi_spiders.report.page import render
from tmapi_spiders.spreadsheets import sourcing

SUFFIX = ".report.html"


class ReportError(Exception):
    """Bad input for a report (missing file, malformed line): its text is the one-line cause."""


def read_jsonl(path: Path, what: str = "record", require: str = "") -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file (blank lines skipped); ReportError names the file and line
    of one that is not a JSON object with the `require` field."""
    try:
        f = open(path, "rb")  # closed by the `with` below
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
    """The run summary (`<stem>.summary.json`); ReportError when the file is not one."""
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


def existing(path: str | os.PathLike[str] | None) -> Path | None:
    """`path` when it names a file, else None."""
    return Path(path) if path and Path(path).is_file() else None


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
    if discover:
        failures = failures or existing(beside(products, ".failures.jsonl"))
        summary = summary or existing(beside(products, SUMMARY_SUFFIX))
    run = read_summary(summary) if summary is not None else None
    failure_records = list(read_jsonl(failures, "failure record", "query_image_url")) if failures is not None else []
    records = read_jsonl(products, "product record", "query_image_url")
    data = report_data(records, failure_records, run, top, products.name, secrets, choice=choice)
    return render(data, Redactor(secrets).text(f"1688 matches: {products.name}"))

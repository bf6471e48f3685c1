"""The report's files: reading a products feed and its run summary, naming the files that
sit beside a feed, and writing the page whole.

Everything that touches the disk is here, so that the rest of the package is pure functions
from records to a string. Bad input (a missing file, a malformed line, another kind of
file) is a `ReportError` whose text is the one-line cause the command prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SUFFIX = ".report.html"


class ReportError(Exception):
    """Bad input for a report (missing file, malformed line): its text is the one-line cause."""


def read_jsonl(path: Path, what: str = "record", require: str = "") -> Iterator[dict[str, Any]]:
    """The objects of a JSON Lines file, one a line (blank lines skipped); a missing file, a
    line that is not a JSON object, or one without the `require` field raises ReportError
    naming the file and line (another kind of file given by mistake is caught on line 1)."""
    try:
        f = open(path, "rb")  # closed by the `with` below, once read
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
    """The run summary (`<stem>.summary.json`); a file that is there but is not one is an error."""
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


def beside(products: Path, suffix: str) -> Path:
    """`x/products.jsonl` -> `x/products<suffix>`, the way the crawl names its other files."""
    stem, dot, _ext = products.name.rpartition(".")
    return products.with_name((stem if dot and stem else products.name) + suffix)


def write(html_text: str, path: Path) -> None:
    """Written whole or not at all: a reader never opens half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, path)

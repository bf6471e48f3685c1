"""The report's disk access: reading the feeds and the run summary, writing the page whole."""

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

"""`python -m tmapi_spiders.distributed.merge [--failures F] out/products-*.jsonl > products.jsonl`

Joins the workers' feeds, keeping the first record per image, query and item (a killed worker's
work is redone elsewhere). Lines are decoded one by one, so a torn line costs only itself.
Failure records go to --failures, else are counted. Exit: 0 read (torn lines are warnings),
1 lines but not one whole record, 2 bad usage or an unreadable file (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from tmapi_spiders.api.identity import record_results

OK, NOTHING_READ, BAD_USAGE = 0, 1, 2


def record_key(record: dict[str, Any]) -> str:
    """Which search found the record (identity.RESULT_FIELDS) and its item id, or a failure's stage."""
    return json.dumps(
        [*record_results(record), record.get("item_id", record.get("stage"))], sort_keys=True, default=str
    )


@dataclass
class Report:
    """What the merge read and left out, for stderr and the exit code."""

    failures: list[str] | None = None  # failure lines kept (--failures), else only counted
    torn: list[str] = field(default_factory=list)  # "path:line: why"
    failures_left_out: int = 0
    records: int = 0  # whole records read (products and failures); every other non-blank line is torn


def records_of(path: str, report: Report) -> Iterator[tuple[dict[str, Any], str]]:
    """The whole JSON objects of one feed with their lines; a torn line is reported and skipped."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                record = json.loads(text)
            except UnicodeDecodeError:
                why = "not UTF-8 (cut inside a character?)"
            except ValueError:
                why = "not a whole JSON line (cut mid-line?)"
            else:
                why = "" if isinstance(record, dict) else "not a JSON object"
            if why:
                report.torn.append(f"{path}:{number}: {why}")
                continue
            report.records += 1
            yield record, text.rstrip("\r\n") + "\n"


def merge(paths: Iterable[str], report: Report | None = None) -> Iterator[str]:
    """Product lines, first per key; torn lines and failure records (kept or counted) go to `report`."""
    report = report or Report()
    seen: set[str] = set()  # a failure's key ends with its stage, a product's with its item id
    for record, line in (pair for path in paths for pair in records_of(path, report)):
        # A FailureItem (items.FAILURE_FIELDS): it has a stage and a message, and no item id.
        failure = "stage" in record and "message" in record and "item_id" not in record
        if failure and report.failures is None:
            report.failures_left_out += 1
        elif (key := record_key(record)) not in seen:
            seen.add(key)
            if failure:
                report.failures.append(line)
            else:
                yield line


def main(argv: list[str], out: TextIO = sys.stdout) -> int:
    """The exit code (module docstring); warnings and errors one line each on stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m tmapi_spiders.distributed.merge", usage="%(prog)s [--failures FAILURES.jsonl] FEED.jsonl..."
    )
    parser.add_argument("--failures", metavar="FAILURES.jsonl")
    parser.add_argument("paths", nargs="+", metavar="FEED.jsonl")
    opts = parser.parse_args(argv)  # bad usage: argparse's message and exit code 2
    paths, failures_path = opts.paths, opts.failures
    try:
        for path in paths:  # every file readable before a line is written
            open(path, "rb").close()
    except OSError as exc:
        print(f"error: cannot read {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return BAD_USAGE
    if failures_path in paths:
        print(f"error: --failures {failures_path} is also a feed to merge", file=sys.stderr)
        return BAD_USAGE
    report = Report([] if failures_path is not None else None)
    try:
        out.writelines(merge(paths, report))
        if failures_path is not None:
            with open(failures_path, "w", encoding="utf-8") as handle:
                handle.writelines(report.failures or [])
    except OSError as exc:
        print(f"error: {exc.filename or 'output'}: {exc.strerror or exc}", file=sys.stderr)
        return BAD_USAGE
    for where in report.torn:
        print(f"warning: torn line skipped at {where}", file=sys.stderr)
    if report.failures_left_out:
        print(
            f"warning: {report.failures_left_out} failure records left out of the products"
            " (give --failures FILE to keep them)",
            file=sys.stderr,
        )
    if report.torn and not report.records:
        print(f"error: not one whole record in {len(paths)} files", file=sys.stderr)
        return NOTHING_READ
    return OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

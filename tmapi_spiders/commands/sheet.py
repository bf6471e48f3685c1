"""`scrapy sheet products.jsonl -o sourcing.xlsx`: a feed already written as the sourcing workbook.

The failures feed and run summary beside it give the *best* sheet its reasons. A torn or
foreign line is counted and skipped; a missing feed or a bad option is one `error:` line, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tmapi_spiders import report
from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.commands import Tool, fail
from tmapi_spiders.crawl.outputs import beside, cause, whole
from tmapi_spiders.spreadsheets import sourcing


def records(path: Path, require: str, skipped: list[int]) -> Any:
    """The JSON objects of a JSON Lines file that carry `require`; any other line (torn,
    not JSON, not an object, not a record of ours) adds one to `skipped[0]`."""
    try:
        f = open(path, "rb")  # closed by the `with` below
    except FileNotFoundError:
        raise report.ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise report.ReportError(f"{path}: is a directory, not a JSON Lines file") from None
    except OSError as exc:
        raise report.ReportError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with f:
        for line in f:
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                skipped[0] += 1
                continue
            if not isinstance(value, dict) or require not in value:
                skipped[0] += 1
                continue
            yield value


def collect(products: Path, failures: Path | None, summary: Path | None) -> tuple[sourcing.Collection, int, int]:
    """The feed's collection, and the lines skipped in the products and failures feeds."""
    collection = sourcing.Collection()
    bad_products, bad_failures = [0], [0]
    for record in records(products, "query_image_url", bad_products):
        collection.add_product(record)
    if failures is not None:
        for record in records(failures, "query_image_url", bad_failures):
            collection.add_failure(record)
    if summary is not None:
        for entry in report.read_summary(summary).get("images") or ():
            if isinstance(entry, dict):
                collection.add_result(entry)
    return collection, bad_products[0], bad_failures[0]


class Command(Tool, ScrapyCommand):
    usage = (
        "PRODUCTS.jsonl [-o SOURCING.xlsx] [--best N] [--best-by rank|price|sales]"
        " [--max-price CNY] [--max-moq N] [--badges factory,verified]"
    )
    description = "Write the sourcing workbook (offers, best offers, suppliers) of a products feed"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("-o", "--output", metavar="FILE", help="the workbook (default: <feed stem>.xlsx)")
        parser.add_argument("--best", metavar="N", help=f"best offers per product (default {sourcing.DEFAULT_BEST})")
        parser.add_argument(
            "--best-by", "--best_by", dest="best_by", metavar="HOW", help="rank (default), price or sales"
        )
        parser.add_argument(
            "--max-price", "--max_price", dest="max_price", metavar="CNY", help="best offers' price limit"
        )
        parser.add_argument("--max-moq", "--max_moq", dest="max_moq", metavar="N", help="best offers' MOQ limit")
        parser.add_argument(
            "--badges", metavar="LIST", help=f"badges the best offers need ({', '.join(sourcing.BADGES)})"
        )
        parser.add_argument("--failures", metavar="FILE", help="failures feed (default: <feed stem>.failures.jsonl)")
        parser.add_argument("--summary", metavar="FILE", help="run summary (default: <feed stem>.summary.json)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one products feed (a .jsonl file)")
        products = Path(args[0])
        output = Path(opts.output or beside(products, ".xlsx"))
        if output.suffix.lower() != ".xlsx":  # openpyxl writes nothing else: a .csv name would hold a workbook
            fail(f"{output}: the workbook is an .xlsx file: give -o NAME.xlsx")
        started = time.perf_counter()
        try:
            choice = sourcing.choice_from({name: getattr(opts, name) for name in sourcing.CHOICE_ARGS})
            failures = self._beside(opts.failures, products, ".failures.jsonl")
            summary = self._beside(opts.summary, products, ".summary.json")
            collection, bad, bad_failures = collect(products, failures, summary)
        except (sourcing.ChoiceError, report.ReportError) as exc:
            fail(str(exc))
        if bad:
            print(f"warning: {products}: {bad} lines skipped (torn, or not product records)", file=sys.stderr)
        if bad_failures and failures is not None:
            print(f"warning: {failures}: {bad_failures} lines skipped (torn, or not failure records)", file=sys.stderr)
        # Imported only here: Scrapy imports every command module at the start of every command,
        # and openpyxl takes about 50 ms to import.
        from tmapi_spiders.spreadsheets import workbook

        try:
            with whole(output) as tmp:
                workbook.write(collection, choice, tmp, products.name, secrets_of(self.settings))
        except OSError as exc:
            fail(f"{output}: cannot write the workbook ({cause(exc, str(output))})")
        print(
            f"workbook written to {output} ({len(collection.offers)} offers, {len(collection.products)} products,"
            f" {output.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)"
        )

    @staticmethod
    def _beside(given: str | None, products: Path, suffix: str) -> Path | None:
        """A given file (it must exist), else the one beside the feed when it is there."""
        if given:
            if not Path(given).is_file():
                raise report.ReportError(f"{given}: no such file")
            return Path(given)
        return report.existing(beside(products, suffix))

"""`scrapy sheet products.jsonl -o sourcing.xlsx`: a feed already written as the sourcing workbook.

The failures feed and run summary beside it give the *best* sheet its reasons. A torn or
foreign line is counted and skipped; a missing feed or a bad option is one `error:` line, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tmapi_spiders import report
from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.jobs import outcome
from tmapi_spiders.spreadsheets import sourcing, workbook


class SheetError(Exception):
    """Bad input for `scrapy sheet`: its text is the one-line cause."""


def records(path: Path, require: str, skipped: list[int]) -> Any:
    """The JSON objects of a JSON Lines file that carry `require`; any other line (torn,
    not JSON, not an object, not a record of ours) adds one to `skipped[0]`."""
    try:
        f = open(path, "rb")  # closed by the `with` below
    except FileNotFoundError:
        raise SheetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SheetError(f"{path}: is a directory, not a JSON Lines file") from None
    except OSError as exc:
        raise SheetError(f"{path}: cannot read it ({exc.strerror or exc})") from None
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
        try:
            run = report.read_summary(summary)
        except report.ReportError as exc:
            raise SheetError(str(exc)) from None
        for entry in run.get("images") or ():
            if isinstance(entry, dict):
                collection.add_result(entry)
    return collection, bad_products[0], bad_failures[0]


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return (
            "PRODUCTS.jsonl [-o SOURCING.xlsx] [--best N] [--best-by rank|price|sales]"
            " [--max-price CNY] [--max-moq N] [--badges factory,verified]"
        )

    def short_desc(self) -> str:
        return "Write the sourcing workbook (offers, best offers, suppliers) of a products feed"

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
        output = Path(opts.output) if opts.output else report.beside(products, ".xlsx")
        started = time.perf_counter()
        try:
            choice = sourcing.choice_from({name: getattr(opts, name) for name in sourcing.CHOICE_ARGS})
            failures = self._beside(opts.failures, products, ".failures.jsonl")
            summary = self._beside(opts.summary, products, ".summary.json")
            collection, bad, bad_failures = collect(products, failures, summary)
        except (sourcing.ChoiceError, SheetError) as exc:
            self._fail(str(exc))
            return
        if bad:
            print(f"warning: {products}: {bad} lines skipped (torn, or not product records)", file=sys.stderr)
        if bad_failures and failures is not None:
            print(f"warning: {failures}: {bad_failures} lines skipped (torn, or not failure records)", file=sys.stderr)
        tmp = output.with_name(output.name + ".part")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            workbook.write(collection, choice, str(tmp), products.name, secrets_of(self.settings))
            os.replace(tmp, output)  # a reader never opens half a workbook
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self._fail(f"{output}: cannot write the workbook ({exc.strerror or exc})")
            return
        print(
            f"workbook written to {output} ({len(collection.offers)} offers, {len(collection.products)} products,"
            f" {output.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)"
        )

    @staticmethod
    def _beside(given: str | None, products: Path, suffix: str) -> Path | None:
        """A given file (it must exist), else the one beside the feed when it is there."""
        if given:
            if not Path(given).is_file():
                raise SheetError(f"{given}: no such file")
            return Path(given)
        found = report.beside(products, suffix)
        return found if found.is_file() else None

    def _fail(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        self.exitcode = outcome.BAD_INPUT

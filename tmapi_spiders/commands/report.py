"""`scrapy report products.jsonl -o report.html`: the feed as an HTML page of matches (docs/report.md)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tmapi_spiders import report
from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.commands import Tool, fail
from tmapi_spiders.crawl.outputs import beside, cause, write_whole
from tmapi_spiders.report import suppliers
from tmapi_spiders.spreadsheets import sourcing


def top_of(value: str | None) -> int | None:
    """--top: a whole number of at least 1 (checked here: argparse's error is a usage screen)."""
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise report.ReportError(f"--top must be a whole number (got {value!r})") from None
    if n < 1:
        raise report.ReportError(f"--top must be at least 1 (got {n})")
    return n


class Command(Tool, ScrapyCommand):
    usage = "PRODUCTS.jsonl [-o REPORT.html] [--top N] [--failures FILE] [--summary FILE]"
    description = "Write an HTML report of a products feed: each query photo beside its offers"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-o", "--output", metavar="FILE", help="where to write the report (default: <feed stem>.report.html)"
        )
        parser.add_argument("--top", metavar="N", help="keep the N best-ranked offers per image")
        parser.add_argument("--failures", metavar="FILE", help="failures feed (default: <feed stem>.failures.jsonl)")
        parser.add_argument("--summary", metavar="FILE", help="run summary (default: <feed stem>.summary.json)")
        suppliers.add_choice_options(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one products feed (a .jsonl file)")
        products = Path(args[0])
        output = Path(opts.output or beside(products, report.SUFFIX))
        started = time.perf_counter()
        try:
            page = report.build(
                products,
                failures=Path(opts.failures) if opts.failures else None,
                summary=Path(opts.summary) if opts.summary else None,
                top=top_of(opts.top),
                secrets=secrets_of(self.settings),
                choice=suppliers.choice_of(opts),
            )
            write_whole(output, (page,))
        except (report.ReportError, sourcing.ChoiceError) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{output}: cannot write the report ({cause(exc, str(output))})")
        size = len(page.encode("utf-8"))
        print(f"report written to {output} ({size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")

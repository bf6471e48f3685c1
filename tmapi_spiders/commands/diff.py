"""`scrapy diff OLD.jsonl NEW.jsonl -o changes.jsonl`: what moved between two runs (docs/watch.md).

Bad input is one line on stderr and exit 2; torn lines and foreign records are counted in
the summary, not fatal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tmapi_spiders.commands import Tool, fail
from tmapi_spiders.crawl.outputs import beside, cause
from tmapi_spiders.jobs import outcome
from tmapi_spiders.watch import diff as d
from tmapi_spiders.watch import output
from tmapi_spiders.watch.compute import changes_of


class Command(Tool, ScrapyCommand):
    usage = "OLD.jsonl NEW.jsonl [-o CHANGES.jsonl|.html|.xlsx] [--alert RULES]"
    description = "Compare two products feeds of the same list: new, gone and changed offers"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            action="append",
            help="where to write the changes: .jsonl, .html or .xlsx (repeatable; default: <NEW stem>.changes.jsonl)",
        )
        parser.add_argument("--alert", metavar="RULES", help="e.g. 'price_drop>=5%%,new_offer' (docs/watch.md)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 2:
            raise UsageError("give two products feeds: the older run, then the newer one")
        old, new = Path(args[0]), Path(args[1])
        targets = [Path(o) for o in opts.output] if opts.output else [Path(beside(new, ".changes.jsonl"))]
        try:
            for target in targets:
                output.output_kind(target)
            rules = d.parse_rules(opts.alert)
            summary, records = changes_of(old, new, rules)
        except d.DiffError as exc:
            fail(str(exc))
        for target in targets:
            try:
                output.write(target, summary, records, title=f"What changed: {new.name} against {old.name}")
            except OSError as exc:
                fail(f"{target}: cannot write the changes ({cause(exc, str(target))})", outcome.WRITE_FAILED)
        print(d.summary_line(summary))
        for match in summary["alerts"]["matches"]:
            print(_match_line(match))
        print("changes written to " + ", ".join(str(t) for t in targets))


def _match_line(match: dict[str, object]) -> str:
    price = match.get("price")
    moved = ""
    if isinstance(price, dict):
        moved = f" {price.get('old')} → {price.get('new')} ({price.get('pct')}%)"
    return f"alert {match['rule']}: {match['query_image_url']} offer {match['item_id']} {match['change']}{moved}"

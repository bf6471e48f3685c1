"""Two feeds in, their changes out: the path shared by `scrapy diff` and history runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tmapi_spiders.watch import diff as d
from tmapi_spiders.watch import output


def changes_of(old: Path, new: Path, rules: Sequence[d.Rule] = ()) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, records) of OLD against NEW; DiffError for input that cannot be compared."""
    old_run, new_run = output.read_run(old), output.read_run(new)
    output.check_same_job(old_run, new_run, old, new)
    summary, records = d.diff(old_run, new_run, rules)
    summary = {"type": "summary", "old": str(old), "new": str(new), **{k: v for k, v in summary.items() if k != "type"}}
    return summary, records

"""A seed's JSON and fingerprint spelled the plain way (a dict, then `json.dumps(..., sort_keys=True)`):
what tests and benchmarks push with `push_json`, and what `SeedWriter`'s fast spelling is checked against."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from tmapi_spiders.api import contract
from tmapi_spiders.api.identity import SEED_ROW_FIELDS, ImageSearch
from tmapi_spiders.crawl.seeds import Seed
from tmapi_spiders.distributed.job import Job


def seed_json(url: str, query: contract.SearchQuery, max_pages: int, row: Seed | None = None) -> dict[str, Any]:
    """One seed's JSON: the image, its query arguments and a spreadsheet row's `input` and `input_row`."""
    fields = ImageSearch.of(url, query, max_pages).seed_fields()
    if row is not None and row.input is not None:
        fields["input"], fields["input_row"] = row.input, row.line
    return fields


def seed_fingerprint(seed: Mapping[str, Any]) -> str:
    """A seed's key in a shared job: its JSON however spelled, without a spreadsheet row's fields,
    so one image with one query is one seed."""
    search = {k: v for k, v in seed.items() if k not in SEED_ROW_FIELDS}
    return hashlib.sha1(json.dumps(search, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def push_json(job: Job, seeds: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(pushed, already there) for JSON seeds, through `Job.push_encoded`; a seed pushed before is skipped."""
    return job.push_encoded(
        (seed_fingerprint(seed), json.dumps(seed, ensure_ascii=False, sort_keys=True)) for seed in seeds
    )

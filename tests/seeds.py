"""A seed's JSON spelled the plain way (a dict, then `json.dumps(..., sort_keys=True)`): what tests and
benchmarks push with `Job.push_seeds`, and what `SeedWriter`'s fast spelling is checked against."""

from __future__ import annotations

from typing import Any

from tmapi_spiders.api import contract
from tmapi_spiders.api.identity import ImageSearch
from tmapi_spiders.crawl.seeds import Seed


def seed_json(url: str, query: contract.SearchQuery, max_pages: int, row: Seed | None = None) -> dict[str, Any]:
    """One seed's JSON: the image, its query arguments and a spreadsheet row's `input` and `input_row`."""
    fields = ImageSearch.of(url, query, max_pages).seed_fields()
    if row is not None and row.input is not None:
        fields["input"], fields["input_row"] = row.input, row.line
    return fields

"""A big list's seeds spelled fast: the list's shared query as one JSON template, each seed's values put in."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from hashlib import sha1
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from tmapi_spiders.api import contract
from tmapi_spiders.api.identity import ImageSearch
from tmapi_spiders.crawl.config import JobConfig
from tmapi_spiders.crawl.seeds import BadLine, Seed


class SeedWriter:
    """One list's seeds as `(fingerprint, JSON)`, byte for byte what the plain spelling (`tests/seeds.py`:
    a sorted `json.dumps` of `ImageSearch.seed_fields()`, with a row's `input` and `input_row`, and its
    SHA-1 without them) gives: the JSON of the list's shared query with each seed's values put in, instead
    of a sorted dict per seed. A seed's url must already be its image key."""

    def __init__(self, query: contract.SearchQuery, max_pages: int) -> None:
        token = secrets.token_hex(8)  # placeholders no query holds (queries are checked words and numbers)
        url, given, row = (f"seed-{token}-{name}" for name in ("url", "input", "input_row"))
        self._url, self._input_hole, self._row_hole = (json.dumps(hole) for hole in (url, given, row))
        fields = ImageSearch.of(url, query, max_pages).seed_fields()
        readable: dict[str, Any] = {"ensure_ascii": False, "sort_keys": True}
        self._search = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        self._plain = json.dumps(fields, **readable)
        self._row = json.dumps({**fields, "input": given, "input_row": row}, **readable)
        self._input = json.JSONEncoder(**readable).encode  # what json.dumps makes of it

    def __call__(self, seed: Seed) -> tuple[str, str]:
        # An encoded value never holds a quoted placeholder: its quotes are escaped.
        search = self._search.replace(self._url, encode_basestring_ascii(seed.url))
        url = encode_basestring(seed.url)
        if seed.input is None:
            return sha1(search.encode()).hexdigest(), self._plain.replace(self._url, url)
        row = self._row.replace(self._input_hole, self._input(seed.input)).replace(self._row_hole, str(seed.line))
        return sha1(search.encode()).hexdigest(), row.replace(self._url, url)


class ListSeeds:
    """A list's seeds as `Job.push_encoded` takes them (streamed: a long list is never whole in memory);
    its bad lines counted (`bad`), the first `shown` of them passed to `show` as they come."""

    def __init__(self, config: JobConfig, show: Callable[[BadLine], None], shown: int) -> None:
        self.config = config
        self.show = show
        self.shown = shown
        self.bad = 0

    def __iter__(self) -> Iterator[tuple[str, str]]:
        write = SeedWriter(self.config.query, self.config.max_pages)
        for entry in self.config.read_seeds().entries:
            if isinstance(entry, BadLine):
                self.bad += 1
                if self.bad <= self.shown:
                    self.show(entry)
            else:
                yield write(entry)

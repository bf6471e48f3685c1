"""What identifies one image search: the one definition every key of "the same search" is built from.

An image search is the query image and the query parameters sent with it:

- the image: its URL as the seed gave it, surrounding whitespace stripped, and changed only
  where the change provably names the same resource (`image_key`): scheme and host in lower
  case, a default port (`:443` for https, `:80` for http) and a `#fragment` dropped. Path,
  query and userinfo stay exactly as written (no sorting of the query, no decoding): TMAPI
  fetches the URL as written, and two spellings there may well be two pictures
  (case-sensitive paths, signed CDN URLs, `?x-oss-process=` resizes).
- `language`, `sort` and the filters: they change which items the search finds and in
  which order (RESULT_PARAMS);
- `page_size` and `max_pages`: they change which paid calls are made (how the same items
  are cut into pages, and how many pages are paid for), not what an item is (PAGING_PARAMS).

Four uses, four keys, all derived from `ImageSearch` here, none spelled out elsewhere:

- a seed in a shared job (distributed/job.py `seed_fingerprint`, start.py `seed_json`):
  the whole search; the same image seeded twice with the same query is pushed once.
- the shared duplicate filter (distributed/dupefilter.py): the whole search, plus which
  call a request is and the page after the first (`dupefilter_key`).
- a record in merged feeds (distributed/merge.py): what the record was found by
  (`RESULT_FIELDS`) and its item id: a record, not a search, so the paging parameters do
  not count (records do not carry them, and the same item from a page size of 10 or 20
  is the same item).
- a line of one seed list (seeds.py): every line of a list shares the job's query, so
  the image alone (`image_key`) tells two lines apart.

The two digests differ in spelling (compact JSON for seeds, `json.dumps`'s default
separators for the filter) because they were written apart; both are stored in Redis by
running jobs, so both stay as they are, pinned by tests/unit/test_identity.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tmapi_spiders import contract

RESULT_PARAMS = ("language", "sort", "filters")
PAGING_PARAMS = ("page_size", "max_pages")
# A record's fields that say which search found it (items.CONTEXT_FIELDS / FAILURE_FIELDS).
RESULT_FIELDS = ("query_image_url", *RESULT_PARAMS)
# What a seed from a spreadsheet row carries besides its search (start.seed_json): data for its
# records, not a part of what the search is, so never a part of the seed's key.
SEED_ROW_FIELDS = ("input", "input_row")


DEFAULT_PORTS = {"http": 80, "https": 443}


def image_key(url: str) -> str:
    """The image part of a search's identity, and the URL the search sends: the URL as given,
    whitespace stripped, scheme and host lower-cased, a default port and a fragment dropped
    (a fragment never reaches the server). A converted `/search/` path, or anything urllib
    cannot split, is only stripped."""
    url = url.strip()
    if not url or url.startswith("/"):
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6: the address in brackets, then maybe :port
        host, _, rest = hostport.partition("]")
        host, rest = host + "]", rest[1:]
    else:
        host, _, rest = hostport.partition(":")
    keep_port = rest and port != DEFAULT_PORTS[scheme]
    netloc = userinfo + at + host.lower() + (f":{rest}" if keep_port else "")
    return urlunsplit((scheme, netloc, parts.path, parts.query, ""))


@dataclass(frozen=True)
class ImageSearch:
    """One image searched with one query: what a job does once, whichever worker does it."""

    image: str | None  # None only in a chain state that has lost its image
    language: Any
    sort: Any
    page_size: Any
    filters: tuple[tuple[str, Any], ...]  # sorted by name
    max_pages: Any = 0

    @classmethod
    def of(cls, image: str, query: contract.SearchQuery, max_pages: int) -> ImageSearch:
        return cls(
            image_key(image),
            query.language,
            query.sort,
            query.page_size,
            tuple(sorted(query.filters.items())),
            max_pages,
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ImageSearch:
        """The search a request's chain state (paging.ChainState.to_meta) belongs to. The
        state's image is taken as it is (it was stripped when seeded), never re-stripped:
        the filter's keys must stay what they were."""
        q = state.get("q") or {}
        return cls(
            state.get("image"),
            q.get("language"),
            q.get("sort"),
            q.get("page_size"),
            tuple(sorted((q.get("filters") or {}).items())),
            state.get("max_pages"),
        )

    def query_dict(self) -> dict[str, Any]:
        """The query as contract.SearchQuery.to_dict() spells it (chain states carry this)."""
        return {
            "language": self.language,
            "sort": self.sort,
            "page_size": self.page_size,
            "filters": dict(self.filters),
        }

    def seed_fields(self) -> dict[str, Any]:
        """The seed's JSON in a shared job: the image, max_pages and the query, filters flat."""
        return {
            "url": self.image,
            "max_pages": self.max_pages,
            "language": self.language,
            "sort": self.sort,
            "page_size": self.page_size,
            **dict(self.filters),
        }

    def result_fields(self) -> list[Any]:
        """What a record found by this search says it was found by (RESULT_FIELDS)."""
        return [self.image, self.language, self.sort, dict(self.filters)]

    def dupefilter_key(self, call: str | None, converted: Any, page: int | None = None) -> str:
        """The shared duplicate filter's key for one call of this search: which call
        (conversion, search), whether the image was converted first, and the page for
        pages after the first (page-1 keys predate pages in the key and stay without one)."""
        key: dict[str, Any] = {
            "image": self.image,
            "q": self.query_dict(),
            "max_pages": self.max_pages,
            "call": call,
            "converted": converted,
        }
        if page is not None:
            key["page"] = page
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()


def seed_fingerprint(seed: Mapping[str, Any]) -> str:
    """A seed's key in a shared job: its JSON however spelled (key order, spacing), so one
    image with one query is one seed. Seeds are built by `ImageSearch.seed_fields`; a seed
    pushed by hand is keyed by what it holds. A spreadsheet row's fields (SEED_ROW_FIELDS)
    are left out: the same image from two rows, or two lists, is one seed."""
    search = {k: v for k, v in seed.items() if k not in SEED_ROW_FIELDS}
    return hashlib.sha1(json.dumps(search, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_results(record: Mapping[str, Any]) -> list[Any]:
    """Which search found a record (RESULT_FIELDS, None where missing): merge.py's key
    with the item id (or, for a failure, its stage)."""
    return [record.get(name) for name in RESULT_FIELDS]

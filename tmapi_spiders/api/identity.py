"""What identifies one image search (the image's key and the query): every key of "the same search"
derives from `ImageSearch`. The digests are stored in Redis by running jobs: their spelling is pinned."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tmapi_spiders.api import contract

# A record's fields that say which search found it (product and failure records).
RESULT_FIELDS = ("query_image_url", "language", "sort", "filters")
# What a seed from a spreadsheet row carries besides its search: never a part of the seed's key.
SEED_ROW_FIELDS = ("input", "input_row")

DEFAULT_PORTS = {"http": 80, "https": 443}
_PORT = re.compile(r":[^:\]]*$")  # after the host: a port, or a lone ":"


def image_key(url: str) -> str:
    """The URL a search sends and is keyed by: stripped, scheme and host lower-cased, a default port and a
    fragment dropped (TMAPI fetches the URL as written, so nothing else changes)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if port is None or port == DEFAULT_PORTS[scheme]:
        hostport = _PORT.sub("", hostport)
    netloc = userinfo + at + hostport.lower()
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
        filters = tuple(sorted(query.filters.items()))
        return cls(image_key(image), query.language, query.sort, query.page_size, filters, max_pages)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ImageSearch:
        """The search a request's chain state belongs to; its image taken as it is (stripped when seeded)."""
        q = state.get("q") or {}
        filters = tuple(sorted((q.get("filters") or {}).items()))
        return cls(
            state.get("image"), q.get("language"), q.get("sort"), q.get("page_size"), filters, state.get("max_pages")
        )

    def query_dict(self) -> dict[str, Any]:
        """The query as contract.SearchQuery.to_dict() spells it (chain states carry this)."""
        return dict(language=self.language, sort=self.sort, page_size=self.page_size, filters=dict(self.filters))

    def seed_fields(self) -> dict[str, Any]:
        """The seed's JSON in a shared job: the image, max_pages and the query, filters flat."""
        search = {"url": self.image, "max_pages": self.max_pages, "language": self.language, "sort": self.sort}
        return {**search, "page_size": self.page_size, **dict(self.filters)}

    def dupefilter_key(self, call: str | None, converted: Any, page: int | None = None) -> str:
        """The shared duplicate filter's key for one call of this search: which call, whether the
        image was converted first, and the page for pages after the first (page 1 keys have none)."""
        key: dict[str, Any] = {"image": self.image, "q": self.query_dict(), "max_pages": self.max_pages}
        key.update(call=call, converted=converted)
        if page is not None:
            key["page"] = page
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()


def record_results(record: Mapping[str, Any]) -> list[Any]:
    """Which search found a record (RESULT_FIELDS, None where missing): merge.py's key with the item id."""
    return [record.get(name) for name in RESULT_FIELDS]

"""The search's query parameters, validated as the endpoint page documents them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tmapi_spiders.sandbox import spec

_INT_RE = re.compile(r"[0-9]{1,12}")


class Invalid(Exception):
    """A parameter outside the documented domain: answered 422 with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Search:
    img_url: str
    page: int
    page_size: int
    language: str
    sort: str
    filters: tuple[tuple[str, bool], ...]

    def key(self) -> str:
        flags = ",".join(f"{name}={int(value)}" for name, value in self.filters)
        return (
            f"{spec.SEARCH_PATH}\0{self.img_url}\0{self.page}\0{self.page_size}\0{self.language}\0{self.sort}\0{flags}"
        )


def parse_search(query: Mapping[str, str]) -> Search:
    """Validate the search parameters exactly as the endpoint page documents them."""
    img_url = query.get("img_url")
    if not img_url:
        raise Invalid("img_url: is required")
    page = _int(query, "page", spec.PAGE_DEFAULT, 1, None)
    page_size = _int(query, "page_size", spec.PAGE_SIZE_DEFAULT, 1, spec.PAGE_SIZE_MAX)
    language = query.get("language", spec.LANGUAGE_DEFAULT)
    if language not in spec.LANGUAGES:
        raise Invalid(f"language: must be one of {', '.join(spec.LANGUAGES)}")
    sort = query.get("sort", spec.SORT_DEFAULT)
    if sort not in spec.SORTS:
        raise Invalid(f"sort: must be one of {', '.join(spec.SORTS)}")
    filters = []
    for name in spec.FILTERS:
        raw = query.get(name)
        if raw is None:
            continue
        try:
            filters.append((name, spec.parse_bool(raw)))
        except ValueError:
            raise Invalid(f"{name}: must be a boolean (true/false/1/0)") from None
    return Search(img_url, page, page_size, language, sort, tuple(filters))


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if _INT_RE.fullmatch(raw):
        value = int(raw)
        if value >= low and (high is None or value <= high):
            return value
    bound = f"from {low} to {high}" if high is not None else f"of {low} or more"
    raise Invalid(f"{name}: must be an integer {bound}")

"""scrapy-redis's shared duplicate filter, keyed by image, query and page, never cleared by a worker.

An image's first request and each later page pass through it, so a page redone after a kill
cannot pay for the rest of the chain twice (key: `ImageSearch.dupefilter_key`).
"""

from __future__ import annotations

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter

from tmapi_spiders.api.identity import ImageSearch
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, META_KEY, endpoint_of


class ImageDupeFilter(RFPDupeFilter):
    def request_fingerprint(self, request: Request) -> str:
        state = request.meta.get(META_KEY)
        if not isinstance(state, dict):
            return str(super().request_fingerprint(request))
        # page 1's key has no page: keys written by earlier workers still match
        page = state["page"] if is_later_page(request) else None
        return ImageSearch.from_state(state).dupefilter_key(endpoint_of(request), state.get("converted"), page)

    def close(self, reason: str = "") -> None:
        """Keep the shared filter: other workers still use it (stock scrapy-redis deletes it)."""


def is_later_page(request: Request) -> bool:
    """A search for page 2 or later: asked for by the page before it, `dont_filter` in a single process."""
    state = request.meta.get(META_KEY)
    page = state.get("page") if isinstance(state, dict) else None
    return endpoint_of(request) == ENDPOINT_SEARCH and isinstance(page, int) and page > 1

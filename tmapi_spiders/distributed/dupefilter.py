"""scrapy-redis's shared duplicate filter, keyed by image, query and page, never cleared by a worker.

An image's first request and each later page pass through it (the scheduler checks a page's
follow-up although it is `dont_filter`), so a page redone after a `kill -9` cannot pay for the
rest of the image's chain twice; retries and requests given back after a lease expires never
do. The key (tmapi_spiders/api/identity.py, `ImageSearch.dupefilter_key`) is the image, its query,
max_pages, which call it is and the page after the first: one picture in two languages is two
searches, although its conversion request is the same.
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
        # page 1 keys stay without a page: jobs seeded before pages were keyed still dedupe
        page = state["page"] if is_later_page(request) else None
        return ImageSearch.from_state(state).dupefilter_key(endpoint_of(request), state.get("converted"), page)

    def close(self, reason: str = "") -> None:
        """Keep the shared filter: other workers still use it (stock scrapy-redis deletes it)."""


def is_later_page(request: Request) -> bool:
    """A search for page 2 or later: asked for by the page before it, `dont_filter` in a single process."""
    state = request.meta.get(META_KEY)
    return (
        endpoint_of(request) == ENDPOINT_SEARCH
        and isinstance(state, dict)
        and isinstance(state.get("page"), int)
        and state["page"] > 1
    )

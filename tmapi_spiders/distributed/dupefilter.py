"""scrapy-redis's shared duplicate filter, keyed by image and query, never cleared by a worker.

Only an image's first request goes through the filter (later pages and retries are
`dont_filter`), so it holds a key or two per image, and a request given back after a
lease expires is never blocked by it. The key is the image, its query, max_pages and
which call it is (conversion, first search, search after conversion): the same picture
searched in two languages is two searches, although its conversion request (whose
URL and body do not name the query) is the same.
"""

from __future__ import annotations

import hashlib
import json

from scrapy import Request
from scrapy_redis.dupefilter import RFPDupeFilter

from tmapi_spiders.api import META_KEY


class ImageDupeFilter(RFPDupeFilter):
    def request_fingerprint(self, request: Request) -> str:
        state = request.meta.get(META_KEY)
        if not isinstance(state, dict):
            return str(super().request_fingerprint(request))
        key = {
            "image": state.get("image"),
            "q": state.get("q"),
            "max_pages": state.get("max_pages"),
            "call": request.meta.get("tmapi_endpoint"),
            "converted": state.get("converted"),
        }
        return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def close(self, reason: str = "") -> None:
        """Keep the shared filter: other workers still use it (stock scrapy-redis deletes it)."""

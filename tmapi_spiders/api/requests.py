"""Scrapy requests for the two TMAPI calls, without the token (download.py signs a copy); an image's
chain state travels in `meta["tmapi"]` as plain JSON, so any worker can finish a queued request."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from scrapy import Request
from scrapy.http import Response

from tmapi_spiders.api import contract
from tmapi_spiders.api.envelope import Envelope, read_envelope
from tmapi_spiders.api.paging import ChainState

META_KEY = "tmapi"
# Where TmapiEnvelopeMiddleware leaves the parsed answer for the callback (read once).
ENVELOPE_META = "_tmapi_envelope"
ENDPOINT_SEARCH = "search"
ENDPOINT_CONVERT = "convert"
Callback = Callable[..., Any]


def search(base_url: str, state: ChainState, callback: Callback, errback: Callback) -> Request:
    url = f"{base_url}{contract.SEARCH_PATH}?{urlencode(contract.search_params(state.q, state.img, state.page))}"
    return Request(
        url,
        callback=callback,
        errback=errback,
        meta=_meta(ENDPOINT_SEARCH, state),
        priority=state.page,  # finish started images first
        # Only page n asks for page n+1: one filter key per image (a shared job filters all pages).
        dont_filter=state.page > 1,
    )


def convert(base_url: str, state: ChainState, callback: Callback, errback: Callback) -> Request:
    body = {"url": state.image, "search_api_endpoint": contract.CONVERT_SEARCH_ENDPOINT}
    return Request(
        f"{base_url}{contract.CONVERT_PATH}",
        method="POST",
        body=json.dumps(body, ensure_ascii=False),
        headers={"Content-Type": "application/json"},
        callback=callback,
        errback=errback,
        meta=_meta(ENDPOINT_CONVERT, state),
    )


def _meta(endpoint: str, state: ChainState) -> dict[str, Any]:
    return {META_KEY: state.to_meta(), "tmapi_endpoint": endpoint, "handle_httpstatus_list": [contract.PARAM_ERROR]}


def envelope_of(response: Response) -> Envelope:
    """The answer as TmapiEnvelopeMiddleware read it (parsed again only if it did not)."""
    return response.meta.get(ENVELOPE_META) or read_envelope(response.status, response.body)


def endpoint_of(request: Request) -> str | None:
    """Which API call a request is, or None for a request that is not ours."""
    return request.meta.get("tmapi_endpoint")

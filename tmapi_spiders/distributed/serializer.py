"""Requests as JSON for the shared queue: never pickle, never a secret.

A shared Redis is readable by every worker and every operator: pickle from it would
run whatever someone put there, and a token in it would leak to all of them. Scrapy's
`Request.to_dict` gives the parts; bytes travel as latin-1 text (headers) or base64
(body), and the `apikey` header is dropped even if a middleware forgot to take it off.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from scrapy import Request, Spider
from scrapy.utils.request import request_from_dict

from tmapi_spiders.api import contract
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.api.requests import ENVELOPE_META

SECRET_HEADERS = frozenset({contract.TOKEN_HEADER.lower(), "authorization", "proxy-authorization", "cookie"})
# Per-download state that means nothing to the worker that takes the request next.
DROPPED_META = frozenset({ENVELOPE_META, "download_slot", "download_latency", "_tmapi_lease"})


class SerializationError(ValueError):
    """A request that cannot be queued as JSON; the message names the meta key."""


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def to_json(request: Request, spider: Spider, secrets: Redactor | tuple[str, ...] = ()) -> str:
    """The request as queue JSON; SerializationError (its message redacted) when it cannot
    be JSON or carries a secret, raw or percent-encoded, in its URL, meta or body (the body
    is checked before base64 would hide it)."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    url = redactor.text(request.url)[:80]
    data = request.to_dict(spider=spider)
    meta = {k: v for k, v in (data.get("meta") or {}).items() if k not in DROPPED_META}
    for key, value in meta.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise SerializationError(
                f"meta[{redactor.text(key)!r}] of {url} is not JSON ({type(value).__name__})"
            ) from None
    data["meta"] = meta
    data["headers"] = {
        _text(name): [_text(v) for v in values]
        for name, values in (data.get("headers") or {}).items()
        if _text(name).lower() not in SECRET_HEADERS
    }
    body = data.get("body") or b""
    data["body"] = base64.b64encode(body).decode("ascii")
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
    if redactor and (redactor.found_in(text) or redactor.found_in(body.decode("utf-8", "replace"))):
        raise SerializationError(f"refusing to queue {url}: it carries the API token")
    return text


def from_json(text: str | bytes, spider: Spider) -> Request:
    data: dict[str, Any] = json.loads(text)
    data["body"] = base64.b64decode(data.get("body") or "")
    return request_from_dict(data, spider=spider)

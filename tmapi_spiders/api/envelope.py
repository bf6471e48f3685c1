"""Reading one TMAPI answer: its JSON parsed without crashing, the envelope (`{"code", "msg", "data"}`
or a gateway's bare `{"message"}`) classified as ok or failed."""

from __future__ import annotations

import json
import re
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from tmapi_spiders.api import contract
from tmapi_spiders.api.contract import OK, STATUS_MEANINGS, UNEXPECTED


@dataclass(frozen=True)
class Envelope:
    """One API answer, classified: ok with `data`, or failed with a status and reason."""

    status: int
    message: str
    data: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.data is not None


_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
# orjson reads an integer beyond 64 bits as a float: a body with a run of 19 digits goes the careful way.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def parse_json(body: bytes | str) -> Any:
    """JSON with bad UTF-8 and lone surrogates as U+FFFD, NaN/Infinity as null (RecursionError when too
    deep): orjson first, the json module for what it refuses."""
    if isinstance(body, bytes) and _LONG_DIGITS not in body.translate(_DIGITS_TO_ZERO):
        with suppress(orjson.JSONDecodeError):
            return orjson.loads(body)
    return parse_json_carefully(body)


def parse_json_carefully(body: bytes | str) -> Any:
    """parse_json through the json module: the bodies orjson refuses."""
    text = body.decode("utf-8-sig", errors="replace") if isinstance(body, bytes) else body
    payload = json.loads(text, parse_constant=lambda _: None)
    if _LONE_SURROGATE_ESCAPE.search(text):
        payload = _scrub_surrogates(payload)
    return payload


def _scrub_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_scrub_surrogates(k): _scrub_surrogates(v) for k, v in value.items()}
    return value


def read_envelope(http_status: int, body: bytes | str) -> Envelope:
    """Classify an answer: failed when the HTTP status or the body's `code` is not 200 or `data` is missing."""
    try:
        payload = parse_json(body)
    except (ValueError, RecursionError):
        status = http_status if http_status != OK else UNEXPECTED
        kind = "malformed JSON body" if http_status == OK else STATUS_MEANINGS.get(http_status, "error")
        return Envelope(status, f"{kind} (HTTP {http_status})", None)
    if not isinstance(payload, dict):
        return Envelope(UNEXPECTED if http_status == OK else http_status, "response body is not a JSON object", None)
    if "code" not in payload and "message" in payload:  # gateway-level failure
        return gateway_envelope(http_status, str(payload.get("message")))
    code = payload.get("code")
    if http_status != OK:
        known = code if type(code) is int else http_status
        message = payload.get("msg") or STATUS_MEANINGS.get(known) or STATUS_MEANINGS.get(http_status, "error")
        return Envelope(http_status, str(message), None)
    # "200" (a string), 200.0 or true is not the documented envelope, whatever `msg` says.
    if "code" not in payload:
        return Envelope(UNEXPECTED, "response has no code", None)
    if type(code) is not int:
        kind = "an integer" if isinstance(code, float) else "a number"
        return Envelope(UNEXPECTED, f"code is not {kind}: {code!r:.60}", None)
    message = str(payload.get("msg") or STATUS_MEANINGS.get(code, ""))
    if code != OK:
        return Envelope(code, message, None)
    data = payload.get("data")
    if not isinstance(data, dict):
        return Envelope(UNEXPECTED, "response has no data", None)
    return Envelope(OK, message, data)


def redirect_envelope(http_status: int, location: str | None, url: str) -> Envelope:
    """A 3xx answer: failed, naming only the host it pointed to (a Location can quote the token)."""
    try:
        parts = urlsplit(urljoin(url, location) if location else "")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        where = "no Location" if not location else "an unreadable Location"
        return Envelope(http_status, f"redirected, {where} (HTTP {http_status})", None)
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    return Envelope(http_status, f"redirected to {shown} (HTTP {http_status})", None)


def gateway_envelope(http_status: int, message: str) -> Envelope:
    """A bare gateway `{"message": ...}`: refused key, spent balance and unknown route are fatal; any
    other keeps its status (500 on HTTP 200)."""
    lowered = message.lower()
    for known, status in ((contract.MSG_NO_BALANCE, contract.NO_BALANCE), (contract.MSG_NO_ROUTE, contract.NO_ROUTE)):
        if known.lower() in lowered:
            return Envelope(status, message, None)
    if http_status in (contract.UNAUTHORIZED, 403):
        return Envelope(http_status, message, None)
    if any(known in lowered for known in contract.GATEWAY_AUTH_MESSAGES):
        return Envelope(contract.UNAUTHORIZED, message, None)
    return Envelope(http_status if http_status != OK else UNEXPECTED, message, None)


def check_page(envelope: Envelope, page_size: int) -> Envelope:
    """A search answer with more items than the page size asked for is failed as malformed."""
    items = envelope.data.get("items") if envelope.data is not None else None
    if isinstance(items, list) and len(items) > page_size:
        return Envelope(UNEXPECTED, f"malformed page: {len(items)} items for page_size {page_size}", None)
    return envelope

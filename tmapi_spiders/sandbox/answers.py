"""The sandbox's answers as responses: the API's envelope, the gateway's own errors, and
what each injected fault turns a good answer into.

The server (`server.py`) decides which answer a call gets, in the gateway's order; this
module only builds them, so the list of faults (`faults.FAULT_KINDS`) and what each one
looks like on the wire sit side by side.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

from aiohttp import web

from tmapi_spiders.sandbox import gateway, spec
from tmapi_spiders.sandbox.faults import STATUS_FAULTS
from tmapi_spiders.sandbox.items import dumps

JSON_TYPE = "application/json; charset=utf-8"
# Reason phrases for the statuses HTTP does not name.
_REASONS = {spec.NO_BALANCE: "Insufficient Balance", spec.UPSTREAM_TIMEOUT: "Upstream Timeout"}
_HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><center><h1>500 Internal Server Error</h1></center><hr><center>openresty</center></body></html>"
)
# A gateway message no TMAPI document names, sent on HTTP 200 (the `gateway` fault).
MSG_GATEWAY_UNKNOWN = "An unexpected error occurred"


@lru_cache(maxsize=1)
def _huge_body() -> bytes:
    """The `huge` fault's answer: 5 MB, 1.7 million empty items on one page."""
    head = b'{"code":200,"msg":"success","data":{"page":1,"page_size":20,"total_count":20,"items":['
    return head + b"{}," * 1_700_000 + b"{}]}}"


def envelope(code: int, msg: str) -> bytes:
    """The API's envelope without data: how it answers an error."""
    return dumps({"code": code, "msg": msg, "data": None})


def respond(status: int, body: bytes, content_type: str = JSON_TYPE) -> web.Response:
    return web.Response(body=body, status=status, reason=_REASONS.get(status), headers={"Content-Type": content_type})


def failed(code: int, msg: str) -> web.Response:
    """An error answer: the envelope with `code` and `msg`, on the HTTP status of the same number."""
    return respond(code, envelope(code, msg))


def error(code: int) -> web.Response:
    """The documented error answer for `code` (its meaning as the message)."""
    return failed(code, spec.STATUS_MEANINGS[code])


# Where the redirect answer points (redirect_patterns): a host of its own, never resolved.
REDIRECT_HOST = "moved.sandbox.invalid"


def redirect(request: web.BaseRequest) -> web.Response:
    """HTTP 302 whose Location quotes the call's query, and a header token as `apikey`, as a
    gateway sending a client elsewhere (to a login page, to https) does: the token must not
    reach a failure record through it."""
    query = request.query_string
    header_token = request.headers.get(spec.TOKEN_HEADER)
    if header_token:
        query += f"&{spec.TOKEN_HEADER}={quote(header_token, safe='')}"
    location = f"https://{REDIRECT_HOST}{request.path}?{query}"
    return web.Response(status=302, body=b"", headers={"Location": location, "Content-Type": JSON_TYPE})


def faulty(request: web.BaseRequest, fault: str | None, good: bytes, echo_escape: str = "none") -> web.Response | None:
    """The answer to a call that meets `fault` (None or `slow`: the good one); None when the
    fault is to drop the connection, which this aborts."""
    if fault is None or fault == "slow":
        return respond(200, good)
    if fault in STATUS_FAULTS:
        return error(int(fault))
    if fault == "drop":
        transport = request.transport
        if transport is not None:
            transport.abort()
        return None
    if fault == "truncated":
        return respond(200, good[: len(good) // 2])
    if fault == "html":
        return respond(500, _HTML_ERROR, "text/html; charset=utf-8")
    if fault == "gateway":
        return respond(200, dumps({"message": MSG_GATEWAY_UNKNOWN}))
    if fault == "echo":
        return respond(500, gateway.echo(envelope(500, "upstream error"), request, echo_escape))
    if fault == "huge":
        return respond(200, _huge_body())
    if fault == "code":
        return respond(200, envelope(spec.UNEXPECTED, spec.STATUS_MEANINGS[spec.UNEXPECTED]))
    # nodata
    return respond(200, dumps({"code": spec.OK, "msg": spec.MSG_SUCCESS}))

"""What a gateway in front of the API does to an answer: compress it when the client
accepts that, send it chunked, and (when asked to misbehave) quote the request back in an
error. `dress` applies all of it to an answer the server has built."""

from __future__ import annotations

import json
import zlib

from aiohttp import web

from tmapi_spiders.sandbox.config import SandboxConfig
from tmapi_spiders.sandbox.items import dumps

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads  # type: ignore[assignment]


def accepted_encoding(header: str, wanted: str) -> str | None:
    """`wanted` (gzip, deflate or br) when the client's Accept-Encoding allows it (q=0 refuses)."""
    if wanted not in ("gzip", "deflate", "br"):
        return None
    offered = {}
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        offered[name.strip()] = q
    return wanted if offered.get(wanted, offered.get("*", 0.0)) > 0 else None


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        import brotli  # the sandbox extra

        return brotli.compress(body, quality=1)
    # gzip: a gzip member (wbits 31); deflate: zlib-wrapped, as HTTP's "deflate" means
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return compressor.compress(body) + compressor.flush()


def json_string(text: str, escape: str = "none") -> str:
    """`text` as a JSON string literal, quotes included, escaped the way `escape` names
    (config.ECHO_ESCAPES): a server's JSON writer decides this, not the text."""
    if escape == "none":
        return json.dumps(text, ensure_ascii=False)
    if escape == "slash":  # PHP's json_encode by default: `\/`, and `\uXXXX` beyond ASCII
        return json.dumps(text).replace("/", "\\/")
    if escape == "unicode":
        return '"' + "".join(f"\\u{unit:04X}" for unit in _utf16_units(text)) + '"'
    out = []  # mixed
    for i, char in enumerate(text):
        plain = json.dumps(char, ensure_ascii=False)[1:-1].replace("/", "\\/")
        units = _utf16_units(char)
        lower = "".join(f"\\u{unit:04x}" for unit in units)
        upper = "".join(f"\\u{unit:04X}" for unit in units)
        percent = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        out.append((plain, lower, upper, percent)[i % 4])
    return '"' + "".join(out) + '"'


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def echo(body: bytes, request: web.BaseRequest, escape: str = "none") -> bytes:
    """An error body that quotes the request back, as a misbehaving upstream's does, its
    text escaped in the JSON string as `escape` says (the JSON stays valid: a client that
    decodes it reads the headers and query as sent)."""
    headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    echoed = f"upstream error, request headers were {headers}; query was {request.query_string}"
    try:
        payload = _loads(body)
    except ValueError:
        return body + f"<!-- {echoed} -->".encode()
    if isinstance(payload, dict):
        key = "message" if "message" in payload and "code" not in payload else "msg"
        text = f"{payload.get(key) or ''} ({echoed})"
        if escape == "none":
            payload[key] = text
            return dumps(payload)
        payload[key] = _PLACEHOLDER
        return dumps(payload).replace(json.dumps(_PLACEHOLDER).encode(), json_string(text, escape).encode())
    return body


_PLACEHOLDER = "\x00echoed\x00"  # stands for the message while the rest of the body is written


async def dress(request: web.BaseRequest, response: web.StreamResponse, config: SandboxConfig) -> web.StreamResponse:
    """The answer as the gateway sends it: echo, compression, chunking (not /_sandbox/*)."""
    if not isinstance(response, web.Response) or response.prepared or request.path.startswith("/_sandbox/"):
        return response
    if request.transport is None or request.transport.is_closing():  # dropped, or the client gave up
        return response
    body = response.body
    if not isinstance(body, bytes):
        return response
    if config.echo_errors and response.status != 200:
        body = echo(body, request, config.echo_escape)
    encoding = accepted_encoding(request.headers.get("Accept-Encoding", ""), config.compress)
    if encoding:
        body = compress(body, encoding)
    if not config.chunked:
        if body is not response.body:
            response.body = body
        if encoding:
            response.headers["Content-Encoding"] = encoding
        return response
    stream = web.StreamResponse(status=response.status, reason=response.reason)
    stream.content_type = response.content_type
    if response.charset:
        stream.charset = response.charset
    if encoding:
        stream.headers["Content-Encoding"] = encoding
    if "Location" in response.headers:  # a redirect's target goes through as it is
        stream.headers["Location"] = response.headers["Location"]
    if "Retry-After" in response.headers:
        stream.headers["Retry-After"] = response.headers["Retry-After"]
    stream.enable_chunked_encoding()
    await stream.prepare(request)
    await stream.write(body)
    await stream.write_eof()
    return stream

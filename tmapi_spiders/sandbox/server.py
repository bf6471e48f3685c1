"""The sandbox HTTP server: TMAPI's two endpoints, its gateway answers, and /_sandbox/*.

It runs on aiohttp's low-level server (one handler, no router) because a page must cost
little more than slicing a cached catalogue and joining pre-serialised items. Checks run
in the gateway's order: route, authentication, limits, parameters, then latency and the
injected fault. Tokens are compared and forgotten: never logged, recorded or echoed.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tmapi_spiders.sandbox import spec
from tmapi_spiders.sandbox.catalogue import CatalogueCache, converted_path
from tmapi_spiders.sandbox.config import SandboxConfig
from tmapi_spiders.sandbox.faults import STATUS_FAULTS, FaultPlan, QpsWindow
from tmapi_spiders.sandbox.items import FILTER_BITS, dumps

STATS_PATH = "/_sandbox/stats"
CALLS_PATH = "/_sandbox/calls"
RESET_PATH = "/_sandbox/reset"

JSON_TYPE = "application/json; charset=utf-8"
# Reason phrases for the statuses HTTP does not name.
_REASONS = {spec.NO_BALANCE: "Insufficient Balance", spec.UPSTREAM_TIMEOUT: "Upstream Timeout"}
_HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><center><h1>500 Internal Server Error</h1></center><hr><center>openresty</center></body></html>"
)
_INT_RE = re.compile(r"[0-9]{1,12}")
# A gateway message no TMAPI document names, sent on HTTP 200 (the `gateway` fault).
MSG_GATEWAY_UNKNOWN = "An unexpected error occurred"


@lru_cache(maxsize=1)
def _huge_body() -> bytes:
    """The `huge` fault's answer: 5 MB, 1.7 million empty items on one page."""
    head = b'{"code":200,"msg":"success","data":{"page":1,"page_size":20,"total_count":20,"items":['
    return head + b"{}," * 1_700_000 + b"{}]}}"


def _body(code: int, msg: str) -> bytes:
    return dumps({"code": code, "msg": msg, "data": None})


def _respond(status: int, body: bytes, content_type: str = JSON_TYPE) -> web.Response:
    return web.Response(body=body, status=status, reason=_REASONS.get(status), headers={"Content-Type": content_type})


class _Invalid(Exception):
    """A parameter outside the documented domain: answered 422 with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Search:
    img_url: str
    page: int
    page_size: int
    language: str
    sort: str
    filters: tuple[tuple[str, bool], ...]

    def key(self) -> str:
        flags = ",".join(f"{name}={int(value)}" for name, value in self.filters)
        return (
            f"{spec.SEARCH_PATH}\0{self.img_url}\0{self.page}\0{self.page_size}\0{self.language}\0"
            f"{self.sort}\0{flags}"
        )


def parse_search(query: Mapping[str, str]) -> _Search:
    """Validate the search parameters exactly as the endpoint page documents them."""
    img_url = query.get("img_url")
    if not img_url:
        raise _Invalid("img_url: is required")
    page = _int(query, "page", spec.PAGE_DEFAULT, 1, None)
    page_size = _int(query, "page_size", spec.PAGE_SIZE_DEFAULT, 1, spec.PAGE_SIZE_MAX)
    language = query.get("language", spec.LANGUAGE_DEFAULT)
    if language not in spec.LANGUAGES:
        raise _Invalid(f"language: must be one of {', '.join(spec.LANGUAGES)}")
    sort = query.get("sort", spec.SORT_DEFAULT)
    if sort not in spec.SORTS:
        raise _Invalid(f"sort: must be one of {', '.join(spec.SORTS)}")
    filters = []
    for name in spec.FILTERS:
        raw = query.get(name)
        if raw is None:
            continue
        try:
            filters.append((name, spec.parse_bool(raw)))
        except ValueError:
            raise _Invalid(f"{name}: must be a boolean (true/false/1/0)") from None
    return _Search(img_url, page, page_size, language, sort, tuple(filters))


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if _INT_RE.fullmatch(raw):
        value = int(raw)
        if value >= low and (high is None or value <= high):
            return value
    bound = f"from {low} to {high}" if high is not None else f"of {low} or more"
    raise _Invalid(f"{name}: must be an integer {bound}")


@lru_cache(maxsize=1 << 16)
def _searchable(img_url: str) -> bool:
    """spec.is_alibaba_hosted, memoised: every page of an image asks again."""
    return spec.is_alibaba_hosted(img_url)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class Recorder:
    """Call records and counters behind /_sandbox/stats and /_sandbox/calls.

    Counters are plain dicts of ints (small even after millions of calls); records are
    compact tuples in a bounded deque, rendered as JSON only when asked for.
    """

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self.reset()

    def reset(self) -> None:
        self.records: deque[tuple[int, float, str, tuple[tuple[str, str], ...], int | None, str | None]] = deque(
            maxlen=self.max_records or None
        )
        self.total = 0
        self.endpoints: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.by_endpoint: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.pages: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.pages_ok: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.conversions: Counter[str] = Counter()
        self.conversions_ok: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.limited: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_concurrency = 0

    def record(
        self, endpoint: str, params: tuple[tuple[str, str], ...], status: int | None, fault: str | None = None
    ) -> None:
        self.total += 1
        self.records.append((self.total, time.time(), endpoint, params, status, fault))
        key = "dropped" if status is None else str(status)
        self.endpoints[endpoint] += 1
        self.statuses[key] += 1
        self.by_endpoint[endpoint][key] += 1
        if fault:
            self.faults[fault] += 1

    def stats(self, in_flight: int) -> dict[str, Any]:
        return {
            "total_calls": self.total,
            "in_flight": in_flight,
            "peak_concurrency": self.peak_concurrency,
            "endpoints": dict(self.endpoints),
            "statuses": dict(self.statuses),
            "by_endpoint": {name: dict(counts) for name, counts in self.by_endpoint.items()},
            "pages": {img: dict(pages) for img, pages in self.pages.items()},
            "pages_ok": {img: dict(pages) for img, pages in self.pages_ok.items()},
            "conversions": dict(self.conversions),
            "conversions_ok": dict(self.conversions_ok),
            "faults": dict(self.faults),
            "limited": dict(self.limited),
        }

    def calls(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        out = []
        for seq, at, endpoint, params, status, fault in self.records:
            if seq <= since:
                continue
            out.append(
                {"seq": seq, "time": at, "endpoint": endpoint, "params": dict(params), "status": status, "fault": fault}
            )
            if limit is not None and len(out) >= limit:
                break
        return {"total_calls": self.total, "calls": out}


class Sandbox:
    """The request handler and all server state; it lives on one event loop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.tokens = frozenset(config.tokens) | frozenset(config.broke_tokens)
        self.broke = frozenset(config.broke_tokens)
        self.deny = [re.compile(p) for p in config.deny_patterns]
        self.timeout_once = [re.compile(p) for p in config.convert_timeout_patterns]
        self.unrecognised = [re.compile(p) for p in config.unrecognised_patterns]
        self.catalogues = CatalogueCache(config.cache_size)
        self.plan = FaultPlan(
            config.seed, config.fault_rate, config.fault_kinds, config.latency, config.jitter, config.slow_seconds
        )
        self.qps = QpsWindow(config.max_qps)
        self.recorder = Recorder(config.max_call_records)
        self.in_flight = 0
        self._timed_out: set[str] = set()

    def reset(self) -> None:
        self.recorder.reset()
        self.plan.reset()
        self.qps.reset()
        self._timed_out.clear()

    # -- dispatch --------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve, then dress the answer as the gateway would: echo, compression, chunking."""
        response = await self._route(request)
        if not isinstance(response, web.Response) or response.prepared or request.path.startswith("/_sandbox/"):
            return response
        if request.transport is None or request.transport.is_closing():  # dropped, or the client gave up
            return response
        body = response.body
        if not isinstance(body, bytes):
            return response
        if self.config.echo_errors and response.status != 200:
            body = _echo(body, request)
        encoding = _accepted_encoding(request.headers.get("Accept-Encoding", ""), self.config.compress)
        if encoding:
            body = _compress(body, encoding)
        if not self.config.chunked:
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
        stream.enable_chunked_encoding()
        await stream.prepare(request)
        await stream.write(body)
        await stream.write_eof()
        return stream

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == spec.SEARCH_PATH and method == "GET":
            return await self._api(request, spec.SEARCH_PATH, self._search)
        if path == spec.CONVERT_PATH and method == "POST":
            return await self._api(request, spec.CONVERT_PATH, self._convert)
        if path == STATS_PATH and method == "GET":
            return _respond(200, dumps(self.recorder.stats(self.in_flight)))
        if path == CALLS_PATH and method == "GET":
            since = request.query.get("since", "0")
            limit = request.query.get("limit")
            if not since.isdigit() or (limit is not None and not limit.isdigit()):
                return _respond(422, _body(422, "since, limit: must be integers"))
            return _respond(200, dumps(self.recorder.calls(int(since), int(limit) if limit is not None else None)))
        if path == RESET_PATH and method == "POST":
            self.reset()
            return _respond(200, dumps({"code": 200, "msg": spec.MSG_SUCCESS, "data": {"reset": True}}))
        self.recorder.record("unmatched", (("method", method), ("path", path)), 404)
        return _respond(404, dumps({"message": spec.MSG_NO_ROUTE}))

    async def _api(self, request: web.BaseRequest, endpoint: str, serve: Any) -> web.StreamResponse:
        """Gateway checks shared by both endpoints: auth, then the concurrency and rate limits."""
        query = request.query
        way = self.config.auth
        token = (query.get(spec.TOKEN_QUERY_PARAM) if way != "header" else None) or (
            request.headers.get(spec.TOKEN_HEADER) if way != "query" else None
        )
        params = tuple((k, v) for k, v in query.items() if k != spec.TOKEN_QUERY_PARAM)
        recorder = self.recorder
        if not token:
            recorder.record(endpoint, params, 401)
            return _respond(401, dumps({"message": spec.MSG_NO_KEY}))
        if token not in self.tokens:
            recorder.record(endpoint, params, 401)
            return _respond(401, dumps({"message": spec.MSG_BAD_KEY}))
        if token in self.broke:
            recorder.record(endpoint, params, spec.NO_BALANCE)
            return _respond(
                spec.NO_BALANCE, _body(spec.NO_BALANCE, spec.STATUS_MEANINGS[spec.NO_BALANCE])
            )
        del token
        limit = self.config.max_concurrency
        if limit and self.in_flight >= limit:
            return self._limited(endpoint, params, "concurrency")
        if not self.qps.admit():
            return self._limited(endpoint, params, "qps")
        self.in_flight += 1
        if self.in_flight > recorder.peak_concurrency:
            recorder.peak_concurrency = self.in_flight
        try:
            return await serve(request, params)
        finally:
            self.in_flight -= 1

    def _limited(self, endpoint: str, params: tuple[tuple[str, str], ...], why: str) -> web.Response:
        self.recorder.limited[why] += 1
        self.recorder.record(endpoint, params, spec.CONCURRENCY_LIMIT)
        code = spec.CONCURRENCY_LIMIT
        return _respond(code, _body(code, spec.STATUS_MEANINGS[code]))

    async def _faulty(
        self,
        request: web.BaseRequest,
        endpoint: str,
        params: tuple[tuple[str, str], ...],
        call_key: str,
        good: bytes,
    ) -> tuple[web.StreamResponse | None, str | None]:
        """Apply latency and the call's fault. Returns (response, fault); response None = dropped."""
        fate = self.plan.decide(call_key)
        if fate.delay > 0:
            await asyncio.sleep(fate.delay)
        fault = fate.fault
        if fault is None or fault == "slow":
            return _respond(200, good), fault
        if fault in STATUS_FAULTS:
            code = int(fault)
            return _respond(code, _body(code, spec.STATUS_MEANINGS[code])), fault
        if fault == "drop":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return None, fault
        if fault == "truncated":
            return _respond(200, good[: len(good) // 2]), fault
        if fault == "html":
            return _respond(500, _HTML_ERROR, "text/html; charset=utf-8"), fault
        if fault == "gateway":
            return _respond(200, dumps({"message": MSG_GATEWAY_UNKNOWN})), fault
        if fault == "echo":
            return _respond(500, _echo(_body(500, "upstream error"), request)), fault
        if fault == "huge":
            return _respond(200, _huge_body()), fault
        if fault == "code":
            return _respond(200, _body(spec.UNEXPECTED, spec.STATUS_MEANINGS[spec.UNEXPECTED])), fault
        # nodata
        return _respond(200, dumps({"code": spec.OK, "msg": spec.MSG_SUCCESS})), fault

    # -- the search ------------------------------------------------------------------------
    async def _search(self, request: web.BaseRequest, params: tuple[tuple[str, str], ...]) -> web.StreamResponse:
        recorder = self.recorder
        try:
            search = parse_search(request.query)
        except _Invalid as exc:
            recorder.record(spec.SEARCH_PATH, params, spec.PARAM_ERROR)
            return _respond(spec.PARAM_ERROR, _body(spec.PARAM_ERROR, exc.message))
        if not _searchable(search.img_url) or (
            # an Alibaba-hosted image the search cannot read as it is (tmapi-notes: 422 "could not
            # be fetched or recognised"); its converted path is searchable
            self.unrecognised and any(p.search(search.img_url) for p in self.unrecognised)
        ):
            recorder.record(spec.SEARCH_PATH, params, spec.PARAM_ERROR)
            return _respond(spec.PARAM_ERROR, _body(spec.PARAM_ERROR, spec.MSG_IMAGE_NOT_SUPPORTED))
        page_key = str(search.page)
        recorder.pages[search.img_url][page_key] += 1
        good = self.search_body(search)
        if self.plan.quiet:  # no latency, no faults: nothing to decide (the common, fast case)
            recorder.pages_ok[search.img_url][page_key] += 1
            recorder.record(spec.SEARCH_PATH, params, 200)
            return _respond(200, good)
        response, fault = await self._faulty(request, spec.SEARCH_PATH, params, search.key(), good)
        status = None if response is None else response.status
        if response is not None and fault in (None, "slow"):
            recorder.pages_ok[search.img_url][page_key] += 1
        recorder.record(spec.SEARCH_PATH, params, status, fault)
        return response if response is not None else web.Response(status=500)

    def search_body(self, search: _Search) -> bytes:
        """The success answer: a slice of the image's catalogue, sorted and filtered."""
        catalogue = self.catalogues.get(search.img_url)
        mask = 0
        for name, wanted in search.filters:
            if wanted:
                mask |= FILTER_BITS[name]
        view = catalogue.view(search.sort, mask)
        real = len(view)
        config = self.config
        reported = config.report_total or real + math.ceil(real * config.overstate)
        size = min(search.page_size, config.max_page_size)
        page = min(search.page, config.stuck_after) if config.stuck_after else search.page
        start = (page - 1) * size
        indices = list(view[start : start + size])
        if config.repeat_rate and page > 1 and indices:
            previous = view[start - size : start]
            rng = random.Random(f"{catalogue.identity}\0{search.key()}")
            count = min(len(indices), len(previous), round(config.repeat_rate * len(indices)))
            for slot, repeated in zip(rng.sample(range(len(indices)), count), rng.sample(previous, count), strict=True):
                indices[slot] = repeated
        if config.filter_per_page and indices:
            # the backend filtered some items out after paging: the page comes back short
            rng = random.Random(f"filter\0{catalogue.identity}\0{search.key()}")
            for _ in range(min(config.filter_per_page, len(indices))):
                indices.pop(rng.randrange(len(indices)))
        filters = dumps(dict(search.filters)) if search.filters else b"{}"
        head = b'{"code":200,"msg":"success","data":{"page":%d,"page_size":%d,"total_count":%d,"sort":"%s",' % (
            search.page,
            size,
            reported,
            search.sort.encode(),
        )
        parts = catalogue.fragments(indices, search.language)
        return b"".join((head, b'"filters":%s,"items":[' % filters, *parts, b"]}}"))

    # -- the conversion --------------------------------------------------------------------
    async def _convert(self, request: web.BaseRequest, params: tuple[tuple[str, str], ...]) -> web.StreamResponse:
        recorder = self.recorder
        raw = await request.read()
        try:
            body = _loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            recorder.record(spec.CONVERT_PATH, params, spec.PARAM_ERROR)
            return _respond(spec.PARAM_ERROR, _body(spec.PARAM_ERROR, "body: must be a JSON object"))
        url = body.get("url")
        endpoint_for = body.get("search_api_endpoint", spec.CONVERT_SEARCH_ENDPOINTS[0])
        fields = (*params, ("url", str(url)), ("search_api_endpoint", str(endpoint_for)))
        message = None
        if not _is_http_url(url):
            message = "url: must be an http(s) URL"
        elif endpoint_for not in spec.CONVERT_SEARCH_ENDPOINTS:
            message = f"search_api_endpoint: must be one of {', '.join(spec.CONVERT_SEARCH_ENDPOINTS)}"
        elif any(p.search(url) for p in self.deny):
            message = spec.MSG_IMAGE_DENIED
        if message is not None:
            recorder.record(spec.CONVERT_PATH, fields, spec.PARAM_ERROR)
            return _respond(spec.PARAM_ERROR, _body(spec.PARAM_ERROR, message))
        recorder.conversions[url] += 1
        if url not in self._timed_out and any(p.search(url) for p in self.timeout_once):
            self._timed_out.add(url)
            recorder.record(spec.CONVERT_PATH, fields, spec.PARAM_ERROR)
            return _respond(spec.PARAM_ERROR, _body(spec.PARAM_ERROR, spec.MSG_IMAGE_TIMEOUT))
        good = dumps({"code": spec.OK, "msg": spec.MSG_SUCCESS, "data": {"image_url": converted_path(url)}})
        call_key = f"{spec.CONVERT_PATH}\0{url}\0{endpoint_for}"
        response, fault = await self._faulty(request, spec.CONVERT_PATH, fields, call_key, good)
        if response is not None and fault in (None, "slow"):
            recorder.conversions_ok[url] += 1
        recorder.record(spec.CONVERT_PATH, fields, None if response is None else response.status, fault)
        return response if response is not None else web.Response(status=500)


def _accepted_encoding(header: str, wanted: str) -> str | None:
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


def _compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        import brotli  # Scrapy's own dependency, for the same encoding

        return brotli.compress(body, quality=1)
    # gzip: a gzip member (wbits 31); deflate: zlib-wrapped, as HTTP's "deflate" means
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return compressor.compress(body) + compressor.flush()


def _echo(body: bytes, request: web.BaseRequest) -> bytes:
    """An error body that quotes the request back, as a misbehaving upstream's does."""
    headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    echoed = f"upstream error, request headers were {headers}; query was {request.query_string}"
    try:
        payload = _loads(body)
    except ValueError:
        return body + f"<!-- {echoed} -->".encode()
    if isinstance(payload, dict):
        key = "message" if "message" in payload and "code" not in payload else "msg"
        payload[key] = f"{payload.get(key) or ''} ({echoed})"
        return dumps(payload)
    return body


try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    from json import loads as _loads  # type: ignore[assignment]


class RunningSandbox:
    """A started server: its `base_url`, its state (`sandbox`), and `stop()`."""

    def __init__(self, sandbox: Sandbox, runner: web.ServerRunner, base_url: str) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        self._runner = runner

    async def stop(self) -> None:
        await self._runner.cleanup()


async def start_sandbox(config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Start the sandbox on the running asyncio loop (Scrapy's asyncio reactor works too)."""
    sandbox = Sandbox(config or SandboxConfig())
    server = web.Server(sandbox.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = runner.addresses
    bound_host, bound_port = sockets[0][0], sockets[0][1]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningSandbox(sandbox, runner, f"http://{shown}:{bound_port}")

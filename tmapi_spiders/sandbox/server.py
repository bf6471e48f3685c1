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
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tmapi_spiders.sandbox import gateway, spec
from tmapi_spiders.sandbox.catalogue import CatalogueCache, converted_path
from tmapi_spiders.sandbox.config import SandboxConfig
from tmapi_spiders.sandbox.faults import STATUS_FAULTS, FaultPlan, QpsWindow
from tmapi_spiders.sandbox.items import FILTER_BITS, dumps
from tmapi_spiders.sandbox.params import Invalid, Search, parse_search
from tmapi_spiders.sandbox.recorder import Recorder

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


@lru_cache(maxsize=1 << 16)
def _searchable(img_url: str) -> bool:
    """spec.is_alibaba_hosted, memoised: every page of an image asks again."""
    return spec.is_alibaba_hosted(img_url)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


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
            body = gateway.echo(body, request)
        encoding = gateway.accepted_encoding(request.headers.get("Accept-Encoding", ""), self.config.compress)
        if encoding:
            body = gateway.compress(body, encoding)
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
            return _respond(500, gateway.echo(_body(500, "upstream error"), request)), fault
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
        except Invalid as exc:
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

    def search_body(self, search: Search) -> bytes:
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

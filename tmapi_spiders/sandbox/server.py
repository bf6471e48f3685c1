"""The sandbox HTTP server: TMAPI's two endpoints, its gateway answers, and /_sandbox/*.

It runs on aiohttp's low-level server (one handler, no router) because a page must cost
little more than slicing a cached catalogue and joining pre-serialised items. Checks run
in the gateway's order: route, authentication, limits, parameters, then latency and the
injected fault. Tokens are compared and forgotten: never logged, recorded or echoed.

This module decides which answer a call gets and keeps the server's state; the answers
themselves (the envelope, the gateway's errors, each fault's answer) are built by
`answers.py`, and what the gateway does to them on the way out (echo, compression,
chunking) is `gateway.dress`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections import Counter
from email.utils import formatdate
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tmapi_spiders.sandbox import answers, days, gateway, spec
from tmapi_spiders.sandbox.catalogue import CatalogueCache, converted_path
from tmapi_spiders.sandbox.config import SandboxConfig
from tmapi_spiders.sandbox.faults import FaultPlan, QpsWindow
from tmapi_spiders.sandbox.items import FILTER_BITS, dumps
from tmapi_spiders.sandbox.params import Invalid, Search, parse_search
from tmapi_spiders.sandbox.recorder import Recorder

STATS_PATH = "/_sandbox/stats"
CALLS_PATH = "/_sandbox/calls"
RESET_PATH = "/_sandbox/reset"


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
        self.empty = [re.compile(p) for p in config.empty_patterns]
        self.string_code = [re.compile(p) for p in config.string_code_patterns]
        self.redirect = [re.compile(p) for p in config.redirect_patterns]
        self.catalogues = CatalogueCache(config.cache_size)
        self.plan = FaultPlan(
            config.seed, config.fault_rate, config.fault_kinds, config.latency, config.jitter, config.slow_seconds
        )
        self.qps = QpsWindow(config.max_qps)
        self.network = random.Random(config.seed)  # network_jitter's delays
        self.rate = QpsWindow(config.rate_limit)  # the gateway's own rate limit (429)
        self.recorder = Recorder(config.max_call_records)
        self.in_flight = 0
        self._timed_out: set[str] = set()
        self._emptied: Counter[str] = Counter()  # empty answers given, per search (empty_patterns)

    def reset(self) -> None:
        self.recorder.reset()
        self.plan.reset()
        self.qps.reset()
        self.rate.reset()
        self._timed_out.clear()
        self._emptied.clear()

    # -- dispatch --------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve, then dress the answer as the gateway would (`gateway.dress`)."""
        response = await self._route(request)
        if self.config.retry_after != "none" and response.status in (spec.RATE_LIMITED, spec.CONCURRENCY_LIMIT):
            if request.path in (spec.SEARCH_PATH, spec.CONVERT_PATH):
                response.headers[spec.RETRY_AFTER_HEADER] = self.retry_after(response.status)
        return await gateway.dress(request, response, self.config)

    def retry_after(self, status: int) -> str:
        """The Retry-After a refused call gets, in the configured form (RFC 9110 section 10.2.3):
        `retry_after_seconds`, or else the time until the rate limit admits a call again (a
        429) or a second (a 503), never under one second: both forms count whole seconds."""
        distance = self.config.retry_after_seconds
        if not distance:
            distance = self.rate.retry_in() if status == spec.RATE_LIMITED else 1.0
        if self.config.retry_after == "date":
            # rounded up, so the date is never nearer than the distance
            return formatdate(math.ceil(time.time() + max(1.0, distance)), usegmt=True)
        return str(max(1, math.ceil(distance)))

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == spec.SEARCH_PATH and method == "GET":
            return await self._api(request, spec.SEARCH_PATH, self._search)
        if path == spec.CONVERT_PATH and method == "POST":
            return await self._api(request, spec.CONVERT_PATH, self._convert)
        if path == STATS_PATH and method == "GET":
            return answers.respond(200, dumps(self.recorder.stats(self.in_flight)))
        if path == CALLS_PATH and method == "GET":
            since = request.query.get("since", "0")
            limit = request.query.get("limit")
            if not since.isdigit() or (limit is not None and not limit.isdigit()):
                return answers.failed(422, "since, limit: must be integers")
            return answers.respond(
                200, dumps(self.recorder.calls(int(since), int(limit) if limit is not None else None))
            )
        if path == RESET_PATH and method == "POST":
            self.reset()
            return answers.respond(200, dumps({"code": 200, "msg": spec.MSG_SUCCESS, "data": {"reset": True}}))
        self.recorder.record("unmatched", (("method", method), ("path", path)), 404)
        return answers.respond(404, dumps({"message": spec.MSG_NO_ROUTE}))

    async def _api(self, request: web.BaseRequest, endpoint: str, serve: Any) -> web.StreamResponse:
        """Gateway checks shared by both endpoints: auth, then the concurrency and rate limits."""
        if self.config.network_jitter:  # the call is still on its way: the gateway has not seen it
            await asyncio.sleep(self.network.uniform(0, self.config.network_jitter))
        query = request.query
        way = self.config.auth
        token = (query.get(spec.TOKEN_QUERY_PARAM) if way != "header" else None) or (
            request.headers.get(spec.TOKEN_HEADER) if way != "query" else None
        )
        params = tuple((k, v) for k, v in query.items() if k != spec.TOKEN_QUERY_PARAM)
        recorder = self.recorder
        if not token:
            recorder.record(endpoint, params, 401)
            return answers.respond(401, dumps({"message": spec.MSG_NO_KEY}))
        if token not in self.tokens:
            recorder.record(endpoint, params, 401)
            return answers.respond(401, dumps({"message": spec.MSG_BAD_KEY}))
        if token in self.broke:
            recorder.record(endpoint, params, spec.NO_BALANCE)
            return answers.error(spec.NO_BALANCE)
        del token
        if not self.rate.admit():  # the gateway's rate limit, in front of the API's own limits
            recorder.limited["rate"] += 1
            recorder.record(endpoint, params, spec.RATE_LIMITED)
            return answers.respond(spec.RATE_LIMITED, dumps({"message": spec.MSG_RATE_LIMITED}))
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
        return answers.error(spec.CONCURRENCY_LIMIT)

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
        return answers.faulty(request, fate.fault, good, self.config.echo_escape), fate.fault

    # -- the search ------------------------------------------------------------------------
    async def _search(self, request: web.BaseRequest, params: tuple[tuple[str, str], ...]) -> web.StreamResponse:
        recorder = self.recorder
        try:
            search = parse_search(request.query)
        except Invalid as exc:
            recorder.record(spec.SEARCH_PATH, params, spec.PARAM_ERROR)
            return answers.failed(spec.PARAM_ERROR, exc.message)
        if not _searchable(search.img_url) or (
            # an Alibaba-hosted image the search cannot read as it is (tmapi-notes: 422 "could not
            # be fetched or recognised"); its converted path is searchable
            self.unrecognised and any(p.search(search.img_url) for p in self.unrecognised)
        ):
            recorder.record(spec.SEARCH_PATH, params, spec.PARAM_ERROR)
            return answers.failed(spec.PARAM_ERROR, spec.MSG_IMAGE_NOT_SUPPORTED)
        page_key = str(search.page)
        recorder.pages[search.img_url][page_key] += 1
        if self.redirect and any(p.search(search.img_url) for p in self.redirect):
            recorder.record(spec.SEARCH_PATH, params, 302, "redirect")
            return answers.redirect(request)
        if self._hiccup(search):
            recorder.record(spec.SEARCH_PATH, params, 200, "empty")
            return answers.respond(200, self.search_body(search, empty=True))
        good = self.search_body(search)
        if self.string_code and any(p.search(search.img_url) for p in self.string_code):
            good = good.replace(b'"code":200', b'"code":"200"', 1)
            recorder.record(spec.SEARCH_PATH, params, 200, "string_code")
            return answers.respond(200, good)
        if self.plan.quiet:  # no latency, no faults: nothing to decide (the common, fast case)
            recorder.pages_ok[search.img_url][page_key] += 1
            recorder.record(spec.SEARCH_PATH, params, 200)
            return answers.respond(200, good)
        response, fault = await self._faulty(request, spec.SEARCH_PATH, params, search.key(), good)
        status = None if response is None else response.status
        if response is not None and fault in (None, "slow"):
            recorder.pages_ok[search.img_url][page_key] += 1
        recorder.record(spec.SEARCH_PATH, params, status, fault)
        return response if response is not None else web.Response(status=500)

    def _hiccup(self, search: Search) -> bool:
        """Whether this ask of the page is one of the first `empty_times` of a matching image's
        `empty_page` (counted per identical search, so every run is exact)."""
        config = self.config
        if not self.empty or search.page != config.empty_page:
            return False
        if not any(p.search(search.img_url) for p in self.empty):
            return False
        key = search.key()
        if self._emptied[key] >= config.empty_times:
            return False
        self._emptied[key] += 1
        return True

    def search_body(self, search: Search, empty: bool = False) -> bytes:
        """The success answer: a slice of the image's catalogue, sorted and filtered (`empty`:
        no items, the same total_count, as a backend's hiccup answers)."""
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
        indices = [] if empty else list(view[start : start + size])
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
        if config.day:
            # a later day: each item as it stands then (parsed and rendered again: slower, tests only)
            items = json.loads(b"[" + b"".join(parts) + b"]")
            parts = [dumps([days.apply(item, config.day) for item in items])[1:-1]]
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
            return answers.failed(spec.PARAM_ERROR, "body: must be a JSON object")
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
            return answers.failed(spec.PARAM_ERROR, message)
        recorder.conversions[url] += 1
        if url not in self._timed_out and any(p.search(url) for p in self.timeout_once):
            self._timed_out.add(url)
            recorder.record(spec.CONVERT_PATH, fields, spec.PARAM_ERROR)
            return answers.failed(spec.PARAM_ERROR, spec.MSG_IMAGE_TIMEOUT)
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

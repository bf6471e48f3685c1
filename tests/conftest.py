"""Shared fixtures. Sandbox fixtures: a running local TMAPI over real HTTP (docs/sandbox.md)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import settings as hypothesis_settings
from scrapy.utils.reactor import install_reactor

from tests.redis_server import RedisServer
from tmapi_spiders.api import contract
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

# The test process's reactor is the asyncio one the project's crawls ask for: crawls in this
# process (tests/in_process.py) run on it. Installed first, before a test's `get_crawler` or
# import of `twisted.internet.reactor` installs Twisted's default one for good.
install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")

# Property tests run on a loaded machine (four test workers on two cores): an example's
# duration says nothing there, so no deadline.
hypothesis_settings.register_profile("loaded", deadline=None)
hypothesis_settings.load_profile("loaded")

SANDBOX_TOKEN = "test-token"
SANDBOX_BROKE_TOKEN = "test-broke-token"


@dataclass
class Answer:
    """One HTTP answer from the sandbox."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class SandboxClient:
    """A tiny blocking HTTP client for a sandbox: real sockets, no framework in between."""

    def __init__(self, sandbox: SandboxThread, token: str | None = SANDBOX_TOKEN) -> None:
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> Answer:
        query = urlencode(params or {})
        url = self.base_url + path + ("?" + query if query else "")
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as err:
            return Answer(err.code, dict(err.headers), err.read())

    def search(self, img_url: str | None = None, token: str | None = "", **params: Any) -> Answer:
        """GET the search; `token=""` means the client's token, None means no token at all."""
        query: dict[str, Any] = {}
        token = self.token if token == "" else token
        if token is not None:
            query[contract.TOKEN_QUERY_PARAM] = token
        if img_url is not None:
            query["img_url"] = img_url
        query.update(params)
        return self.request("GET", contract.SEARCH_PATH, query)

    def convert(self, url: Any = None, token: str | None = "", raw: bytes | None = None, **fields: Any) -> Answer:
        token = self.token if token == "" else token
        query = {contract.TOKEN_QUERY_PARAM: token} if token is not None else {}
        payload = dict(fields)
        if url is not None:
            payload["url"] = url
        body = raw if raw is not None else json.dumps(payload).encode()
        return self.request(
            "POST", contract.CONVERT_PATH, query, body=body, headers={"Content-Type": "application/json"}
        )

    def all_items(self, img_url: str, **params: Any) -> tuple[int, list[dict[str, Any]]]:
        """Every item over every page (page_size 20), with the reported total_count."""
        items: list[dict[str, Any]] = []
        first = self.search(img_url, **params).json()["data"]
        total = first["total_count"]
        items.extend(first["items"])
        for page in range(2, contract.last_page(total, 20) + 1):
            data = self.search(img_url, page=page, **params).json()["data"]
            assert data["total_count"] == total
            items.extend(data["items"])
        return total, items


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free port for the module's tests (each test uses its own
    job name, so they never see each other's keys)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxThread]:
    """One fault-free sandbox for the whole session (reset before each test by `sandbox`)."""
    config = SandboxConfig(
        tokens=(SANDBOX_TOKEN,),
        broke_tokens=(SANDBOX_BROKE_TOKEN,),
        deny_patterns=(r"://denied\.example\.com/",),
        convert_timeout_patterns=(r"://slow\.example\.com/",),
    )
    with SandboxThread(config) as sb:
        yield sb


@pytest.fixture(scope="module")
def module_sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxThread]:
    """One sandbox for the module, started with its `SANDBOX_OPTIONS` (SandboxConfig fields)."""
    with SandboxThread(SandboxConfig(**request.module.SANDBOX_OPTIONS)) as sb:
        yield sb


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> SandboxThread:
    """The module's own sandbox where it sets `SANDBOX_OPTIONS`, else the session's fault-free
    one; its call records and counters cleared."""
    own = hasattr(request.module, "SANDBOX_OPTIONS")
    sb: SandboxThread = request.getfixturevalue("module_sandbox" if own else "sandbox_server")
    sb.reset()
    return sb


@pytest.fixture
def sandbox_client(sandbox: SandboxThread) -> SandboxClient:
    return SandboxClient(sandbox)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxThread]]:
    """Start a sandbox with custom options (SandboxConfig fields); all are stopped after the test."""
    started: list[SandboxThread] = []

    def make(**options: Any) -> SandboxThread:
        options.setdefault("tokens", (SANDBOX_TOKEN,))
        sb = SandboxThread(SandboxConfig(**options)).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


def _data_dir_config(home: Path) -> str:
    (home / "scrapy.cfg").write_text(f"[datadir]\ndefault = {home / 'data'}\n", encoding="utf-8")
    return str(home)


@pytest.fixture(scope="module", autouse=True)
def module_project_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The same as `own_project_data_dir` for a module's own fixtures (a module-scoped fixture
    runs before any function-scoped one): none of them writes to the repository's `.scrapy`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", _data_dir_config(tmp_path_factory.mktemp("xdg-module")))
        yield


@pytest.fixture(autouse=True)
def own_project_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's crawls get their own project data directory (`.scrapy`), as on a fresh checkout.

    The answer store is on by default and lives there (`.scrapy/tmapi-cache`); without this,
    a test would replay answers another test paid for against a sandbox on the same port
    (the session's shared sandbox, or a port used again later, even by an earlier session)
    and see no calls. Scrapy reads `[datadir]` from `$XDG_CONFIG_HOME/scrapy.cfg`, which every
    `scrapy` subprocess inherits.
    """
    monkeypatch.setenv("XDG_CONFIG_HOME", _data_dir_config(tmp_path_factory.mktemp("xdg")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with a test marked `slow` run first (in their own order, the rest after them).

    pytest-xdist hands tests out in collection order, and the slowest (the wheel install,
    the soaks, Redis Cluster/TLS/Sentinel) sat at the end of the alphabet: one of the two
    workers ran them alone while the other had finished. Started first, they overlap with
    the many short tests instead."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)

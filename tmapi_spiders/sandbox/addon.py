"""`SandboxAddon` (the ADDONS setting): `-s TMAPI_SANDBOX=true` crawls the bundled sandbox.

For this project's spiders (`tmapi_job = True`) the sandbox is served in-process on a free
loopback port (or TMAPI_SANDBOX_PORT) from `spider_opened` to `spider_closed`, and
TMAPI_BASE_URL and TMAPI_API_TOKEN point at it, above the command line: a real token in the
environment is never sent anywhere. The token is this process's own, random, so no token
needs to be given and redaction treats it as any other. The answer store's `auto` keeps
nothing: the sandbox's answers cost nothing.

The server needs the `sandbox` extra (aiohttp), imported only when TMAPI_SANDBOX is on.
"""

from __future__ import annotations

import logging
import secrets
import socket
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.jobs import backends
from tmapi_spiders.registry import ConfigError, Setting
from tmapi_spiders.sandbox.config import SandboxConfig

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
TOKEN = secrets.token_urlsafe(18)  # the one token this process's sandbox accepts
CMDLINE = 40  # Scrapy's `cmdline` priority: what the add-on sets wins over -s
NO_EXTRA = "TMAPI_SANDBOX needs the sandbox extra (aiohttp): pip install 'tmapi-spiders[sandbox]'"
SHARED_JOB = (
    "TMAPI_SANDBOX starts a private sandbox in each worker, which other workers cannot reach:"
    " start one with `python -m tmapi_spiders.sandbox --port 8900` and set TMAPI_BASE_URL to it"
)

registry.declare(
    Setting(
        "TMAPI_SANDBOX",
        "bool",
        False,
        "Crawling",
        doc="Start the bundled sandbox in-process and crawl it: no token, no cost, no answer store "
        "(`TMAPI_CACHE=auto`). Needs the `sandbox` extra.",
    ),
    Setting(
        "TMAPI_SANDBOX_PORT",
        "int",
        0,
        "Crawling",
        low=0,
        high=65535,
        zero="not running",
        doc="Set by TMAPI_SANDBOX (the sandbox's loopback port, chosen at start); 0: not running.",
    ),
)


def enabled(settings: BaseSettings) -> bool:
    try:
        return settings.getbool("TMAPI_SANDBOX")
    except ValueError:
        return False  # config.check_settings names the bad value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _override(settings: BaseSettings, name: str, value: Any) -> None:
    settings.set(name, value, priority=max(settings.getpriority(name) or 0, CMDLINE))


class SandboxAddon:
    """`-s TMAPI_SANDBOX=true`: the crawl runs against a sandbox served in-process."""

    def __init__(self, crawler: Crawler) -> None:
        self.ours = bool(getattr(crawler.spidercls, "tmapi_job", False))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @classmethod
    def update_pre_crawler_settings(cls, settings: BaseSettings) -> None:
        """Before any crawler exists (and before `scrapy crawl` checks the settings): refuse
        what cannot work with one line (ConfigError), then settle the token and the answer
        store, which the checks read."""
        if not enabled(settings):
            return
        if backends.shared(settings):
            raise ConfigError(SHARED_JOB)
        try:
            import aiohttp  # noqa: F401  (the sandbox extra)
        except ImportError:
            raise ConfigError(NO_EXTRA) from None
        _override(settings, "TMAPI_API_TOKEN", TOKEN)
        if str(settings.get("TMAPI_CACHE") or "").strip().lower() == "auto":
            settings.set("TMAPI_CACHE", "false", priority=settings.getpriority("TMAPI_CACHE") or "addon")

    def update_settings(self, settings: BaseSettings) -> None:
        if not self.ours or not enabled(settings):
            return
        self.update_pre_crawler_settings(settings)
        # A port given with -s is used (a fixed port to watch the sandbox from outside).
        port = settings.getint("TMAPI_SANDBOX_PORT") or _free_port()
        _override(settings, "TMAPI_SANDBOX_PORT", port)
        _override(settings, "TMAPI_BASE_URL", f"http://{HOST}:{port}")
        settings.set_in_component_priority_dict("EXTENSIONS", SandboxServer, 0)


class SandboxServer:
    """Serves the sandbox from `spider_opened` (before the first request) to `spider_closed`."""

    def __init__(self, crawler: Crawler) -> None:
        port = crawler.settings.getint("TMAPI_SANDBOX_PORT")
        if not port:
            raise NotConfigured
        self.port = port
        self.running: Any = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def spider_opened(self) -> None:
        from tmapi_spiders.sandbox.server import start_sandbox  # aiohttp: only when TMAPI_SANDBOX is on

        self.running = await start_sandbox(SandboxConfig(tokens=(TOKEN,)), HOST, self.port)
        logger.info("TMAPI_SANDBOX: crawling the bundled sandbox at %s (no paid calls)", self.running.base_url)

    async def spider_closed(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

"""`TmapiAddon`, the project's one Scrapy add-on (the ADDONS setting): every feature on from settings.

Its `update_settings` runs when the crawler applies its settings, after the process
settings (`-s`, `-o`/`-O`) are merged. For this project's spiders only (a `tmapi_job =
True` class attribute: a user's own spider in the project keeps Scrapy's behaviour) it
completes, in order, what the user asked for, without the spider knowing the feature exists:

1. `TMAPI_SANDBOX=true`: the crawl runs against the bundled sandbox, started in-process on
   a free loopback port, with the sandbox's own token (TMAPI_BASE_URL and TMAPI_API_TOKEN
   point there, so a real token in the environment is never sent to it).
2. Feeds: products to the user's feeds (or a default one), failures beside them, the
   local files checked (feeds.py).
3. The answer store (TMAPI_CACHE), on Scrapy's HttpCacheMiddleware (cache.py).
4. A worker of a shared job (REDIS_URL) (distributed/__init__.py).
5. The plan's limits (TMAPI_MAX_CONCURRENCY / TMAPI_MAX_QPS) (limits/).
6. Spidermon (SPIDERMON_ENABLED) (monitoring/).

A plain value is set at Scrapy's `addon` priority, below the project's settings, a
spider's `custom_settings` and the command line, so the user's value always wins
(settings_util.set_unless_given); a dict the user gave (FEEDS, SPIDER_MIDDLEWARES) is
completed in place, the user's entries kept.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings

from tmapi_spiders.settings_util import set_unless_given

logger = logging.getLogger(__name__)

SANDBOX_HOST = "127.0.0.1"


def _enabled(settings: BaseSettings) -> bool:
    try:
        return settings.getbool("TMAPI_SANDBOX")
    except ValueError:
        return False  # config.check_settings names the bad value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((SANDBOX_HOST, 0))
        return int(sock.getsockname()[1])


# What the project's spiders crawl with unless the user says otherwise, at the add-on's
# priority so that the plan's limits may change them (limits/policy.py) and the user's
# settings still win: AutoThrottle until limits are set, 16 calls in flight.
DEFAULTS: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": True,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}


class TmapiAddon:
    """Every feature of the project, switched on from settings (see the module docstring).
    Only for this project's spiders (`tmapi_job = True`): a user's own spider in the same
    project keeps Scrapy's behaviour."""

    def __init__(self, crawler: Crawler) -> None:
        self.spider_name = str(getattr(crawler.spidercls, "name", "") or "")
        self.ours = bool(getattr(crawler.spidercls, "tmapi_job", False))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        if not self.ours:
            return
        from tmapi_spiders import cache, distributed, feeds, limits, monitoring

        for name, value in DEFAULTS.items():
            set_unless_given(settings, name, value)
        configure_sandbox(settings)
        feeds.configure(settings, self.spider_name)
        cache.configure(settings)
        distributed.configure(settings)
        limits.configure(settings)
        monitoring.configure(settings)


def configure_sandbox(settings: BaseSettings) -> None:
    if not _enabled(settings):
        return
    from tmapi_spiders.sandbox import DEFAULT_TOKEN

    # A port given with -s is used (a fixed port to watch the sandbox from outside);
    # otherwise a free one. Either way the sandbox starts, and the base URL and token
    # point at it: a real token in the environment is never sent anywhere.
    port = settings.getint("TMAPI_SANDBOX_PORT") or _free_port()
    wanted = {
        "TMAPI_SANDBOX_PORT": port,
        "TMAPI_BASE_URL": f"http://{SANDBOX_HOST}:{port}",
        "TMAPI_API_TOKEN": DEFAULT_TOKEN,
    }
    for name, value in wanted.items():
        settings.set(name, value, priority=max(settings.getpriority(name) or 0, 40))
    settings.set_in_component_priority_dict("EXTENSIONS", SandboxServer, 0)


def answers_cost_nothing(settings: BaseSettings) -> bool:
    """Whether an add-on points the crawl at a server whose answers cost nothing (the
    sandbox): the answer store's `auto` keeps none (cache.enabled asks, before add-ons run)."""
    return _enabled(settings)


def shared_job_conflict(settings: BaseSettings) -> str | None:
    """Why an add-on cannot serve a worker of a shared job (None: it can); the distributed
    preflight asks. The sandbox runs inside one process, where other workers cannot reach it."""
    if _enabled(settings):
        return (
            "TMAPI_SANDBOX starts a private sandbox in each worker, which other workers cannot reach:"
            " start one with `python -m tmapi_spiders.sandbox --port 8900` and set TMAPI_BASE_URL to it"
        )
    return None


def token_supplied(settings: BaseSettings) -> bool:
    """Whether an add-on will supply the API token (the sandbox's), so a crawl without
    TMAPI_API_TOKEN is not an error (config.check_settings asks, before add-ons run)."""
    return _enabled(settings)


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
        from tmapi_spiders.sandbox import SandboxConfig, start_sandbox

        self.running = await start_sandbox(SandboxConfig(), SANDBOX_HOST, self.port)
        logger.info("TMAPI_SANDBOX: crawling the bundled sandbox at %s (no paid calls)", self.running.base_url)

    async def spider_closed(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

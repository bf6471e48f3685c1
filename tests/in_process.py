"""Crawls inside the test process, through Scrapy's own `CrawlerRunner`, for the tests that
look at what a crawl did (its records, stats, signals, components) rather than at the process
that ran it (exit codes, stderr, signals sent to it: those stay `scrapy` subprocesses).

The asyncio reactor a crawl needs runs in a thread of its own, started at the first in-process
crawl and kept for the rest of the test process (a reactor cannot be started twice): the test
hands each crawl to it and waits, as `SandboxThread` does for the sandbox's event loop. Tests
that run in the same process see no reactor and no running event loop in their own thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerRunner
from scrapy.settings import Settings
from scrapy.utils.reactor import install_reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread

from tests.crawl_helpers import TOKEN, CrawlResult, read_jsonl
from tmapi_spiders.jobs import outcome
from tmapi_spiders.spiders.image_search import ImageSearchSpider

_lock = threading.Lock()
_reactor: Any = None


def reactor() -> Any:
    """The process's asyncio reactor, running in its own thread from the first call on."""
    global _reactor
    with _lock:
        if _reactor is None:
            install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
            from twisted.internet import reactor as installed  # the one just installed

            kwargs = {"installSignalHandlers": False}  # signals are the main thread's
            threading.Thread(target=installed.run, kwargs=kwargs, name="reactor", daemon=True).start()
            _reactor = installed
    return _reactor


def crawl_in_process(
    tmp_path: Path,
    base_url: str,
    args: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    token: str = TOKEN,
) -> CrawlResult:
    """`image_search` crawled in this process into `tmp_path/products.jsonl`: the project's
    settings, `settings` over them as `-s` would set them, `args` as the spider's `-a`.

    What the crawl wrote, as `crawl()` returns it, and the crawler itself (its stats and
    components). `returncode` is the exit code `scrapy crawl` gives the crawl's finish reason;
    `stderr` holds the crawl's log lines at its LOG_LEVEL, as `scrapy crawl` prints them.
    """
    out = tmp_path / "products.jsonl"
    given = Settings()
    given.setmodule("tmapi_spiders.settings", priority="project")
    given.setdict(
        {
            "TMAPI_API_TOKEN": token,
            "TMAPI_BASE_URL": base_url,
            "TMAPI_OUTPUT_DIR": str(tmp_path / "output"),
            "TMAPI_BACKOFF_BASE": 0.05,
            "FEEDS": {str(out): {"format": "jsonlines", "overwrite": True}},
            **(settings or {}),
        },
        priority="cmdline",
    )
    runner = CrawlerRunner(given)
    crawler = runner.create_crawler(ImageSearchSpider)

    def start() -> Deferred[None]:  # in the reactor's thread
        return runner.crawl(crawler, **(args or {}))

    with _crawl_log(given) as log:
        blockingCallFromThread(reactor(), start)
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    result = CrawlResult(
        outcome.exit_code(stats.get("finish_reason")), "", log.getvalue(), stats=stats, crawler=crawler
    )
    result.products = read_jsonl(out)
    result.failures = read_jsonl(out.with_name("products.failures.jsonl"))
    result.files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    return result


@contextlib.contextmanager
def _crawl_log(settings: Settings) -> Iterator[io.StringIO]:
    """The log lines of the reactor's thread, formatted as Scrapy's root handler would."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter(settings["LOG_FORMAT"], settings["LOG_DATEFORMAT"]))
    handler.setLevel(settings["LOG_LEVEL"])
    handler.addFilter(lambda record: record.threadName == "reactor")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, handler.level))
    try:
        yield text
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

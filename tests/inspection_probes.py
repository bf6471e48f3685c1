"""Extensions and a script the inspection tests run inside real `scrapy crawl` processes.

In the crawl process, not the test's: the engine, the scraper and Twisted's connection
pool are only real there (the pool needs the crawl's reactor).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from scrapy.http import Response

from tmapi_spiders import inspection
from tmapi_spiders.distributed.worker import LEASE_META, Worker
from tmapi_spiders.inspection import ENGINE_NEEDS, InspectionCheck, Need
from tmapi_spiders.itemproc import FeedExporter

# Attributes no Scrapy has, or a shape the real one does not have: what a rename looks like.
ABSENT = Need(("_slot", "nextcall_renamed"), "a method", lambda value: True, "a rename")
WRONG_SHAPE = Need(("_slot", "nextcall"), "a list", lambda value: isinstance(value, list), "a changed type")


class Verdicts:
    """Writes, to PROBE_VERDICTS: the probe's verdict on this crawl's own engine (and on
    specs naming an absent attribute or a wrong shape), and, for every record, whether the
    worker already counted the lease of the request that gave it as done when the feed had
    written the record (it must not: the record's own signal counts it off after this one)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.path = Path(crawler.settings["PROBE_VERDICTS"])
        self.out: dict[str, Any] = {"done_at_item": []}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        probe = cls(crawler)
        crawler.signals.connect(probe.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(probe.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(probe.spider_closed, signal=signals.spider_closed)
        return probe

    def spider_opened(self) -> None:
        engine = self.crawler.engine
        self.out["real"] = inspection.problems(engine, ENGINE_NEEDS)
        self.out["absent"] = inspection.problems(engine, (*ENGINE_NEEDS, ABSENT))
        self.out["wrong_shape"] = inspection.problems(engine, (WRONG_SHAPE,))

    def item_scraped(self, item: Any, response: Any) -> None:
        if isinstance(response, Response):
            worker = Worker.of(self.crawler)
            lease = response.request.meta.get(LEASE_META)
            self.out["done_at_item"].append(lease in worker.finished or lease not in worker.leases)

    def spider_closed(self) -> None:
        worker = Worker.of(self.crawler)
        self.out["held_at_close"] = len(worker.leases) + len(worker.finished)
        self.path.write_text(json.dumps(self.out), encoding="utf-8")


class StricterCheck(InspectionCheck):
    """The project's check on a Scrapy where an attribute it reads was renamed."""

    engine_needs = (*ENGINE_NEEDS, ABSENT)


def handler_verdicts() -> dict[str, Any]:
    """The pool verdict on the project's own download handler, built as a crawl builds it."""
    from scrapy.utils.project import get_project_settings
    from scrapy.utils.reactor import install_reactor
    from scrapy.utils.test import get_crawler

    from tmapi_spiders.download import CountedHTTP11DownloadHandler

    settings = get_project_settings()
    install_reactor(settings["TWISTED_REACTOR"])  # the crawl's own, as `scrapy crawl` installs it
    crawler = get_crawler(settings_dict=dict(settings))
    handler = CountedHTTP11DownloadHandler.from_crawler(crawler)
    lacking = get_crawler(settings_dict=dict(settings))
    inspection.stop_automatic_retries(object(), lacking)  # a handler without Twisted's pool
    check = InspectionCheck(lacking)
    try:
        check.spider_opened()
        stopped = ""
    except CloseSpider as exc:
        stopped = exc.reason
    return {
        "real": inspection.problems(handler, inspection.POOL_NEEDS),
        "retries_automatically": inspection.automatic_retries(handler),
        "lacking": inspection.problems(object(), inspection.POOL_NEEDS),
        "lacking_stops": stopped,
    }



class FeedExporterListeningTwice(FeedExporter):
    """The project's FeedExporter on a Scrapy whose FeedExporter connects a second receiver
    to item_scraped: ItemProcessor's call and the signal would both export each record."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        exporter = super().from_crawler(crawler)
        crawler.signals.connect(exporter.item_scraped_again, signal=signals.item_scraped)
        return exporter

    def item_scraped_again(self, item: Any, spider: Any) -> None:
        self.item_scraped(item, spider)


if __name__ == "__main__":
    json.dump(handler_verdicts(), sys.stdout)

"""TMAPI_REPORT=true: `out/products.jsonl` -> `out/products.report.html` (as `scrapy report`, docs/report.md).

Written on `feed_exporter_closed`, once the feed is whole on disk, after the run summary it shows;
only a local JSON Lines products feed can be read back.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Self

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.extensions.feedexport import FeedExporter, FeedSlot

from tmapi_spiders import registry, report
from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.crawl import feeds
from tmapi_spiders.crawl.outputs import beside, local_path, write_whole
from tmapi_spiders.extensions import for_tmapi_job
from tmapi_spiders.extensions.summary import TmapiRunSummary
from tmapi_spiders.spreadsheets.sourcing import Choice

logger = logging.getLogger(__name__)


class TmapiReport:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.products: FeedSlot | None = None
        self.failures: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not registry.read(crawler.settings, "TMAPI_REPORT") or not for_tmapi_job(crawler):
            raise NotConfigured
        o = cls(crawler)
        crawler.signals.connect(o.feed_slot_closed, signal=signals.feed_slot_closed)
        crawler.signals.connect(o.feed_exporter_closed, signal=signals.feed_exporter_closed)
        crawler.signals.connect(o.spider_closed, signal=signals.spider_closed)
        return o

    def feed_slot_closed(self, slot: FeedSlot) -> None:
        if feeds.failures_only(slot.feed_options):
            self.failures = self.failures or slot.uri
        elif self.products is None:
            self.products = slot

    async def feed_exporter_closed(self) -> None:
        # The summary is written on the same signal: make sure it is on disk first.
        summary = self.crawler.get_extension(TmapiRunSummary)
        if summary is not None:
            await summary.write()
        self.write(summary.path if summary is not None else None)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.crawler.get_extension(FeedExporter) is None:
            logger.warning("TMAPI_REPORT: no feed exporter, so no products feed to report on")

    def write(self, summary: str | None) -> None:
        """The report of this crawl's own feeds and summary, never an older run's files beside the feed."""
        slot = self.products
        path = local_path(slot.uri) if slot is not None else None
        if slot is None or path is None or slot.format not in ("jsonlines", "jsonl", "jl"):
            where = f"{slot.uri} ({slot.format})" if slot is not None else "none"
            logger.warning("TMAPI_REPORT: the report needs a local JSON Lines products feed; the feed is %s", where)
            return
        output = beside(path, report.SUFFIX)
        # The crawl's `-a best/best_by/max_price/max_moq/badges`: the page's default filters (none: unfiltered).
        choice = getattr(getattr(self.crawler.spider, "job", None), "choice", None)
        started = time.perf_counter()
        try:
            page = report.build(
                Path(path),
                failures=report.existing(local_path(self.failures) if self.failures else None),
                summary=report.existing(summary),
                secrets=secrets_of(self.crawler.settings),
                discover=False,
                choice=choice if isinstance(choice, Choice) and choice != Choice() else None,
            )
            write_whole(output, (page,))
        except (report.ReportError, OSError) as exc:
            logger.error("TMAPI_REPORT: could not write the report to %s: %s", output, exc)
            return
        logger.info("HTML report written to %s (%.1f s)", output, time.perf_counter() - started)

"""The run summary: each image's outcome as JSON beside the feeds, and a table in the log.

Images started and not finished are listed as `unfinished`, so its sums add up to the feeds.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any, Self

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.extensions.feedexport import FeedExporter, FeedSlot

from tmapi_spiders import registry
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api.requests import META_KEY
from tmapi_spiders.clock import utc_now
from tmapi_spiders.crawl import feeds, seed_reading
from tmapi_spiders.crawl.outputs import summary_file, write_whole
from tmapi_spiders.crawl.writes import WriteGuard
from tmapi_spiders.extensions import for_tmapi_job, stat
from tmapi_spiders.jobs import backends
from tmapi_spiders.jobs.backends import LocalResults

logger = logging.getLogger(__name__)

# `ended`: why a finished image's search stopped (paging.end_of_search's reasons).
FIELDS = ("query_image_url", "status", "total_count", "pages", "items", "duplicates", "ended", "reason")


def totals_of(images: list[dict[str, Any]], images_total: int) -> dict[str, Any]:
    statuses = Counter(i.get("status") for i in images)
    done, failed = statuses["done"], statuses["failed"]
    return {
        "images": max(images_total, len(images)),
        "images_done": done,
        "images_failed": failed,
        "images_unfinished": max(0, images_total - done - failed),
        **{name: sum(int(i.get(name) or 0) for i in images) for name in ("pages", "items", "duplicates")},
    }


def table(images: list[dict[str, Any]], totals: dict[str, Any], rows: int = 20) -> str:
    """A fixed-width table of the first `rows` images (failures first), then the totals."""
    order = {"failed": 0, "unfinished": 1}
    shown = sorted(images, key=lambda i: order.get(str(i.get("status")), 2))[:rows]
    header = ("image", "status", "total", "pages", "items", "dups", "reason")
    lines: list[tuple[str, ...]] = [header]
    for image in shown:
        url, total = str(image.get("query_image_url", "")), image.get("total_count")
        counts = (str(image.get(name, 0)) for name in ("pages", "items", "duplicates"))
        shown_url = url if len(url) <= 60 else "..." + url[-57:]
        status, reason = str(image.get("status", "")), str(image.get("reason", ""))[:60]
        lines.append((shown_url, status, "-" if total is None else str(total), *counts, reason))
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    out = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(line)).rstrip() for line in lines]
    if len(images) > len(shown):
        out.append(f"... and {len(images) - len(shown)} more images (see the summary file)")
    line = (
        "totals: {images} images: {images_done} done, {images_failed} failed, {images_unfinished} unfinished;"
        " {pages} pages, {items} items, {duplicates} duplicates; {paid_calls} paid calls".format(**totals)
    )
    if totals.get("cached_answers"):
        line += f", {totals['cached_answers']} answers reused free from the answer store"
    if totals.get("answers_not_saved"):
        line += f"; {totals['answers_not_saved']} answers NOT saved in the answer store (see the error above)"
    out.append(line)
    return "\n".join(out)


class TmapiRunSummary:
    """Collects per-image results and writes the summary once the feeds are closed (TMAPI_SUMMARY)."""

    def __init__(self, crawler: Crawler, results: LocalResults) -> None:
        self.crawler = crawler
        self.results = results
        self.products_uri: str | None = None
        self.started = ""
        self.path = ""  # where the summary is written, once known
        self.written = False
        # One process: the paging state of each started, unfinished image's latest request.
        self.in_progress: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not registry.read(crawler.settings, "TMAPI_SUMMARY") or not for_tmapi_job(crawler):
            raise NotConfigured
        o = cls(crawler, backends.for_crawler(crawler).image_results())
        crawler.signals.connect(o.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(o.image_finished, signal=tmapi_signals.image_finished)
        if not o.results.shared:
            crawler.signals.connect(o.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(o.feed_slot_closed, signal=signals.feed_slot_closed)
        crawler.signals.connect(o.write, signal=signals.feed_exporter_closed)
        crawler.signals.connect(o.spider_closed, signal=signals.spider_closed)
        return o

    def spider_opened(self, spider: Spider) -> None:
        self.started = utc_now()

    def request_scheduled(self, request: Any, spider: Spider) -> None:
        state = request.meta.get(META_KEY)
        if isinstance(state, dict) and state.get("image"):
            self.in_progress[state["image"]] = state

    def image_finished(self, image: dict[str, Any]) -> None:
        self.in_progress.pop(str(image.get("query_image_url")), None)
        self.results.add({name: image.get(name) for name in FIELDS})

    def unfinished(self, finish_reason: str) -> list[dict[str, Any]]:
        return [
            {
                "query_image_url": image,
                "status": "unfinished",
                "total_count": state.get("total"),
                "pages": max(0, int(state.get("page") or 1) - 1),
                "items": int(state.get("items") or 0),
                "duplicates": int(state.get("dups") or 0),
                "ended": None,
                "reason": f"not finished: the crawl stopped ({finish_reason})",
            }
            for image, state in self.in_progress.items()
        ]

    def feed_slot_closed(self, slot: FeedSlot) -> None:
        if self.products_uri is None and not feeds.failures_only(slot.feed_options):
            self.products_uri = slot.uri

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        # Without a feed exporter there is no feed_exporter_closed to wait for.
        if self.crawler.get_extension(FeedExporter) is None:
            await self.write()

    async def write(self) -> None:
        if self.written:
            return
        self.written = True
        self._write(await self.results.all())

    def write_after_forced_stop(self) -> None:
        """`scrapy crawl`: a second Ctrl-C stopped the reactor before the spider closed."""
        if self.written:
            return
        self.written = True
        if self.products_uri is None:  # no slot closed: the first products feed that names a file
            given = self.crawler.settings.getdict("FEEDS").items()
            named = (str(uri) for uri, options in given if not feeds.failures_only(options) and "%(" not in str(uri))
            self.products_uri = next(named, None)
        self._write(self.results.mine())

    def _write(self, images: list[dict[str, Any]]) -> None:
        settings, stats = self.crawler.settings, self.crawler.stats
        assert stats is not None
        reason = stats.get_value("finish_reason")
        if not self.results.shared:
            images += self.unfinished(str(reason))
        write_failed = WriteGuard.of(self.crawler).failed
        if write_failed is not None and not self.results.shared:
            # Which records reached the disk is not known one by one: no image is reported done.
            lost = {"status": "unfinished", "reason": f"records not written: {write_failed}"}
            images = [i if i.get("status") != "done" else {**i, **lost} for i in images]
        stamp = self.started.replace(":", "-")
        spider_name = self.crawler.spider.name if self.crawler.spider else None
        path = self.path = summary_file(settings, self.products_uri, spider_name or "crawl", stamp)
        not_started = {} if self.results.shared else seed_reading.list_not_started(self.crawler, path)
        job = self.results.job_totals()
        totals = totals_of(images, job.get("images", stat(stats, "tmapi/images_total")))
        # Besides the per-image sums: what was fetched and written, unfinished images included.
        for name, key in (("paid_calls", "paid_calls"), ("pages_fetched", "pages"), ("items_written", "items")):
            totals[name] = job.get(name, stat(stats, f"tmapi/{key}"))
        totals["cached_answers"] = stat(stats, "httpcache/hit")
        totals.update(not_started)
        not_saved = stat(stats, "tmapi/answers/store_failed")
        if not_saved:  # the answer store could not keep them (disk full): a re-run pays for them again
            totals["answers_not_saved"] = not_saved
        currency = getattr(getattr(self.crawler.spider, "job", None), "currency", None)
        summary = {
            "spider": spider_name,
            "finish_reason": reason,
            # A feed that could not be written: its records are missing (exit code 7).
            "write_failed": write_failed,
            "started_at": self.started,
            "finished_at": utc_now(),
            "max_calls": stats.get_value("tmapi/max_calls"),
            # -a currency/rate: the rate every record's `converted` prices were computed with.
            "currency": currency.to_dict() if currency is not None else None,
            "job": self.results.job_name,
            "totals": totals,
            "images": images,
        }
        logger.info("Run summary (finish reason: %s):\n%s", reason, table(images, totals))
        if summary["currency"]:
            logger.info("Prices converted at 1 CNY = %(rate)s %(currency)s (the rate given)", summary["currency"])
        try:
            write_whole(path, (json.dumps(summary, ensure_ascii=False, indent=1), "\n"))
        except OSError as exc:
            WriteGuard.of(self.crawler).fail(path, exc)
            return
        logger.info("Run summary written to %s", path)
        self.results.cleanup(settings.getbool("SCHEDULER_PERSIST"))

"""The run summary: what happened to each image, as a JSON file beside the feeds and a table in the log.

Fed by `tmapi_spiders.signals.image_finished` (one per image, whatever its outcome).
Written once the feed exporters are done (`feed_exporter_closed`), to
`<products feed stem>.summary.json` next to the first products feed, or to
TMAPI_SUMMARY_FILE. Images the crawl never finished (a cap, a fatal API error, a
shutdown) are counted as unfinished; in one process each image the crawl had started and
not finished is listed too, with status `unfinished`, the pages and items it got so far
(from the chain state of its last scheduled request), so the summary's pages and items
add up to what the feeds hold. In a distributed job the results live in Redis
(`{<job>}:summary`), so every worker's summary covers the whole job as far as it has
gone; the last worker to stop writes the complete one.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Protocol, Self
from urllib.parse import unquote, urlsplit

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.extensions.feedexport import FeedExporter, FeedSlot

from tmapi_spiders import feeds
from tmapi_spiders import signals as tmapi_signals
from tmapi_spiders.api import META_KEY
from tmapi_spiders.clock import utc_now
from tmapi_spiders.extensions import for_tmapi_job

logger = logging.getLogger(__name__)

# `ended`: why a finished image's search stopped (spiders/image_search.py END_*); with
# items below total_count it says why the API's count was not reached.
FIELDS = ("query_image_url", "status", "total_count", "pages", "items", "duplicates", "ended", "reason")
TABLE_ROWS = 20
SUFFIX = ".summary.json"
FORCED = "shutdown_forced"  # finish reason after a second Ctrl-C / SIGTERM (outcome.INTERRUPTED)


class ImageResults(Protocol):
    """Where per-image results are kept: this process, or the whole job (Redis)."""

    def add(self, image: dict[str, Any]) -> None:
        """Called from a signal handler: must not block the reactor."""

    async def all(self) -> list[dict[str, Any]]: ...


class LocalResults:
    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []

    def add(self, image: dict[str, Any]) -> None:
        self.images.append(image)

    async def all(self) -> list[dict[str, Any]]:
        return list(self.images)


def summary_path(products_uri: str | None, output_dir: str, spider_name: str, stamp: str) -> str:
    """`x/products.jsonl` -> `x/products.summary.json`; feeds that are not local files
    (stdout, s3://...) put the summary under the output directory."""
    if products_uri:
        parts = urlsplit(products_uri)
        path = None
        if parts.scheme == "file":
            path = unquote(parts.path)
        elif len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
            path = products_uri
        if path and path not in ("-",):
            head, name = os.path.split(path)
            stem, dot, _ext = name.rpartition(".")
            return os.path.join(head, (stem if dot and stem else name) + SUFFIX)
    return os.path.join(output_dir, f"{spider_name}-{stamp}{SUFFIX}")


def totals_of(images: list[dict[str, Any]], images_total: int) -> dict[str, Any]:
    done = sum(1 for i in images if i.get("status") == "done")
    failed = sum(1 for i in images if i.get("status") == "failed")
    return {
        "images": max(images_total, len(images)),
        "images_done": done,
        "images_failed": failed,
        "images_unfinished": max(0, images_total - done - failed),
        "pages": sum(int(i.get("pages") or 0) for i in images),
        "items": sum(int(i.get("items") or 0) for i in images),
        "duplicates": sum(int(i.get("duplicates") or 0) for i in images),
    }


def table(images: list[dict[str, Any]], totals: dict[str, Any], rows: int = TABLE_ROWS) -> str:
    """A short fixed-width table: the first `rows` images (failures first), then the totals."""
    order = {"failed": 0, "unfinished": 1}
    shown = sorted(images, key=lambda i: order.get(str(i.get("status")), 2))[:rows]
    header = ("image", "status", "total", "pages", "items", "dups", "reason")
    lines = [header]
    for image in shown:
        url = str(image.get("query_image_url", ""))
        lines.append(
            (
                url if len(url) <= 60 else "..." + url[-57:],
                str(image.get("status", "")),
                "-" if image.get("total_count") is None else str(image["total_count"]),
                str(image.get("pages", 0)),
                str(image.get("items", 0)),
                str(image.get("duplicates", 0)),
                str(image.get("reason", ""))[:60],
            )
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    out = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(line)).rstrip() for line in lines]
    if len(images) > len(shown):
        out.append(f"... and {len(images) - len(shown)} more images (see the summary file)")
    line = (
        "totals: {images} images: {images_done} done, {images_failed} failed, {images_unfinished} unfinished;"
        " {pages} pages, {items} items, {duplicates} duplicates; {paid_calls} paid calls".format(**totals)
    )
    if totals.get("cached_answers"):  # a resumed or extended run: what it did not pay for again
        line += f", {totals['cached_answers']} answers reused free from the answer store"
    if totals.get("answers_not_saved"):
        line += f"; {totals['answers_not_saved']} answers NOT saved in the answer store (see the error above)"
    out.append(line)
    return "\n".join(out)


class TmapiRunSummary:
    """Collects per-image results and writes the summary at the end (TMAPI_SUMMARY=false switches it off)."""

    def __init__(self, crawler: Crawler, results: ImageResults) -> None:
        self.crawler = crawler
        self.results = results
        self.products_uri: str | None = None
        self.started = ""
        self.written = False
        # One process: images started and not finished yet, by query image URL: their chain
        # state as of their latest scheduled request (api.META_KEY of its meta).
        self.in_progress: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("TMAPI_SUMMARY", True) or not for_tmapi_job(crawler):
            raise NotConfigured
        o = cls(crawler, job_results(crawler))
        crawler.signals.connect(o.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(o.image_finished, signal=tmapi_signals.image_finished)
        if isinstance(o.results, LocalResults):
            crawler.signals.connect(o.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(o.feed_slot_closed, signal=signals.feed_slot_closed)
        crawler.signals.connect(o.feed_exporter_closed, signal=signals.feed_exporter_closed)
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
        """The images started and not finished, as summary entries (status `unfinished`)."""
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
        classes = [str(c) for c in (slot.feed_options.get("item_classes") or ())]
        if self.products_uri is None and feeds.FAILURES not in classes:
            self.products_uri = slot.uri

    async def feed_exporter_closed(self) -> None:
        await self.write()

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
        """A second Ctrl-C (or SIGTERM) stopped the reactor before the spider closed: no
        signal will come. Called by `scrapy crawl` once the reactor is down, it writes the
        summary from what this process knows (finish reason `shutdown_forced`)."""
        if self.written:
            return
        self.written = True
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value("finish_reason", FORCED)
        if self.products_uri is None:  # no feed slot closed: beside the first products feed that names a file
            for uri, options in self.crawler.settings.getdict("FEEDS").items():
                classes = [str(c) for c in ((options or {}).get("item_classes") or ())]
                if feeds.FAILURES not in classes and "%(" not in str(uri):
                    self.products_uri = str(uri)
                    break
        mine = self.results.images if isinstance(self.results, LocalResults) else getattr(self.results, "mine", [])
        self._write(list(mine))

    def _write(self, images: list[dict[str, Any]]) -> None:
        settings, stats = self.crawler.settings, self.crawler.stats
        assert stats is not None
        reason = stats.get_value("finish_reason")
        if isinstance(self.results, LocalResults):
            images += self.unfinished(str(reason))
        job = self.results.job_totals() if isinstance(self.results, RedisResults) else {}
        totals = totals_of(images, job.get("images", int(stats.get_value("tmapi/images_total", 0) or 0)))
        # Besides the per-image sums: what was fetched and written, unfinished images included.
        for name, stat in (
            ("paid_calls", "tmapi/paid_calls"),
            ("pages_fetched", "tmapi/pages"),
            ("items_written", "tmapi/items"),
        ):
            totals[name] = job.get(name, int(stats.get_value(stat, 0) or 0))
        totals["cached_answers"] = int(stats.get_value("httpcache/hit", 0) or 0)
        not_saved = int(stats.get_value("tmapi/answers/store_failed", 0) or 0)
        if not_saved:  # the answer store could not keep them (disk full): a re-run pays for them again
            totals["answers_not_saved"] = not_saved
        summary = {
            "spider": self.crawler.spider.name if self.crawler.spider else None,
            "finish_reason": reason,
            "started_at": self.started,
            "finished_at": utc_now(),
            "max_calls": stats.get_value("tmapi/max_calls"),
            "job": self.results.keys.job if isinstance(self.results, RedisResults) else None,
            "totals": totals,
            "images": images,
        }
        stamp = self.started.replace(":", "-")
        path = settings.get("TMAPI_SUMMARY_FILE") or summary_path(
            self.products_uri, settings.get("TMAPI_OUTPUT_DIR") or "output", summary["spider"] or "crawl", stamp
        )
        logger.info("Run summary (finish reason: %s):\n%s", reason, table(images, totals))
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            tmp = f"{path}.part"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(summary, f, ensure_ascii=False, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except OSError as exc:
            logger.error("Could not write the run summary to %s: %s", path, exc)
            return
        logger.info("Run summary written to %s", path)
        if isinstance(self.results, RedisResults) and not settings.getbool("SCHEDULER_PERSIST"):
            self.results.cleanup()


# KEYS: summary, marker; ARGV: seconds to keep (0: no expiry), url1, json1, url2, json2, ...
WRITE_RESULTS = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1])) end
return 1
"""


class RedisResults:
    """The whole job: one hash `{<job>}:summary`, query image URL -> its result as JSON.

    One HSET per finished image on the reactor thread (a short command, like the
    scheduler's); what cannot be written while Redis is away is kept and retried at the end.
    """

    def __init__(self, client: Any, keys: Any, keep_seconds: int) -> None:
        self.client = client
        self.keys = keys  # the job's JobKeys
        self.key = keys.summary
        self._write = client.register_script(WRITE_RESULTS)
        self.keep_seconds = keep_seconds
        self.pending: list[dict[str, Any]] = []
        self.mine: list[dict[str, Any]] = []  # this worker's own, in case the job's are gone

    def add(self, image: dict[str, Any]) -> None:
        self.pending.append(image)
        self.mine.append(image)
        self._flush()

    def _flush(self) -> bool:
        from tmapi_spiders.distributed import connection

        if not self.pending:
            return True
        try:
            # Only into a job that still has its marker: a job lost from Redis (flushed,
            # restarted empty) must not get a summary key planted back by a finishing worker.
            # 500 images a call: Lua's unpack has a limit (what piled up while Redis was away).
            while self.pending:
                batch = self.pending[:500]
                flat = [part for i in batch for part in (i["query_image_url"], json.dumps(i, ensure_ascii=False))]
                self._write(keys=[self.key, self.keys.marker], args=[self.keep_seconds, *flat])
                del self.pending[:500]
        except connection.ERRORS:
            return False
        return True

    async def all(self) -> list[dict[str, Any]]:
        from tmapi_spiders.distributed import connection

        if not self._flush():
            logger.warning("Redis is unreachable: the summary covers this worker's images only")
            return list(self.mine)
        try:
            found = [json.loads(value) for _, value in self.client.hscan_iter(self.key, count=1000)]
        except connection.ERRORS as exc:
            logger.warning("Could not read the job's results from Redis (%s): this worker's images only", exc)
            return list(self.mine)
        if len(found) < len(self.mine):  # the job was finished and cleaned up meanwhile
            return list(self.mine)
        return found

    def cleanup(self) -> None:
        """Once the job is finished and its work keys are gone (the last worker's `finish`
        stamps `finished_at` in its stats), the results go too, like the rest of the job."""
        from tmapi_spiders.distributed import connection
        from tmapi_spiders.distributed.job import Job

        try:
            if self.client.hexists(self.keys.stats, "finished_at") and Job(self.client, self.keys).work_left() == 0:
                self.client.delete(self.key)
        except connection.ERRORS:
            pass  # it expires by itself

    def job_totals(self) -> dict[str, int]:
        """Job-wide images and paid calls (the job's own counters), or {} when Redis is away."""
        from tmapi_spiders.distributed import connection
        from tmapi_spiders.distributed.job import Job

        try:
            status = Job(self.client, self.keys).status(live_seconds=0)
        except connection.ERRORS:
            return {}
        counters = status.counters
        return {
            "images": status.seeds_seen,
            "paid_calls": counters.get("paid_calls", 0),
            "pages_fetched": counters.get("pages", 0),
            "items_written": counters.get("items", 0),
        }


def job_results(crawler: Crawler) -> ImageResults:
    """Per-image results for the whole job (Redis) when distributed, else for this process."""
    from tmapi_spiders import distributed

    settings = crawler.settings
    if not distributed.enabled(settings):
        return LocalResults()
    from tmapi_spiders.distributed import connection
    from tmapi_spiders.distributed.keys import JobKeys

    assert crawler.spidercls is not None
    keys = JobKeys.from_settings(settings, crawler.spidercls.name)
    return RedisResults(connection.client(settings), keys, int(settings.getfloat("TMAPI_REDIS_KEEP_STATS")))

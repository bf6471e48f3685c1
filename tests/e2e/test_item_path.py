"""Records take Scrapy's own path: spider -> ITEM_PIPELINES -> item_scraped -> CoreStats and
FeedExporter. Each record is written once and counted once, any other receiver of
`item_scraped` sees each once, and a distributed worker's lease is not done until the feed
has written its request's records (tmapi_spiders/crawl/done.py counts them off the item signals).

The crawls run in this process (tests/in_process.py): the test reads what its own extension saw
from the crawler."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response

from tests.crawl_helpers import QUICK_WORKER_SETTINGS
from tests.in_process import crawl_in_process
from tests.redis_server import RedisServer
from tmapi_spiders import settings as project_settings
from tmapi_spiders.distributed.worker import LEASE_META, Worker
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

IMAGES = [
    "https://cbu01.alicdn.com/img/ibank/item-path-1.jpg?total=45",
    "https://images.example-shop.com/products/item-path-2.jpg",  # converted first
]


class SeenItems:
    """A user's extension on `item_scraped`, connected after the feed's: records what it got,
    and, in a worker, whether the lease of the record's request was already done then."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.seen: list[tuple[Any, Any, Any]] = []
        self.done_at_item: list[bool] = []
        self.held_at_close = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        probe = cls(crawler)
        crawler.signals.connect(probe.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(probe.spider_closed, signal=signals.spider_closed)
        return probe

    def item_scraped(self, item: Any, response: Any) -> None:
        self.seen.append((item.get("query_image_url"), item.get("item_id"), item.get("stage")))
        if isinstance(response, Response) and self.crawler.settings.get("REDIS_URL"):
            worker = Worker.of(self.crawler)
            lease = response.request.meta.get(LEASE_META)
            self.done_at_item.append(lease in worker.finished or lease not in worker.leases)

    def spider_closed(self) -> None:
        if self.crawler.settings.get("REDIS_URL"):
            worker = Worker.of(self.crawler)
            self.held_at_close = len(worker.leases) + len(worker.finished)


def seeded(tmp_path: Path) -> dict[str, str]:
    seeds = tmp_path / "images.txt"
    seeds.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    return {"urls_file": str(seeds)}


def with_seen_items() -> dict[str, Any]:
    return {"EXTENSIONS": {**project_settings.EXTENSIONS, SeenItems: 900}}


def test_each_record_is_written_once_and_counted_once(tmp_path: Path) -> None:
    config = SandboxConfig(latency=0.0, seed=4, fault_rate=0.2, fault_kinds=("503",))
    with SandboxThread(config) as sandbox:
        result = crawl_in_process(tmp_path, sandbox.base_url, seeded(tmp_path), with_seen_items())
    assert result.returncode == 0, result.stats
    keys = [(p["query_image_url"], p["item_id"]) for p in result.products]
    assert len(keys) == len(set(keys)) > 45  # both images, no record twice
    stats = result.stats
    assert stats["tmapi/items"] == len(result.products)
    assert stats["item_scraped_count"] == len(result.products) + len(result.failures)
    seen = result.crawler.get_extension(SeenItems).seen
    assert Counter(s[:2] for s in seen if s[2] is None) == Counter(keys)  # another receiver: each once


def test_a_workers_lease_is_done_only_after_its_records_are_written(tmp_path: Path) -> None:
    with RedisServer() as redis, SandboxThread(SandboxConfig(latency=0.02, seed=3)) as sandbox:
        settings = {**with_seen_items(), **QUICK_WORKER_SETTINGS, "REDIS_URL": redis.url, "TMAPI_JOB": "item-path"}
        result = crawl_in_process(tmp_path, sandbox.base_url, seeded(tmp_path), settings)
    assert result.returncode == 0, result.stats
    probe = result.crawler.get_extension(SeenItems)
    # When the feed (connected before the probe) has written a record, its request's lease is
    # not yet done: the record's own signal counts it off after this receiver. None left at close.
    assert len(probe.done_at_item) == len(result.products) > 45 and not any(probe.done_at_item)
    assert probe.held_at_close == 0

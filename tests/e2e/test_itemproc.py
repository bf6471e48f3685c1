"""ItemProcessor calls CoreStats and FeedExporter directly (tmapi_spiders/itemproc.py):
a crawl gives what Scrapy's own signal path gives, receiver errors included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exporters import JsonLinesItemExporter
from scrapy.utils.project import get_project_settings

from tests.conftest import SANDBOX_TOKEN
from tests.crawl_helpers import crawl, read_jsonl
from tmapi_spiders.itemproc import ItemProcessor
from tmapi_spiders.sandbox import SandboxThread

SCRAPYS_PROCESSOR = "scrapy.pipelines.ItemPipelineManager"


class SeenItems:
    """A user's extension on `item_scraped`: it must still get every item."""

    def __init__(self, crawler: Crawler) -> None:
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeenItems:
        extension = cls(crawler)
        crawler.signals.connect(extension.item_scraped, signal=signals.item_scraped)
        return extension

    def item_scraped(self, item: Any, spider: Spider) -> None:
        self.stats.inc_value("test/item_scraped_seen")


class FailingOnRank3Exporter(JsonLinesItemExporter):
    """A feed exporter that fails on some records: a receiver that raises."""

    def export_item(self, item: Any) -> None:
        if item.get("rank") == 3:
            raise ValueError("rank 3 will not go")
        super().export_item(item)


@pytest.mark.parametrize(
    ("processor", "scrapys_extensions"),
    [
        ("tmapi_spiders.itemproc.ItemProcessor", False),  # the project's settings
        (SCRAPYS_PROCESSOR, False),  # ours take the signal again
        ("tmapi_spiders.itemproc.ItemProcessor", True),  # a user's EXTENSIONS without ours: Scrapy's come back
    ],
)
def test_items_reach_stats_feeds_and_other_receivers_as_with_scrapys_signal(
    processor: str, scrapys_extensions: bool, tmp_path: Path, sandbox: SandboxThread
) -> None:
    urls = [f"https://cbu01.alicdn.com/img/ibank/proc/{i}/total-{total}.jpg" for i, total in enumerate((45, 7, 20))]
    seeds = tmp_path / "images.txt"
    seeds.write_text("\n".join(urls) + "\n", encoding="utf-8")
    extensions = {} if scrapys_extensions else get_project_settings().getdict("EXTENSIONS")
    extensions["tests.e2e.test_itemproc.SeenItems"] = 900
    extensions["tmapi_spiders.extensions.stats_file.TmapiStatsFile"] = 540  # the stats the test reads
    result = crawl(
        tmp_path,
        sandbox.base_url,
        {"urls_file": str(seeds)},
        settings={
            "ITEM_PROCESSOR": processor,
            "EXTENSIONS": json.dumps(extensions),
            "FEED_EXPORTERS": json.dumps({"failing": "tests.e2e.test_itemproc.FailingOnRank3Exporter"}),
        },
        output="products.failing",
        token=SANDBOX_TOKEN,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The log's "Enabled extensions" list says which exporter and stats ran.
    assert ("'tmapi_spiders.itemproc.FeedExporter'" in result.stderr) is not scrapys_extensions
    assert ("'tmapi_spiders.itemproc.CoreStats'" in result.stderr) is not scrapys_extensions
    records = read_jsonl(tmp_path / "products.failing")
    # Every item is scraped and counted once; the feed lost only what its exporter refused.
    assert result.stats["item_scraped_count"] == 45 + 7 + 20
    assert result.stats["test/item_scraped_seen"] == 45 + 7 + 20
    assert len(records) == 45 + 7 + 20 - 3 and all(r["rank"] != 3 for r in records)
    # Each refusal is logged as Scrapy logs a failing receiver, with its cause; nothing else.
    assert result.stderr.count("[scrapy.utils.signal] ERROR: Error caught on signal handler: ") == 3
    assert result.stderr.count("ValueError: rank 3 will not go") == 3
    assert result.stats["log_count/ERROR"] == 3


def test_an_item_processor_for_a_crawler_that_never_crawled_has_no_receivers() -> None:
    """Scrapy's own pipeline manager can be built from a bare crawler: ours too."""

    class Bare(Spider):
        name = "bare"

    processor = ItemProcessor.from_crawler(Crawler(Bare, {"ITEM_PIPELINES": {}}))
    assert processor.receivers == []

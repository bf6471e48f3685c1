"""The Scrapy peer for the benchmarks: a stock Scrapy spider doing the floor's job.

    python benchmarks/scrapy_peer.py BASE_URL TOKEN PAGES.json OUT.jsonl [--lean [--checked]]

The same pages, headers, concurrency (16) and records as benchmarks/floor_client.py,
through Scrapy (no project settings: this file builds its own), parsed with orjson and
written by a JSON Lines exporter that uses orjson, so it differs from the floor only by
Scrapy itself. Two versions:

- stock: Scrapy's default components, as `scrapy startproject` gives them.
- --lean: the best Scrapy version of the job. Every default downloader middleware, spider
  middleware and extension off but the three the job needs (gzip decoding, the feed, core
  stats), and the crawl's two settings that cut Scrapy's per-record cost (CONCURRENT_ITEMS 5;
  no "Scraped from" DEBUG record built per item when the log is at INFO): what Scrapy's
  engine, downloader, scheduler, signals and item path cost on their own, about the least
  a Scrapy-based crawl of these pages can cost.
- --lean --checked: the lean peer doing the crawl's own checks with the project's functions:
  the token scan of each answer body (`Redactor.found_in_bytes`), `parse_json` (the 19-digit
  guard before orjson), each record a `ProductItem` normalised as the spider does (`normalise`)
  and checked by the crawl's own `ValidationPipeline`. What is left
  between it and the crawl is the rest of the project: its middlewares, extensions and stats.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import orjson
from floor_client import SEARCH_PATH, context_of  # the script's folder is on sys.path
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from scrapy.exporters import BaseItemExporter
from scrapy.http import Response
from scrapy.logformatter import LogFormatter


class OrjsonLinesExporter(BaseItemExporter):
    """One orjson line per item (UTF-8, no escapes), as the crawl's feed writes."""

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(dont_fail=True, **kwargs)
        self.file = file

    def export_item(self, item: Any) -> None:
        self.file.write(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))


class InfoLogFormatter(LogFormatter):
    """No per-item and per-response DEBUG records built only to be dropped at INFO."""

    def crawled(self, *args: Any) -> None:
        return None

    def scraped(self, *args: Any) -> None:
        return None


class PeerSpider(Spider):
    name = "peer"

    def __init__(self, base_url: str, token: str, pages_file: str, checked: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url, self.token, self.checked = base_url, token, checked
        with open(pages_file, "rb") as handle:
            self.pages: list[dict[str, str]] = orjson.loads(handle.read())
        if checked:
            from tmapi_spiders.api.envelope import parse_json
            from tmapi_spiders.api.redact import Redactor
            from tmapi_spiders.items import ProductItem
            from tmapi_spiders.spiders.image_search import normalise

            self.found_in_bytes = Redactor([token]).found_in_bytes
            self.parse_json, self.normalise, self.product = parse_json, normalise, ProductItem

    async def start(self) -> Any:
        for params in self.pages:
            url = f"{self.base_url}{SEARCH_PATH}?{urlencode(params)}"
            yield Request(url, headers={"apikey": self.token}, cb_kwargs={"params": params}, dont_filter=True)

    def parse(self, response: Response, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        if self.checked:
            yield from self.parse_checked(response, params)
            return
        data = orjson.loads(response.body)["data"]
        page = int(params["page"])
        context = context_of(params)
        for rank, item in enumerate(data["items"], (page - 1) * int(params["page_size"]) + 1):
            yield {**item, **context, "rank": rank}

    def parse_checked(self, response: Response, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        if self.found_in_bytes(response.body):
            raise ValueError("the token in an answer")
        data = self.parse_json(response.body)["data"]
        page = int(params["page"])
        context = context_of(params)
        for rank, item in enumerate(data["items"], (page - 1) * int(params["page_size"]) + 1):
            record = self.product({**item, **context, "rank": rank})
            self.normalise(record)
            yield record


def lean_settings() -> dict[str, Any]:
    """Every default component off but gzip decoding, the feed and core stats; the crawl's
    per-record settings."""
    from scrapy.settings import default_settings as d

    keep = {
        "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware",
        "scrapy.extensions.feedexport.FeedExporter",
        "scrapy.extensions.corestats.CoreStats",
    }
    off = {
        name: {path: None for path in getattr(d, f"{name}_BASE") if path not in keep}
        for name in ("DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES", "EXTENSIONS")
    }
    return {**off, "CONCURRENT_ITEMS": 5, "LOG_FORMATTER": InfoLogFormatter}


def main(base_url: str, token: str, pages_file: str, out_file: str, lean: bool, checked: bool = False) -> int:
    process = CrawlerProcess(
        {
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
            "FEEDS": {out_file: {"format": "orjsonlines", "overwrite": True}},
            "FEED_EXPORTERS": {"orjsonlines": OrjsonLinesExporter},
            "LOG_LEVEL": "INFO",
            **(lean_settings() if lean else {}),
            **({"ITEM_PIPELINES": {"tmapi_spiders.crawl.pipelines.ValidationPipeline": 200}} if checked else {}),
        }
    )
    process.crawl(PeerSpider, base_url=base_url, token=token, pages_file=pages_file, checked=checked)
    process.start()
    return 0


if __name__ == "__main__":
    base, tok, pages_path, out_path = sys.argv[1:5]
    sys.exit(main(base, tok, pages_path, out_path, lean="--lean" in sys.argv[5:], checked="--checked" in sys.argv[5:]))

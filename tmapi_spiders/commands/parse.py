"""`scrapy parse`, refused for TMAPI spiders (a page needs the state a crawl carries) with what to run instead."""

from __future__ import annotations

import argparse

from scrapy.commands.parse import Command as ScrapyParse
from scrapy.http import Request
from scrapy.spiderloader import get_spider_loader
from scrapy.utils.spider import spidercls_for_request

from tmapi_spiders.commands import fail


class Command(ScrapyParse):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if len(args) != 1:
            return  # run() raises the usage error
        loader = get_spider_loader(self.settings)
        try:
            spidercls = loader.load(opts.spider) if opts.spider else spidercls_for_request(loader, Request(args[0]))
        except (KeyError, ValueError):
            return  # Scrapy's run() says it found no spider, or that the URL is bad
        if getattr(spidercls, "tmapi_job", False):
            fail(
                f"scrapy parse cannot run {spidercls.name}: its pages need the state a crawl carries"
                f" from page to page; for one image's results run: scrapy crawl {spidercls.name}"
                " -a urls=IMAGE_URL -O results.jsonl"
            )

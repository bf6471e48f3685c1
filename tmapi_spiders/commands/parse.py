"""`scrapy parse`, refused for this project's spider with one line that says what to run.

An image_search page cannot be parsed alone: its callback needs the state a crawl carries
from page to page. Other spiders in the project are parsed as Scrapy parses them.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.parse import Command as ScrapyParse
from scrapy.http import Request
from scrapy.spiderloader import get_spider_loader
from scrapy.utils.spider import spidercls_for_request

from tmapi_spiders.jobs import outcome


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
            print(
                f"error: scrapy parse cannot run {spidercls.name}: its pages need the state a crawl carries"
                f" from page to page; for one image's results run: scrapy crawl {spidercls.name}"
                " -a urls=IMAGE_URL -O results.jsonl",
                file=sys.stderr,
            )
            sys.exit(outcome.BAD_INPUT)

"""`scrapy crawl`, with checks before the first paid call and meaningful exit codes.

Scrapy's own command exits 0 whatever the finish reason; a script or scheduler
running a paid job needs to know that the token was refused or the cap was hit.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError

from tmapi_spiders import outcome
from tmapi_spiders.config import ConfigError, check_seed_list, check_settings, job_config


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name")
        assert self.crawler_process is not None
        spidercls = self.crawler_process.spider_loader.load(args[0])
        if getattr(spidercls, "tmapi_job", False):
            try:
                check_settings(self.settings)
                check_seed_list(job_config(opts.spargs))
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                self.exitcode = outcome.BAD_INPUT
                return
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = outcome.SCRAPY_ERROR
            return
        assert crawler.stats is not None
        self.exitcode = outcome.exit_code(crawler.stats.get_value("finish_reason"))

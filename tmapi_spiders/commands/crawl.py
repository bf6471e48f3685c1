"""`scrapy crawl`, with checks before the first paid call and an exit code per finish reason.

The checks run in `process_options`, before Scrapy logs anything: a bad argument is one line on stderr.
"""

from __future__ import annotations

import argparse

from scrapy import signals
from scrapy.addons import AddonManager
from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError
from scrapy.spiderloader import get_spider_loader

from tmapi_spiders import distributed, monitoring, registry
from tmapi_spiders.commands import fail
from tmapi_spiders.crawl import feeds, outputs
from tmapi_spiders.crawl.config import check_seed_list, check_setting_names, check_settings, job_config
from tmapi_spiders.extensions.stats_file import TmapiStatsFile
from tmapi_spiders.extensions.summary import TmapiRunSummary
from tmapi_spiders.jobs import outcome, quiet_log
from tmapi_spiders.watch import history


class Command(ScrapyCrawl):
    # The locks on this run's outputs and answer store (outputs.py), held until it ends.
    guard: outputs.Guard | None = None
    # `-a history=DIR` (tmapi_spiders/watch/history.py): this run's place in the history.
    plan: history.Plan | None = None
    finish_reason: str | None = None

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        quiet_log.install(self.settings)
        if len(args) != 1:
            return  # run() raises the usage error
        try:
            spidercls = get_spider_loader(self.settings).load(args[0])
        except KeyError:
            return
        if not getattr(spidercls, "tmapi_job", False):
            return
        try:
            check_setting_names(self.settings, spidercls.custom_settings)
            # What an add-on settles before any crawler exists (Scrapy does it again next): the checks see it.
            AddonManager.load_pre_crawler_settings(self.settings)
            self.plan = history.plan_for(self.settings, opts.spargs)
            if distributed.enabled(self.settings):  # a worker of a shared job: seeds in Redis
                # Imported only here: a single-process crawl never loads redis.
                from tmapi_spiders.distributed.preflight import check as distributed_check

                problem = distributed_check(self.settings, opts.spargs, spidercls.name)
                if problem:
                    fail(problem[1], problem[0])
            else:
                check_settings(self.settings)
                check_seed_list(job_config(opts.spargs, self.settings))
            monitoring.check(self.settings)
            self.guard = self.claim_outputs(spidercls.name)
            if self.plan is not None:
                history.start(self.plan)
        except (ValueError, history.HistoryError, monitoring.MonitoringError, outputs.OutputError) as exc:
            fail(str(exc))  # ValueError: ConfigError, and the history options'

    def claim_outputs(self, spider_name: str) -> outputs.Guard:
        """Complete the feeds as the add-ons will, then check and lock every file the crawl writes."""
        # Imported only for a crawl: Scrapy imports every command module at start.
        from tmapi_spiders.jobs import cache

        settings = self.settings
        if distributed.enabled(settings) and not registry.read(settings, "TMAPI_WORKER_ID"):
            settings.set("TMAPI_WORKER_ID", distributed.default_worker_id(), priority="cmdline")
        feeds.configure(settings, spider_name)
        store = cache.cache_dir(settings) if cache.enabled(settings) and not distributed.enabled(settings) else None
        stamp = feeds.stamp_now()
        outputs.check_remote(settings, spider_name, stamp)
        return outputs.prepare(outputs.planned(settings, spider_name, stamp), store)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name")
        try:
            self.run_crawl(args, opts)
            if self.plan is not None:  # the run recorded in its history, its changes written, its alerts sent
                self.exitcode = history.conclude(self.plan, int(self.exitcode or 0), self.finish_reason)
        finally:
            if self.guard is not None:
                self.guard.release()  # the summary and stats files are written: others may write now
            if self.plan is not None:
                history.release(self.plan)

    def run_crawl(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.crawler_process is not None
        crawler = self.crawler_process.create_crawler(args[0])  # kept: its stats give the exit code
        closed: list[bool] = []
        crawler.signals.connect(lambda **_: closed.append(True), signal=signals.spider_closed, weak=False)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = outcome.SCRAPY_ERROR
            return
        assert crawler.stats is not None
        if crawler.spider is not None and not closed:
            # A second Ctrl-C / SIGTERM: Scrapy stopped the reactor without closing the spider.
            crawler.stats.set_value("finish_reason", outcome.FORCED)
            for extension in (crawler.get_extension(TmapiRunSummary), crawler.get_extension(TmapiStatsFile)):
                if extension is not None:
                    extension.write_after_forced_stop()
            self.exitcode = outcome.INTERRUPTED
            return
        self.finish_reason = crawler.stats.get_value("finish_reason")
        self.exitcode = outcome.exit_code(self.finish_reason)
        if crawler.stats.get_value("tmapi/write_failed"):
            # A feed or the summary could not be written, whatever else ended the crawl first.
            self.exitcode = outcome.WRITE_FAILED

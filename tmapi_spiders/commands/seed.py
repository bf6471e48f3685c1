"""`scrapy seed FILE -a language=ru -s REDIS_URL=...`: push a URL list, checked as a crawl's, into a job's seeds.

Each image goes as JSON with its query arguments (and a spreadsheet row's `input`), once per job.
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.conf import arglist_to_dict

from tmapi_spiders import distributed
from tmapi_spiders.commands import Tool, fail
from tmapi_spiders.commands.job import NO_REDIS_URL
from tmapi_spiders.crawl.config import ConfigError, check_seed_list, check_setting_names, job_config
from tmapi_spiders.crawl.seeds import BadLine
from tmapi_spiders.jobs import outcome

BAD_LINES_SHOWN = 20


class Command(Tool, ScrapyCommand):
    usage = "FILE [-a language=.. -a sort=.. ...] -s REDIS_URL=redis://host:6379/0"
    description = "Push an image URL list into a distributed job's seeds in Redis"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-a", dest="spargs", action="append", default=[], metavar="NAME=VALUE", help="query argument of these seeds"
        )
        parser.add_argument("--spider", default="image_search", help="spider whose job this is (default image_search)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        try:
            opts.spargs = arglist_to_dict(opts.spargs)
        except ValueError:
            raise UsageError("invalid -a value, use -a NAME=VALUE", print_help=False) from None

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one seed file")
        # Imported here: Scrapy imports every command module at start, and a crawl must not load redis.
        from tmapi_spiders.distributed import connection
        from tmapi_spiders.distributed.job import Job
        from tmapi_spiders.distributed.keys import JobKeys
        from tmapi_spiders.distributed.preflight import check_redis
        from tmapi_spiders.distributed.seed_writer import ListSeeds

        try:  # fail() exits: only the checks' ConfigError is caught
            check_setting_names(self.settings)
            if "urls_file" in opts.spargs or "urls" in opts.spargs:
                fail("give the seed file as the argument, not as -a urls_file/urls")
            if "currency" in opts.spargs or "rate" in opts.spargs:
                fail(
                    "-a currency/rate are given to each worker (scrapy crawl ... -a currency=USD -a rate=...),"
                    " not to scrapy seed"
                )
            if not distributed.enabled(self.settings):
                fail(NO_REDIS_URL)
            # Lines carrying the settings' token are bad lines.
            config = job_config({**opts.spargs, "urls_file": args[0]}, self.settings)
            check_seed_list(config)
        except ConfigError as exc:
            fail(str(exc))
        problem = check_redis(self.settings, opts.spider)  # old-named keys too: new names would split the job
        if problem:
            fail(problem[1], problem[0])

        def skipped(entry: BadLine) -> None:
            print(f"warning: {entry.skipped(args[0], config.seed_unit)}", file=sys.stderr)

        seeds = ListSeeds(config, skipped, BAD_LINES_SHOWN)
        keys = JobKeys.from_settings(self.settings, opts.spider)
        try:
            pushed, known = Job(connection.client(self.settings), keys).push_encoded(seeds)
        except connection.ERRORS as exc:
            fail(connection.lost_line(self.settings, exc), outcome.REDIS_DOWN)
        except connection.OUT_OF_MEMORY:
            where = connection.describe(str(self.settings.get("REDIS_URL") or ""))
            fail(
                f"Redis at {where} is out of memory (maxmemory) and refused the seeds: raise maxmemory or free"
                " memory, then run scrapy seed again (seeds already pushed are kept and skipped)",
                outcome.REDIS_DOWN,
            )
        bad = seeds.bad
        more = f" ({bad - BAD_LINES_SHOWN} more not shown)" if bad > BAD_LINES_SHOWN else ""
        print(f"job {keys.job!r}: {pushed} seeds pushed, {known} already in the job, {bad} bad lines skipped{more}")

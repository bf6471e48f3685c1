"""`scrapy job -s REDIS_URL=...`: a distributed job's progress from its keys, from any machine.

`--delete` removes every key of the job; `--migrate` renames an old job's keys to the `{job}` hash-tagged names.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from tmapi_spiders import distributed, registry
from tmapi_spiders.commands import Tool, fail
from tmapi_spiders.crawl.config import check_setting_names
from tmapi_spiders.jobs import outcome

if TYPE_CHECKING:
    from tmapi_spiders.distributed.job import Job, JobStatus

NO_REDIS_URL = "no REDIS_URL: give -s REDIS_URL=redis://host:6379/0 (or set it in the environment)"
COUNTERS = ("seeds_pushed", "images_done", "failures", "pages", "items", "paid_calls", "leases_expired")


def render(status: JobStatus) -> str:
    rows = [
        ("job", status.job),
        ("state", "drained" if status.drained else "running" if status.live_workers else "waiting for workers"),
        ("seeds left", status.seeds_left),
        ("seeds pushed", status.counters.get("seeds_pushed", status.seeds_seen)),
        ("queued requests", status.queued),
        ("in-flight requests", status.in_flight),
        *((name.replace("_", " "), status.counters.get(name, 0)) for name in COUNTERS[1:]),
        ("live workers", len(status.live_workers)),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"{'':<{width}}  {worker}" for worker in status.live_workers]
    return "\n".join(lines)


def migrate(job: Job) -> int:
    """Rename the job's keys from `<job>:name` to `{<job>}:name` (DUMP + RESTORE + DEL: RENAME is
    CROSSSLOT on a Cluster); how many were moved. Exits when both names of a key hold data."""
    named = zip(job.keys.untagged().all(), job.keys.all(), strict=True)  # (old name, new name)
    pairs = [(old, new) for old, new in named if job.server.exists(old)]
    clash = [new for _, new in pairs if job.server.exists(new)]
    if clash:
        fail(f"both the old and the new names hold data ({clash[0]}): nothing was renamed")
    for old, new in pairs:
        data = job.server.dump(old)
        ttl = int(job.server.pttl(old))
        job.server.restore(new, max(ttl, 0), data)
        job.server.delete(old)
    return len(pairs)


class Command(Tool, ScrapyCommand):
    usage = "[--json] [--delete [--force]] -s REDIS_URL=redis://host:6379/0 [-s TMAPI_JOB=name]"
    description = "Show a distributed job's progress (or delete its keys)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--spider", default="image_search", help="spider whose job this is (default image_search)")
        parser.add_argument("--json", action="store_true", help="print the status as JSON")
        parser.add_argument("--delete", action="store_true", help="remove every key of the job")
        parser.add_argument("--force", action="store_true", help="with --delete: even while workers are live")
        parser.add_argument(
            "--migrate", action="store_true", help="rename a job's keys from the old <job>:... names to {<job>}:..."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if args:
            raise UsageError("scrapy job takes no arguments")
        try:  # fail() exits: only the checks' ConfigError (and SettingError) is caught
            check_setting_names(self.settings)
            if not distributed.enabled(self.settings):  # said before redis is imported
                fail(NO_REDIS_URL)
            # Imported here: Scrapy imports every command module at start, and a crawl must not load redis.
            from tmapi_spiders.distributed import connection
            from tmapi_spiders.distributed.job import Job
            from tmapi_spiders.distributed.keys import JobKeys, legacy_keys, legacy_message

            connection.plan(self.settings)  # a Redis setting that cannot work
        except ValueError as exc:
            fail(str(exc))
        problem = connection.check_reachable(self.settings)
        if problem:
            fail(problem, outcome.REDIS_DOWN)
        job = Job(connection.client(self.settings), JobKeys.from_settings(self.settings, opts.spider))
        lease = registry.read(self.settings, "TMAPI_REDIS_LEASE")
        try:
            if opts.migrate:
                moved = migrate(job)
                print(f"job {job.keys.job!r}: {moved} keys renamed to {job.keys.prefix}...")
                return
            found = legacy_keys(job.server, job.keys)
            if found:
                fail(legacy_message(job.keys, found))
            status = job.status(lease)
            if opts.delete:
                if status.live_workers and not opts.force:
                    fail(f"{len(status.live_workers)} workers are live: stop them first, or add --force")
                print(f"job {status.job!r}: deleted {job.delete()} keys")
                return
        except connection.ERRORS as exc:
            fail(connection.lost_line(self.settings, exc), outcome.REDIS_DOWN)
        print(json.dumps(status.to_dict(), indent=2) if opts.json else render(status))

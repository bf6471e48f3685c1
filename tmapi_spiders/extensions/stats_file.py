"""TMAPI_STATS_FILE: the crawl's final Scrapy stats as one JSON object, for machines.

Scrapy prints its stats at the end as a Python dict in the log, which a monitor (or a
scrapyd hook, or a test) can only scrape with a regular expression that breaks on a
change of log format, a wrapped line or a value that is not a number. This writes the
same stats, every key, as JSON: datetimes as ISO 8601 strings, anything else that JSON
cannot hold as its `str`.

It is written once the engine has stopped (`engine_stopped`), not on `spider_closed`:
some values are set by other `spider_closed` handlers (the limiter's
`tmapi/limit/peak_in_flight`, the feed exporter's counts) whose order among the signal's
receivers is not ours to choose, so only after them is the dict final. A second Ctrl-C
stops the reactor without that signal: `scrapy crawl` then calls
`write_after_forced_stop` (commands/crawl.py), as it does for the run summary.

The file is written to a temporary file beside it and renamed over it (os.replace), so a
reader never sees half of it; the API token goes through the Redactor like every other
output. `%(name)s` in the path is the spider's name, `%(worker)s` the distributed
worker's id (empty in one process), so workers sharing a directory do not overwrite one
another's file.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from tmapi_spiders.auth import secrets_of
from tmapi_spiders.extensions.summary import FORCED
from tmapi_spiders.redact import Redactor

logger = logging.getLogger(__name__)


def jsonable(value: Any) -> Any:
    """A stat value as JSON holds it: datetimes (finish_time, start_time) as ISO strings."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return str(value)


def write_json(path: str, data: Any) -> None:
    """`data` as JSON at `path`, whole or not at all: a temp file beside it, then os.replace."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


class TmapiStatsFile:
    """Writes the final stats to TMAPI_STATS_FILE (unset: NotConfigured, nothing written)."""

    def __init__(self, crawler: Crawler, path: str) -> None:
        self.crawler = crawler
        self.path = path
        self.redactor = Redactor(secrets_of(crawler.settings))
        self.written = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        template = str(crawler.settings.get("TMAPI_STATS_FILE") or "")
        if not template:
            raise NotConfigured
        name = str(getattr(crawler.spidercls, "name", "") or "crawl")
        worker = str(crawler.settings.get("TMAPI_WORKER_ID") or "")
        o = cls(crawler, template.replace("%(name)s", name).replace("%(worker)s", worker))
        crawler.signals.connect(o.engine_stopped, signal=signals.engine_stopped)
        return o

    def engine_stopped(self) -> None:
        self.write()

    def write_after_forced_stop(self) -> None:
        """A second Ctrl-C / SIGTERM: the stats as they stood when the reactor stopped,
        with the finish reason the run summary gives such a run."""
        stats = self.crawler.stats
        if stats is not None and stats.get_value("finish_reason") is None:
            stats.set_value("finish_reason", FORCED)
        self.write()

    def stats(self) -> dict[str, Any]:
        """The crawl's stats as the file holds them: JSON values, the token redacted."""
        stats = self.crawler.stats
        values = dict(stats.get_stats()) if stats is not None else {}
        return dict(self.redactor.value(jsonable(values)))

    def write(self) -> None:
        if self.written:
            return
        self.written = True
        try:
            write_json(self.path, self.stats())
        except OSError as exc:
            logger.error("Could not write the stats to %s: %s", self.path, exc)
            return
        logger.info("Stats written to %s", self.path)

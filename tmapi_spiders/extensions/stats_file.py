"""TMAPI_STATS_FILE: the final Scrapy stats as one JSON object, token redacted, written when the engine stops
(after every `spider_closed` handler has set its stats)."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from tmapi_spiders.api.auth import secrets_of
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.outputs import stats_file, write_whole

logger = logging.getLogger(__name__)


def jsonable(value: Any) -> Any:
    """json.dumps' default for a stat value JSON has no type for: datetimes (finish_time, start_time) as ISO strings."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset)):
        return list(value)
    return str(value)


class TmapiStatsFile:
    def __init__(self, crawler: Crawler, path: str) -> None:
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.path = path
        self.redactor = Redactor(secrets_of(crawler.settings))
        self.written = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        path = stats_file(crawler.settings, str(getattr(crawler.spidercls, "name", "") or "crawl"))
        if not path:
            raise NotConfigured
        o = cls(crawler, path)
        crawler.signals.connect(o.write, signal=signals.engine_stopped)
        return o

    def write(self) -> None:
        if self.written:
            return
        self.written = True
        stats = json.dumps(self.stats.get_stats(), ensure_ascii=False, indent=1, sort_keys=True, default=jsonable)
        try:
            write_whole(self.path, (self.redactor.text(stats), "\n"))
        except OSError as exc:
            logger.error("Could not write the stats to %s: %s", self.path, exc)
            return
        logger.info("Stats written to %s", self.path)

    write_after_forced_stop = write  # `scrapy crawl`: the stats as they stood when the reactor stopped

"""What a crawl's terminal shows at INFO: the run, not Scrapy's start-up and closing dumps.

Scrapy logs at INFO, before and after every crawl, its versions, add-ons, overridden
settings, every enabled middleware and extension, and the whole stats dict: about 120
lines around the few that matter (the crawl's progress, warnings, the run summary table).
Below DEBUG those dumps are dropped by a filter on the loggers that write them, so the
run summary is the last thing a person reads; `-s LOG_LEVEL=DEBUG` shows them again, and
the final stats are in `TMAPI_STATS_FILE` for machines.
"""

from __future__ import annotations

import logging

from scrapy.settings import BaseSettings

# logger -> the start of each message it writes that is a dump (the record's format string)
DUMPS: dict[str, tuple[str, ...]] = {
    "scrapy.utils.log": ("Versions:",),
    "scrapy.addons": ("Enabled addons:",),
    "scrapy.middleware": ("Enabled ",),
    "scrapy.crawler": ("Overridden settings:",),
    "scrapy.statscollectors": ("Dumping Scrapy stats:",),
}


class DropDumps(logging.Filter):
    """Drops the INFO dumps of one Scrapy logger (DUMPS)."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and str(record.msg).startswith(self.starts))


def install(settings: BaseSettings) -> None:
    """Drop Scrapy's dumps unless the log takes DEBUG records (once per process)."""
    level = settings.get("LOG_LEVEL") or "DEBUG"
    number = logging.getLevelName(str(level).upper()) if isinstance(level, str) else int(level)
    if not isinstance(number, int) or number <= logging.DEBUG:
        return
    for name, starts in DUMPS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropDumps) for f in logger.filters):
            logger.addFilter(DropDumps(starts))

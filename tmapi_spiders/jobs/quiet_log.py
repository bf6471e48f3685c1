"""Above DEBUG, Scrapy's INFO dumps (versions, add-ons, settings, components, stats) are dropped,
so the run summary comes last; `-s LOG_LEVEL=DEBUG` shows them, TMAPI_STATS_FILE keeps the stats.
Scrapy's records below LOG_LEVEL are not even built (`skip_dropped_records`)."""

from __future__ import annotations

import logging

from scrapy.settings import BaseSettings
from scrapy.utils.log import get_scrapy_root_handler

# logger -> the start of each message it writes that is a dump (the record's format string)
DUMPS: dict[str, tuple[str, ...]] = {
    "scrapy.utils.log": ("Versions:",),
    "scrapy.addons": ("Enabled addons:",),
    "scrapy.middleware": ("Enabled ",),
    "scrapy.crawler": ("Overridden settings:",),
    "scrapy.statscollectors": ("Dumping Scrapy stats:",),
}


def drop_dumps(record: logging.LogRecord) -> bool:
    """The filter on each logger of DUMPS (logging takes a function): False for its INFO dumps."""
    return not (record.levelno == logging.INFO and str(record.msg).startswith(DUMPS[record.name]))


def install(settings: BaseSettings) -> None:
    """Drop Scrapy's dumps unless the log takes DEBUG records (once per process: addFilter adds a filter once)."""
    level = settings.get("LOG_LEVEL") or "DEBUG"
    number = logging.getLevelName(str(level).upper()) if isinstance(level, str) else int(level)
    if not isinstance(number, int) or number <= logging.DEBUG:
        return
    for name in DUMPS:
        logging.getLogger(name).addFilter(drop_dumps)


def skip_dropped_records() -> None:
    """While Scrapy's handler writes the log, Scrapy's loggers take its level, so a record it would drop
    (at INFO, the DEBUG "Crawled" line per response and "Scraped from" line per record) is never built."""
    handler = get_scrapy_root_handler()
    if handler is not None:
        logging.getLogger("scrapy").setLevel(handler.level)

"""How a crawl ended, as an exit code for `scrapy crawl` (and scripts, scrapyd)."""

from __future__ import annotations

OK = 0
SCRAPY_ERROR = 1  # Scrapy could not start the crawl, or an unexpected error
BAD_INPUT = 2  # bad argument, setting or seed list: nothing was called
API_REFUSED = 3  # TMAPI refused the token or the balance is gone, or is not at TMAPI_BASE_URL
REDIS_DOWN = 4  # Redis unreachable or lost
CAP_REACHED = 5  # TMAPI_MAX_CALLS reached: work left for a later run
JOB_LOST = 6  # distributed: the job's state vanished from Redis (restarted empty, flushed): seed it again
WRITE_FAILED = 7  # a record, the failures feed or the summary could not be written: what was not written is not done
INTERRUPTED = 130  # a second Ctrl-C or SIGTERM forced an unclean stop (128 + SIGINT, as shells report it)
FORCED = "shutdown_forced"  # the finish reason `scrapy crawl` gives that stop

FINISH_REASONS = {
    "tmapi_auth_failed": API_REFUSED,
    "tmapi_no_balance": API_REFUSED,
    "tmapi_fatal": API_REFUSED,
    "tmapi_no_route": API_REFUSED,
    "tmapi_unreachable": API_REFUSED,
    "redis_unavailable": REDIS_DOWN,
    "redis_out_of_memory": REDIS_DOWN,
    "redis_job_lost": JOB_LOST,
    "tmapi_bad_seed_list": BAD_INPUT,  # the seed list went bad after its first lines (spiders/image_search.py)
    "tmapi_write_failed": WRITE_FAILED,
    "tmapi_max_calls": CAP_REACHED,
    "tmapi_scrapy_unsupported": SCRAPY_ERROR,  # tmapi_spiders/api/download.py
    FORCED: INTERRUPTED,
}


def exit_code(finish_reason: str | None) -> int:
    """0 for `finished`, `shutdown` (one Ctrl-C) and any reason not listed."""
    return FINISH_REASONS.get(str(finish_reason), OK)

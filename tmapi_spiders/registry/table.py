"""Every setting of ours, by group, in the order docs/settings.md shows them: add a setting here, and only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One setting of ours: name, type, default, bounds, a one-line doc, and its allowed values in words."""

    name: str
    kind: str  # bool | int | float | str | choice | url
    default: Any
    group: str
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    env: bool = False  # the default is read from the environment variable of the same name
    unit: str = ""  # what a number counts ("seconds", "calls")
    zero: str = ""  # what 0 means, where it means something ("off", "no limit")

    def expected(self) -> str:
        """The allowed values in words, as messages and docs/settings.md show them."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "url":
            return "an http(s) URL"
        words = {"int": "a whole number", "float": "a number", "str": "text"}[self.kind]
        if self.unit:
            words += f" of {self.unit}"
        if self.low is not None and self.high is not None:
            words += f", from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            words += f", {self.low:g} or more"
        if self.zero:
            words += f" (0: {self.zero})"
        return words


_RUN, _PAGING, _JOBS, _LIMITS, _REDIS = "Crawling", "Paging", "Running jobs", "Plan limits", "Distributed (Redis)"

# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("TMAPI_API_TOKEN", "str", "", _RUN, env=True,
        doc="The API token (environment or -s). Never logged, stored or shown."),
    Setting("TMAPI_BASE_URL", "url", "https://api.tmapi.io", _RUN, env=True, doc="Where TMAPI answers."),
    Setting("TMAPI_AUTH", "choice", "auto", _RUN, choices=("auto", "header", "query"),
        doc="How the token is sent: `header` (apikey), `query` (apiToken, as the endpoint page documents), or `auto`:"
            " the header, then the query parameter once if the gateway refuses it, kept for the job."),
    Setting("TMAPI_BACKOFF_BASE", "float", 0.5, _RUN, low=0, unit="seconds", zero="no backoff",
        doc="Seconds before the first retry, doubled each time (0: no backoff)."),
    Setting("TMAPI_BACKOFF_MAX", "float", 30.0, _RUN, low=0, unit="seconds",
        doc="The longest wait before a retry, in seconds."),
    Setting("TMAPI_UNREACHABLE_AFTER", "int", 10, _RUN, low=0, unit="refused connections", zero="never",
        doc="Stop (exit 3) after this many refused connections in a row before the API ever answered, or at the"
        " end of a shorter list that never reached it (0: never)."),
    Setting("TMAPI_OUTPUT_DIR", "str", "output", _RUN, doc="Where the default feed goes when no -o/-O is given."),
    Setting("TMAPI_FAILURES_FEED", "str", "", _RUN,
        doc="The failures feed's URI (default: beside the first products feed)."),
    Setting("TMAPI_STOP_ON_SHORT_PAGE", "bool", False, _PAGING,
        doc="A page with fewer items than the page size ends the image (saves a call; may miss items a backend "
            "filtered out of a page)."),
    Setting("TMAPI_EMPTY_PAGE_RETRIES", "int", 1, _PAGING, low=0, unit="asks", zero="never asked again",
        doc="An empty page that total_count says holds items (page 1, or after a full page) is asked again this many "
            "times before the image counts as failed (0: never asked again)."),
    Setting("TMAPI_MAX_CALLS", "int", 0, _JOBS, low=0, unit="calls", zero="no cap",
        doc="Paid calls (searches + conversions) the job may make (0: no cap)."),
    Setting("TMAPI_CACHE", "choice", "auto", _JOBS, choices=("auto", "true", "false", "1", "0", "yes", "no"),
        doc="The answer store: every good answer kept on disk, so the same command again pays nothing for it. `auto`:"
            " on in one process, off for distributed workers (an add-on may turn `auto` off)."),
    Setting("TMAPI_CACHE_DIR", "str", "tmapi-cache", _JOBS,
        doc="The answer store's directory (relative: under .scrapy)."),
    Setting("TMAPI_CACHE_TTL", "float", 86400, _JOBS, low=1, unit="seconds",
        doc="Seconds a stored answer is reused; older ones are pruned at start."),
    Setting("TMAPI_CACHE_MAX_MB", "float", 0, _JOBS, low=0, unit="megabytes", zero="no bound",
        doc="Pruned at start, oldest first, down to this size (0: no bound)."),
    Setting("TMAPI_REFRESH", "bool", False, _JOBS,
        doc="Pay for every call again, replacing stored answers (or -a refresh=true)."),
    Setting("TMAPI_PROGRESS_INTERVAL", "float", 10.0, _JOBS, low=0, unit="seconds", zero="off",
        doc="Seconds between progress lines (0: off)."),
    Setting("TMAPI_PROGRESS_BAR", "choice", "auto", _JOBS, choices=("auto", "true", "false", "1", "0", "yes", "no"),
        doc="A live bar instead of the lines: `auto` when stderr is a terminal."),
    Setting("TMAPI_SUMMARY", "bool", True, _JOBS,
        doc="Write <feed stem>.summary.json beside the feeds, and a table in the log."),
    Setting("TMAPI_SUMMARY_FILE", "str", "", _JOBS, doc="Write the summary here instead."),
    Setting("TMAPI_MONITOR_MAX_FAILED_IMAGES", "int", 0, _JOBS, low=0, unit="images",
        doc="With SPIDERMON_ENABLED: the images that may fail before the run's monitors fail (docs/monitoring.md)."),
    Setting("TMAPI_MONITOR_MIN_RECORDS_RATIO", "float", 0.9, _JOBS, low=0, high=1,
        doc="With SPIDERMON_ENABLED: the share of the records total_count promised that must be written."),
    Setting("TMAPI_STATS_FILE", "str", "", _JOBS,
        doc="Write Scrapy's final stats here as JSON (datetimes as ISO strings), for monitoring; `%(name)s`: the "
            "spider, `%(worker)s`: the worker id (empty: not written)."),
    Setting("TMAPI_REPORT", "bool", False, _JOBS,
        doc="Write <feed stem>.report.html beside the feed (docs/report.md)."),
    Setting("TMAPI_ALERT_WEBHOOK", "str", "", _JOBS, env=True,
        doc="A history run (`-a history=DIR`) POSTs its changes summary as JSON here when an alert matches "
            "(docs/watch.md); a failed POST is a warning (empty: not sent)."),
    Setting("TMAPI_MAX_CONCURRENCY", "int", 0, _LIMITS, low=0, unit="calls", zero="no limit",
        doc="Calls in flight across the whole job, every worker (0: no limit)."),
    Setting("TMAPI_MAX_QPS", "float", 0, _LIMITS, low=0, unit="calls per second", zero="no limit",
        doc="Calls per second across the whole job (0: no limit)."),
    Setting("TMAPI_LIMIT_LEASE", "float", 30.0, _LIMITS, low=0.1, unit="seconds",
        doc="Seconds a dead worker's slots stay taken (renewed while a call runs)."),
    Setting("TMAPI_LIMIT_POLL", "float", 5.0, _LIMITS, low=0.001, unit="seconds",
        doc="Longest wait for a freed slot's wake token before looking at Redis again (finds a dead worker's slots)."),
    Setting("REDIS_URL", "str", "", _REDIS, env=True,
        doc="scrapy-redis's name: set it and this crawl becomes a worker of a shared job."),
    Setting("TMAPI_JOB", "str", "", _REDIS, doc="The job's name and Redis key prefix (default: the spider's name)."),
    Setting("TMAPI_WORKER_ID", "str", "", _REDIS,
        doc="This worker's id (default: host-pid-random); the %(worker)s feed placeholder."),
    Setting("TMAPI_REDIS_LEASE", "float", 60.0, _REDIS, low=0.1, unit="seconds",
        doc="Seconds a taken request stays leased without a heartbeat."),
    Setting("TMAPI_REDIS_HEARTBEAT", "float", 0.0, _REDIS, low=0, unit="seconds", zero="a quarter of the lease",
        doc="Seconds between lease renewals (0: a quarter of the lease)."),
    Setting("TMAPI_REDIS_ACK_INTERVAL", "float", 0.2, _REDIS, low=0.001, unit="seconds",
        doc="Seconds between looks for finished requests to acknowledge."),
    Setting("TMAPI_REDIS_POLL_INTERVAL", "float", 1.0, _REDIS, low=0, unit="seconds",
        doc="Seconds between looks for seeds when there are none (doubling up to 5 s, 20 s while busy, as others "
            "work)."),
    Setting("TMAPI_REDIS_SEED_BATCH", "int", 50, _REDIS, low=1, unit="seeds", doc="Seeds taken per look."),
    Setting("TMAPI_REDIS_RETRY_TIMES", "int", 5, _REDIS, low=0, unit="attempts",
        doc="Reconnect attempts after Redis is lost, then stop (exit 4)."),
    Setting("TMAPI_REDIS_RETRY_DELAY", "float", 0.5, _REDIS, low=0, unit="seconds",
        doc="Seconds before the first reconnect attempt, doubled each time."),
    Setting("TMAPI_REDIS_KEEP_STATS", "float", 604800, _REDIS, low=0, unit="seconds",
        doc="Seconds a finished job's counters stay for `scrapy job`."),
    Setting("TMAPI_REDIS_ACK_MAX_DELAY", "float", 0.2, _REDIS, low=0, unit="seconds", zero="every look",
        doc="Acknowledgements wait for 16 finished requests or this long: what a kill -9 can make the job pay again."),
    Setting("TMAPI_REDIS_DUPEFILTER_TTL", "float", 0.0, _REDIS, low=0, unit="seconds", zero="until the job is finished",
        doc="Seconds a duplicate-filter fingerprint counts; bounds the filter. Keep it well above the longest queue "
            "wait."),
    Setting("REDIS_TLS_CA_FILE", "str", "", _REDIS,
        doc="rediss://: the CA bundle that signed the server's certificate."),
    Setting("REDIS_TLS_CERT_FILE", "str", "", _REDIS,
        doc="rediss://: a client certificate, for servers that ask for one."),
    Setting("REDIS_TLS_KEY_FILE", "str", "", _REDIS, doc="rediss://: the client certificate's private key."),
    Setting("REDIS_TLS_VERIFY", "bool", True, _REDIS,
        doc="Check the server's certificate and host name (false: test servers only)."),
    Setting("REDIS_CLUSTER", "bool", False, _REDIS,
        doc="REDIS_URL is a node of a Redis Cluster (or use redis+cluster://)."),
    Setting("REDIS_SENTINELS", "str", "", _REDIS, env=True,
        doc="host:port,host:port of the sentinels (or redis+sentinel://h:p,h:p/master/0)."),
    Setting("REDIS_SENTINEL_MASTER", "str", "", _REDIS, doc="The master's name the sentinels watch."),
    Setting("REDIS_SENTINEL_PASSWORD", "str", "", _REDIS,
        doc="The sentinels' own password, if any (the master's is in REDIS_URL)."),
    Setting("MAX_IDLE_TIME_BEFORE_CLOSE", "float", 10, _REDIS, low=0, unit="seconds", zero="never",
        doc="scrapy-redis's name: stop a worker when the job is drained this long (0: never)."),
    Setting("SCHEDULER_PERSIST", "bool", False, _REDIS, doc="scrapy-redis's name: keep a finished job's keys."),
)
# fmt: on

"""The table of every setting of ours: add a setting here, and only here.

One `Setting` a setting, by group, in the order docs/settings.md shows them. settings.py
takes its defaults from this table, `registry.check` validates against it, and
`python -m tmapi_spiders.registry > docs/settings.md` writes the reference from it (a test
fails when the file and the table differ, and when the code reads a TMAPI_* setting the
table does not have).
"""

from __future__ import annotations

from tmapi_spiders.registry.setting import Setting

_RUN, _PAGING, _JOBS, _LIMITS, _REDIS = "Crawling", "Paging", "Running jobs", "Plan limits", "Distributed (Redis)"

SETTINGS: tuple[Setting, ...] = (
    # --- crawling
    Setting(
        "TMAPI_API_TOKEN",
        "str",
        "",
        "The API token (environment or -s). Never logged, stored or shown.",
        _RUN,
        env=True,
    ),
    Setting("TMAPI_BASE_URL", "url", "https://api.tmapi.io", "Where TMAPI answers.", _RUN, env=True),
    Setting(
        "TMAPI_AUTH",
        "choice",
        "auto",
        "How the token is sent: `header` (apikey), `query` (apiToken, as the endpoint page documents), or `auto`: "
        "the header, then the query parameter once if the gateway refuses it, kept for the job.",
        _RUN,
        choices=("auto", "header", "query"),
    ),
    Setting(
        "TMAPI_SANDBOX", "bool", False, "Start the bundled sandbox in-process and crawl it: no token, no cost.", _RUN
    ),
    Setting(
        "TMAPI_SANDBOX_PORT",
        "int",
        0,
        "Set by TMAPI_SANDBOX (the sandbox's loopback port, chosen at start); 0: not running.",
        _RUN,
        0,
        65535,
        zero="not running",
    ),
    Setting(
        "TMAPI_BACKOFF_BASE",
        "float",
        0.5,
        "Seconds before the first retry, doubled each time (0: no backoff).",
        _RUN,
        0,
        unit="seconds",
        zero="no backoff",
    ),
    Setting(
        "TMAPI_BACKOFF_MAX", "float", 30.0, "The longest wait before a retry, in seconds.", _RUN, 0, unit="seconds"
    ),
    Setting(
        "TMAPI_UNREACHABLE_AFTER",
        "int",
        10,
        "Stop (exit 3) after this many refused connections in a row before the API ever answered (0: never).",
        _RUN,
        0,
        unit="refused connections",
        zero="never",
    ),
    Setting("TMAPI_OUTPUT_DIR", "str", "output", "Where the default feed goes when no -o/-O is given.", _RUN),
    Setting(
        "TMAPI_FAILURES_FEED", "str", "", "The failures feed's URI (default: beside the first products feed).", _RUN
    ),
    # --- paging
    Setting(
        "TMAPI_STOP_ON_SHORT_PAGE",
        "bool",
        False,
        "A page with fewer items than the page size ends the image (saves a call; may miss items a backend "
        "filtered out of a page).",
        _PAGING,
    ),
    Setting(
        "TMAPI_EMPTY_PAGE_RETRIES",
        "int",
        1,
        "An empty page that total_count says holds items (page 1, or after a full page) is asked again this many "
        "times before the image counts as failed (0: never asked again).",
        _PAGING,
        0,
        unit="asks",
        zero="never asked again",
    ),
    # --- running jobs
    Setting(
        "TMAPI_MAX_CALLS",
        "int",
        0,
        "Paid calls (searches + conversions) the job may make (0: no cap).",
        _JOBS,
        0,
        unit="calls",
        zero="no cap",
    ),
    Setting(
        "TMAPI_CACHE",
        "choice",
        "auto",
        "The answer store: every good answer kept on disk, so the same command again pays nothing for it. "
        "`auto`: on in one process, off for distributed workers and the sandbox.",
        _JOBS,
        choices=("auto", "true", "false", "1", "0", "yes", "no"),
    ),
    Setting("TMAPI_CACHE_DIR", "str", "tmapi-cache", "The answer store's directory (relative: under .scrapy).", _JOBS),
    Setting(
        "TMAPI_CACHE_TTL",
        "float",
        86400,
        "Seconds a stored answer is reused; older ones are pruned at start.",
        _JOBS,
        1,
        unit="seconds",
    ),
    Setting(
        "TMAPI_CACHE_MAX_MB",
        "float",
        0,
        "Pruned at start, oldest first, down to this size (0: no bound).",
        _JOBS,
        0,
        unit="megabytes",
        zero="no bound",
    ),
    Setting(
        "TMAPI_REFRESH",
        "bool",
        False,
        "Pay for every call again, replacing stored answers (or -a refresh=true).",
        _JOBS,
    ),
    Setting(
        "TMAPI_PROGRESS_INTERVAL",
        "float",
        10.0,
        "Seconds between progress lines (0: off).",
        _JOBS,
        0,
        unit="seconds",
        zero="off",
    ),
    Setting(
        "TMAPI_PROGRESS_BAR",
        "choice",
        "auto",
        "A live bar instead of the lines: `auto` when stderr is a terminal.",
        _JOBS,
        choices=("auto", "true", "false", "1", "0", "yes", "no"),
    ),
    Setting(
        "TMAPI_SUMMARY", "bool", True, "Write <feed stem>.summary.json beside the feeds, and a table in the log.", _JOBS
    ),
    Setting("TMAPI_SUMMARY_FILE", "str", "", "Write the summary here instead.", _JOBS),
    Setting(
        "TMAPI_STATS_FILE",
        "str",
        "",
        "Write Scrapy's final stats here as JSON (datetimes as ISO strings), for monitoring; "
        "`%(name)s`: the spider, `%(worker)s`: the worker id (empty: not written).",
        _JOBS,
    ),
    Setting("TMAPI_REPORT", "bool", False, "Write <feed stem>.report.html beside the feed (docs/report.md).", _JOBS),
    Setting(
        "TMAPI_ALERT_WEBHOOK",
        "str",
        "",
        "A history run (`-a history=DIR`) POSTs its changes summary as JSON here when an alert matches "
        "(docs/watch.md); a failed POST is a warning (empty: not sent).",
        _JOBS,
        env=True,
    ),
    # --- plan limits
    Setting(
        "TMAPI_MAX_CONCURRENCY",
        "int",
        0,
        "Calls in flight across the whole job, every worker (0: no limit).",
        _LIMITS,
        0,
        unit="calls",
        zero="no limit",
    ),
    Setting(
        "TMAPI_MAX_QPS",
        "float",
        0,
        "Calls per second across the whole job (0: no limit).",
        _LIMITS,
        0,
        unit="calls per second",
        zero="no limit",
    ),
    Setting(
        "TMAPI_LIMIT_LEASE",
        "float",
        30.0,
        "Seconds a dead worker's slots stay taken (renewed while a call runs).",
        _LIMITS,
        0.1,
        unit="seconds",
    ),
    Setting(
        "TMAPI_LIMIT_POLL",
        "float",
        5.0,
        "Longest wait for a freed slot's wake token before looking at Redis again (finds a dead worker's slots).",
        _LIMITS,
        0.001,
        unit="seconds",
    ),
    # --- distributed
    Setting(
        "REDIS_URL",
        "str",
        "",
        "scrapy-redis's name: set it and this crawl becomes a worker of a shared job.",
        _REDIS,
        env=True,
    ),
    Setting("TMAPI_JOB", "str", "", "The job's name and Redis key prefix (default: the spider's name).", _REDIS),
    Setting(
        "TMAPI_WORKER_ID",
        "str",
        "",
        "This worker's id (default: host-pid-random); the %(worker)s feed placeholder.",
        _REDIS,
    ),
    Setting(
        "TMAPI_REDIS_LEASE",
        "float",
        60.0,
        "Seconds a taken request stays leased without a heartbeat.",
        _REDIS,
        0.1,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_HEARTBEAT",
        "float",
        0.0,
        "Seconds between lease renewals (0: a quarter of the lease).",
        _REDIS,
        0,
        unit="seconds",
        zero="a quarter of the lease",
    ),
    Setting(
        "TMAPI_REDIS_ACK_INTERVAL",
        "float",
        0.2,
        "Seconds between looks for finished requests to acknowledge.",
        _REDIS,
        0.001,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_POLL_INTERVAL",
        "float",
        1.0,
        "Seconds between looks for seeds when there are none (doubling up to 5 s, 20 s while busy, as others work).",
        _REDIS,
        0,
        unit="seconds",
    ),
    Setting("TMAPI_REDIS_SEED_BATCH", "int", 50, "Seeds taken per look.", _REDIS, 1, unit="seeds"),
    Setting(
        "TMAPI_REDIS_RETRY_TIMES",
        "int",
        5,
        "Reconnect attempts after Redis is lost, then stop (exit 4).",
        _REDIS,
        0,
        unit="attempts",
    ),
    Setting(
        "TMAPI_REDIS_RETRY_DELAY",
        "float",
        0.5,
        "Seconds before the first reconnect attempt, doubled each time.",
        _REDIS,
        0,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_KEEP_STATS",
        "float",
        7 * 24 * 3600,
        "Seconds a finished job's counters stay for `scrapy job`.",
        _REDIS,
        0,
        unit="seconds",
    ),
    Setting(
        "TMAPI_REDIS_ACK_MAX_DELAY",
        "float",
        0.2,
        "Acknowledgements wait for 16 finished requests or this long: what a kill -9 can make the job pay again.",
        _REDIS,
        0,
        unit="seconds",
        zero="every look",
    ),
    Setting(
        "TMAPI_REDIS_DUPEFILTER_TTL",
        "float",
        0.0,
        "Seconds a duplicate-filter fingerprint counts; bounds the filter. Keep it well above the longest queue wait.",
        _REDIS,
        0,
        unit="seconds",
        zero="until the job is finished",
    ),
    Setting("REDIS_TLS_CA_FILE", "str", "", "rediss://: the CA bundle that signed the server's certificate.", _REDIS),
    Setting("REDIS_TLS_CERT_FILE", "str", "", "rediss://: a client certificate, for servers that ask for one.", _REDIS),
    Setting("REDIS_TLS_KEY_FILE", "str", "", "rediss://: the client certificate's private key.", _REDIS),
    Setting(
        "REDIS_TLS_VERIFY",
        "bool",
        True,
        "Check the server's certificate and host name (false: test servers only).",
        _REDIS,
    ),
    Setting(
        "REDIS_CLUSTER", "bool", False, "REDIS_URL is a node of a Redis Cluster (or use redis+cluster://).", _REDIS
    ),
    Setting(
        "REDIS_SENTINELS",
        "str",
        "",
        "host:port,host:port of the sentinels (or redis+sentinel://h:p,h:p/master/0).",
        _REDIS,
        env=True,
    ),
    Setting("REDIS_SENTINEL_MASTER", "str", "", "The master's name the sentinels watch.", _REDIS),
    Setting(
        "REDIS_SENTINEL_PASSWORD",
        "str",
        "",
        "The sentinels' own password, if any (the master's is in REDIS_URL).",
        _REDIS,
    ),
    Setting(
        "MAX_IDLE_TIME_BEFORE_CLOSE",
        "float",
        10,
        "scrapy-redis's name: stop a worker when the job is drained this long (0: never).",
        _REDIS,
        0,
        unit="seconds",
        zero="never",
    ),
    Setting("SCHEDULER_PERSIST", "bool", False, "scrapy-redis's name: keep a finished job's keys.", _REDIS),
)

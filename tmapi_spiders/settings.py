"""Settings for tmapi-spiders. Every TMAPI_* setting is documented in README.md."""

import os

from scrapy.settings import default_settings

from tmapi_spiders import contract

BOT_NAME = "tmapi_spiders"
SPIDER_MODULES = ["tmapi_spiders.spiders"]
NEWSPIDER_MODULE = "tmapi_spiders.spiders"
COMMANDS_MODULE = "tmapi_spiders.commands"

# --- TMAPI -------------------------------------------------------------------------
TMAPI_API_TOKEN = os.environ.get("TMAPI_API_TOKEN", "")
TMAPI_BASE_URL = os.environ.get("TMAPI_BASE_URL", contract.DEFAULT_BASE_URL)
# Start the bundled sandbox in-process and crawl it (demo, rehearsals): no token, no cost.
TMAPI_SANDBOX = False
ADDONS = {
    "tmapi_spiders.addons.SandboxAddon": 0,  # TMAPI_SANDBOX
}
# How the token is sent: "header" (apikey), "query" (apiToken, as the endpoint page documents),
# or "auto": the header, and the query parameter if the gateway refuses the header (tmapi_spiders/auth.py).
TMAPI_AUTH = "auto"
# Opt-in saving: a page with fewer items than page_size ends the image. Off by default, since
# a backend that filters an item out of a page sends a short page before the end.
TMAPI_STOP_ON_SHORT_PAGE = False
# Exponential backoff before retries: BASE * 2**(n-1) seconds, at most MAX (jittered).
TMAPI_BACKOFF_BASE = 0.5
TMAPI_BACKOFF_MAX = 30.0
# Stop (exit 3) after this many refused connections in a row before the API ever answered:
# TMAPI_BASE_URL is wrong, and every image would fail one by one. 0: never.
TMAPI_UNREACHABLE_AFTER = 10
TMAPI_OUTPUT_DIR = "output"
TMAPI_FAILURES_FEED = ""
# --- Operators: spending cap, cache, progress, summary (README.md, "Running jobs") ---------------
TMAPI_MAX_CALLS = 0  # paid calls (searches + conversions) the job may make; 0: no cap
TMAPI_CACHE = False  # true: keep good answers; a re-run within the TTL pays nothing for them
TMAPI_CACHE_DIR = "tmapi-cache"  # relative: under the project's .scrapy directory
TMAPI_CACHE_TTL = 86400  # seconds a cached answer is reused
TMAPI_PROGRESS_INTERVAL = 10.0  # seconds between progress lines; 0: off
TMAPI_PROGRESS_BAR = "auto"  # a tqdm bar instead of the lines when stderr is a terminal
TMAPI_SUMMARY = True  # <products feed stem>.summary.json beside the feeds, and a table in the log
TMAPI_SUMMARY_FILE = ""  # write the summary here instead
TMAPI_REPORT = False  # true: <products feed stem>.report.html beside the feed (docs/report.md)
# --- The plan's limits, held across the whole job (README.md, "Performance") -----------------
TMAPI_MAX_CONCURRENCY = 0  # calls in flight across the job (every worker); 0: no limit
TMAPI_MAX_QPS = 0  # calls per second across the job; 0: no limit
TMAPI_LIMIT_LEASE = 30.0  # seconds a dead worker's slots stay taken (Redis); renewed while a call runs
TMAPI_LIMIT_POLL = 0.01  # seconds between looks at Redis for a slot another worker freed

# --- Politeness and speed ------------------------------------------------------------
ROBOTSTXT_OBEY = False  # an API, not a site
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = contract.REQUEST_TIMEOUT
# A page holds at most 20 items (tens of KB): a body past 2 MiB, compressed or decoded, is not a
# page (HttpCompressionMiddleware applies the same bound to the decoded size).
DOWNLOAD_MAXSIZE = 2 * 1024 * 1024
DOWNLOAD_WARNSIZE = 512 * 1024
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 8.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REDIRECT_ENABLED = False
# HTML <meta refresh> redirects: none in JSON; on, it also warned at start that RefererMiddleware is off.
METAREFRESH_ENABLED = False
USER_AGENT = "tmapi-spiders (+https://github.com/tmapi-spiders)"

# --- Retries (Scrapy's RetryMiddleware; backoff by TmapiBackoffMiddleware) -------------
RETRY_ENABLED = True
RETRY_TIMES = 5
RETRY_HTTP_CODES = sorted(contract.TRANSIENT_STATUSES)
# Scrapy's list, and a body cut off at DOWNLOAD_MAXSIZE: a broken answer, retried like a truncated one.
RETRY_EXCEPTIONS = [*default_settings.RETRY_EXCEPTIONS, "scrapy.exceptions.DownloadCancelledError"]

# The token goes on at download time, on a copy nothing else sees; every call the API sees is
# counted (tmapi/paid_calls), none is re-sent unseen (tmapi_spiders/download.py).
DOWNLOAD_HANDLERS = {
    "http": "tmapi_spiders.download.CountedHTTP11DownloadHandler",
    "https": "tmapi_spiders.download.CountedHTTP11DownloadHandler",
}

# Each spider middleware with process_spider_output wraps every record a page yields in one more
# async-generator layer (README.md, "Performance"). None of these does anything for an API crawl:
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,  # an API needs no Referer header
    # Its default (URLLENGTH_LIMIT 2083) dropped a long image URL's requests silently; seed
    # lines are already limited to 4,096 characters (seeds.py).
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,  # no DEPTH_LIMIT: pagination is bounded by total_count
    # Warns about Scrapy-internal meta copied from a response: ours are built fresh by ApiRequests.
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    # The same is_start_request flag without a pass over every record (tmapi_spiders/spidermw.py).
    "scrapy.spidermiddlewares.start.StartSpiderMiddleware": None,
    "tmapi_spiders.spidermw.StartRequestsMiddleware": 25,
}

DOWNLOADER_MIDDLEWARES = {
    "tmapi_spiders.middlewares.TmapiBackoffMiddleware": 560,
    # Gateways gzip JSON: decode before the envelope (910) reads the body and the cache (900) keeps it.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "tmapi_spiders.middlewares.TmapiHttpCompressionMiddleware": 915,
    "tmapi_spiders.middlewares.TmapiEnvelopeMiddleware": 910,
    # After the cache lookup (900) and the envelope (910), before the token (950): counts only calls that go out.
    "tmapi_spiders.spending.TmapiCallCapMiddleware": 930,
    # After the cap: a refused call takes no slot; cached answers never get here.
    "tmapi_spiders.limits.TmapiLimitMiddleware": 940,
    # Then the download handler (tmapi_spiders/download.py) puts the token on and counts the call.
}

EXTENSIONS = {
    "tmapi_spiders.extensions.redaction.LogRedaction": 0,  # no log line shows the token
    # Scrapy's two, called by ITEM_PROCESSOR instead of an asyncio task per item each (tmapi_spiders/itemproc.py)
    "scrapy.extensions.corestats.CoreStats": None,
    "tmapi_spiders.itemproc.CoreStats": 0,
    "scrapy.extensions.feedexport.FeedExporter": None,
    "tmapi_spiders.itemproc.FeedExporter": 0,
    "tmapi_spiders.extensions.progress.TmapiProgress": 500,
    "tmapi_spiders.extensions.summary.TmapiRunSummary": 510,
    "tmapi_spiders.extensions.gc_tuning.GcTuning": 520,
    "tmapi_spiders.extensions.report.TmapiReport": 530,
}
# The garbage collector took about a quarter of the crawl's CPU, mostly re-walking start-up
# objects (tmapi_spiders/extensions/gc_tuning.py). 0 / False: Python's own behaviour.
TMAPI_GC_THRESHOLD = 10_000  # new container objects between young-generation passes (Python: 700)
TMAPI_GC_FREEZE = True  # exempt what exists when the engine starts from every later pass

# ValidationPipeline logs each drop reason once (WARNING) and counts every drop in stats;
# Scrapy's own line per dropped record (the whole record in it) goes to DEBUG.
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"

# Scrapy's pipeline manager, then CoreStats' and FeedExporter's item_scraped called directly.
ITEM_PROCESSOR = "tmapi_spiders.itemproc.ItemProcessor"
ITEM_PIPELINES = {
    "tmapi_spiders.pipelines.NormalisationPipeline": 100,
    "tmapi_spiders.pipelines.ValidationPipeline": 200,
}

# --- Output ---------------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"
FEED_EXPORTERS = {
    "csv": "tmapi_spiders.exporters.FlatCsvItemExporter",
    # orjson instead of the pure-Python encoder: the feed was the crawl's largest CPU cost (README.md, "Performance")
    "jsonlines": "tmapi_spiders.exporters.FastJsonLinesItemExporter",
    "jl": "tmapi_spiders.exporters.FastJsonLinesItemExporter",
    "jsonl": "tmapi_spiders.exporters.FastJsonLinesItemExporter",
}

# --- Distributed crawls (README.md, "Distributed crawls"): only used when REDIS_URL is set --------
REDIS_URL = os.environ.get("REDIS_URL", "")  # e.g. redis://host:6379/0: this crawl becomes a worker of a job
TMAPI_JOB = ""  # the job's name and Redis key prefix (default: the spider's name)
TMAPI_WORKER_ID = ""  # default: host-pid-random; the %(worker)s feed URI placeholder
TMAPI_REDIS_LEASE = 60.0  # seconds a taken request stays leased without a heartbeat
TMAPI_REDIS_HEARTBEAT = 0.0  # seconds between lease renewals (0: a quarter of the lease)
TMAPI_REDIS_ACK_INTERVAL = 0.2  # seconds between looks for finished requests to acknowledge
TMAPI_REDIS_ACK_MAX_DELAY = 1.0  # acks wait for 16 finished requests or this many seconds (0: every look)
TMAPI_REDIS_POLL_INTERVAL = 1.0  # seconds between looks for new seeds when there are none
TMAPI_REDIS_SEED_BATCH = 50  # seeds taken per look
TMAPI_REDIS_RETRY_TIMES = 5  # reconnect attempts after Redis is lost, then stop (exit 4)
TMAPI_REDIS_RETRY_DELAY = 0.5  # seconds before the first attempt, doubled each time
TMAPI_REDIS_KEEP_STATS = 7 * 24 * 3600  # seconds a finished job's counters stay for `scrapy job`
MAX_IDLE_TIME_BEFORE_CLOSE = 10  # scrapy-redis's name: stop when the job is drained this long (0: never)
SCHEDULER_PERSIST = False  # True: keep a finished job's keys
# Seconds a duplicate-filter fingerprint counts (0: until the job is finished). Bounds the filter to
# about fingerprints-per-second x this; keep it well above the longest wait of a request in the queue.
TMAPI_REDIS_DUPEFILTER_TTL = 0.0
# Managed Redis (docs/distributed.md): TLS, Redis Cluster, Sentinel; checked at start, one line naming the setting.
REDIS_TLS_CA_FILE = ""  # rediss://: the CA bundle that signed the server's certificate (default: the system's)
REDIS_TLS_CERT_FILE = ""  # rediss://: a client certificate, for servers that ask for one (tls-auth-clients)
REDIS_TLS_KEY_FILE = ""  # rediss://: its private key
REDIS_TLS_VERIFY = True  # check the server's certificate and host name; false only for a test server
REDIS_CLUSTER = False  # True: REDIS_URL is a node of a Redis Cluster (or use redis+cluster://host:port)
REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")  # host:port,host:port (or redis+sentinel://h:p,h:p/master/0)
REDIS_SENTINEL_MASTER = ""  # the master's name the sentinels watch
REDIS_SENTINEL_PASSWORD = ""  # the sentinels' own password, if they have one (the master's is in REDIS_URL)

# Scrapy re-reads a callback's source for every response to warn about `return` in a generator
# (its cache is keyed by the bound method, new each time): ~4 % of the crawl's CPU. Ours are checked.
WARN_ON_GENERATOR_RETURN_VALUE = False
# Scrapy built a DEBUG "Scraped from" record (with the whole item) per item, then dropped it at INFO.
LOG_FORMATTER = "tmapi_spiders.logformatter.TmapiLogFormatter"
# Scrapy starts this many asyncio tasks for every response, whatever it yields (default 100).
# Our pipelines never wait on I/O, so more of them only cost: 5 took 4 % fewer instructions
# per page than 20 (callgrind; 1, 2 and 5 about the same, 10 in between).
CONCURRENT_ITEMS = 5
LOG_LEVEL = "INFO"
# MemoryStatsCollector without Scrapy's per-attribute deprecation hook (tmapi_spiders/stats.py).
STATS_CLASS = "tmapi_spiders.stats.MemoryStatsCollectorNoShim"
REMOTE_CONTROL_ENABLED = False  # no code-execution port on a machine that holds an API token

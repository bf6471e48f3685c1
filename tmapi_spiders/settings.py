"""Settings for tmapi-spiders: Scrapy's, as this project needs them, and ours.

Our own settings (TMAPI_*, and scrapy-redis's REDIS_URL, SCHEDULER_PERSIST,
MAX_IDLE_TIME_BEFORE_CLOSE) are defined once, with type, bounds and doc, in registry/table.py;
their reference is docs/settings.md."""

from scrapy.settings import default_settings

from tmapi_spiders import registry
from tmapi_spiders.api import contract

BOT_NAME = "tmapi_spiders"
SPIDER_MODULES = ["tmapi_spiders.spiders"]
NEWSPIDER_MODULE = "tmapi_spiders.spiders"
COMMANDS_MODULE = "tmapi_spiders.commands"

# --- Ours: every TMAPI_* setting, with its default (tmapi_spiders/registry/table.py) ----
globals().update(registry.defaults())
# Every feature, switched on from settings, at the add-on priority (tmapi_spiders/addons.py);
# it also sets AUTOTHROTTLE_ENABLED and CONCURRENT_REQUESTS(_PER_DOMAIN) for our spiders.
# -s TMAPI_SANDBOX=true: the bundled sandbox, served in-process (the `sandbox` extra).
ADDONS = {"tmapi_spiders.sandbox.addon.SandboxAddon": 0, "tmapi_spiders.addons.TmapiAddon": 0}

# --- Politeness and speed ------------------------------------------------------------
ROBOTSTXT_OBEY = False  # an API, not a site
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = contract.REQUEST_TIMEOUT
# A page holds at most 20 items (tens of KB): a body past 2 MiB, compressed or decoded, is not a
# page (HttpCompressionMiddleware applies the same bound to the decoded size).
DOWNLOAD_MAXSIZE = 2 * 1024 * 1024
DOWNLOAD_WARNSIZE = 512 * 1024
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
# counted (tmapi/paid_calls), none is re-sent unseen (tmapi_spiders/api/download.py).
DOWNLOAD_HANDLERS = {
    "http": "tmapi_spiders.api.download.CountedHTTP11DownloadHandler",
    "https": "tmapi_spiders.api.download.CountedHTTP11DownloadHandler",
}

# Each spider middleware with process_spider_output wraps every record a page yields in one more
# async-generator layer (README.md, "Performance"). None of these does anything for an API crawl:
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,  # an API needs no Referer header
    # Its default (URLLENGTH_LIMIT 2083) dropped a long image URL's requests silently; seed
    # lines are already limited to 4,096 characters (seeds.py).
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,  # no DEPTH_LIMIT: pagination is bounded by total_count
}
# Warns about Scrapy-internal meta copied from a response: ours are built fresh by ApiRequests.
# Named only where this Scrapy has it (Scrapy imports every key it is given, None or not).
_metacopy = "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware"
if _metacopy in default_settings.SPIDER_MIDDLEWARES_BASE:
    SPIDER_MIDDLEWARES[_metacopy] = None

DOWNLOADER_MIDDLEWARES = {
    "tmapi_spiders.crawl.middlewares.TmapiBackoffMiddleware": 560,
    # Gateways gzip JSON: decode before the envelope (910) reads the body and the cache (900) keeps it.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "tmapi_spiders.crawl.middlewares.TmapiHttpCompressionMiddleware": 915,
    "tmapi_spiders.crawl.middlewares.TmapiEnvelopeMiddleware": 910,
    # After the cache lookup (900) and the envelope (910): counts only calls that go out.
    "tmapi_spiders.jobs.spending.TmapiCallCapMiddleware": 930,
    # After the cap: a refused call takes no slot; cached answers never get here.
    "tmapi_spiders.limits.middleware.TmapiLimitMiddleware": 940,
    # Then the download handler (tmapi_spiders/api/download.py) puts the token on and counts the call.
}

# No log line shows the token: in the _BASE dict (beside Scrapy's CoreStats and FeedExporter), so
# a `-s EXTENSIONS='{...}'` of the user's own, which replaces EXTENSIONS whole, keeps it.
EXTENSIONS_BASE = {**default_settings.EXTENSIONS_BASE, "tmapi_spiders.extensions.redaction.LogRedaction": 0}
EXTENSIONS = {
    "tmapi_spiders.extensions.progress.TmapiProgress": 500,
    "tmapi_spiders.extensions.summary.TmapiRunSummary": 510,
    "tmapi_spiders.extensions.report.TmapiReport": 530,
    "tmapi_spiders.extensions.stats_file.TmapiStatsFile": 540,  # TMAPI_STATS_FILE: the final stats as JSON
}

# ValidationPipeline logs each drop reason once (WARNING) and counts every drop in stats;
# Scrapy's own line per dropped record (the whole record in it) goes to DEBUG.
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"

# Every record: the spider -> these pipelines -> item_scraped -> Scrapy's CoreStats and FeedExporter.
ITEM_PIPELINES = {
    "tmapi_spiders.crawl.pipelines.NormalisationPipeline": 100,
    "tmapi_spiders.crawl.pipelines.ValidationPipeline": 200,
}

# --- Output ---------------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"
# Local feed files whose failed write stops the crawl in one line (exit code 7) instead of a
# traceback per record and an exit 0 (tmapi_spiders/crawl/done.py).
FEED_STORAGES = {
    "": "tmapi_spiders.crawl.done.CheckedFileFeedStorage",
    "file": "tmapi_spiders.crawl.done.CheckedFileFeedStorage",
    # Object storage: checked before the first paid call, a failed upload at close is exit 7 (storage.py).
    "s3": "tmapi_spiders.crawl.storage.GuardedS3FeedStorage",
    "gs": "tmapi_spiders.crawl.storage.GuardedGCSFeedStorage",
}
FEED_EXPORTERS = {
    "csv": "tmapi_spiders.crawl.exporters.FlatCsvItemExporter",
    # orjson instead of the pure-Python encoder: the feed was the crawl's largest CPU cost (README.md, "Performance")
    "jsonlines": "tmapi_spiders.crawl.exporters.FastJsonLinesItemExporter",
    "jl": "tmapi_spiders.crawl.exporters.FastJsonLinesItemExporter",
    "jsonl": "tmapi_spiders.crawl.exporters.FastJsonLinesItemExporter",
    # The sourcing workbook (`-O sourcing.xlsx`, docs/sourcing.md): built at the end of the crawl.
    "xlsx": "tmapi_spiders.spreadsheets.workbook.XlsxItemExporter",
}


# Scrapy re-reads a callback's source for every response to warn about `return` in a generator
# (its cache is keyed by the bound method, new each time): ~4 % of the crawl's CPU. Ours are checked.
WARN_ON_GENERATOR_RETURN_VALUE = False
# Scrapy starts this many asyncio tasks for every response, whatever it yields (default 100).
# Our pipelines never wait on I/O, so more of them only cost: 5 took 4 % fewer instructions
# per page than 20 (callgrind; 1, 2 and 5 about the same, 10 in between).
CONCURRENT_ITEMS = 5
LOG_LEVEL = "INFO"
REMOTE_CONTROL_ENABLED = False  # no code-execution port on a machine that holds an API token

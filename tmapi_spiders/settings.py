"""Settings for tmapi-spiders: Scrapy's as this project needs them; ours (TMAPI_*, scrapy-redis's) come
from registry/table.py (reference: docs/settings.md)."""

from scrapy.settings import default_settings

from tmapi_spiders import registry
from tmapi_spiders.api import contract

BOT_NAME = "tmapi_spiders"
SPIDER_MODULES = ["tmapi_spiders.spiders"]
NEWSPIDER_MODULE = "tmapi_spiders.spiders"
COMMANDS_MODULE = "tmapi_spiders.commands"

globals().update(registry.defaults())
# Every feature, switched on from settings (addons.py); -s TMAPI_SANDBOX=true serves the bundled sandbox.
ADDONS = {"tmapi_spiders.sandbox.addon.SandboxAddon": 0, "tmapi_spiders.addons.TmapiAddon": 0}

DOWNLOAD_TIMEOUT = contract.REQUEST_TIMEOUT
# A page is tens of KB: a body past this, compressed or decoded, is not a page.
DOWNLOAD_MAXSIZE = 2 * 1024 * 1024
DOWNLOAD_WARNSIZE = 512 * 1024
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 8.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REDIRECT_ENABLED = False
METAREFRESH_ENABLED = False
USER_AGENT = "tmapi-spiders (+https://github.com/tmapi-spiders)"

RETRY_TIMES = 5
RETRY_HTTP_CODES = sorted(contract.TRANSIENT_STATUSES)
# A body cut off at DOWNLOAD_MAXSIZE: retried like a truncated one.
RETRY_EXCEPTIONS = [*default_settings.RETRY_EXCEPTIONS, "scrapy.exceptions.DownloadCancelledError"]

# Signs API calls on a copy nothing else sees, and counts each (api/download.py).
DOWNLOAD_HANDLERS = dict.fromkeys(("http", "https"), "tmapi_spiders.api.download.CountedHTTP11DownloadHandler")

# Each spider middleware wraps every record in one more async-generator layer; these do nothing for an API:
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,  # an API needs no Referer header
    # It would drop a long image URL's requests silently; seeds.py limits URL length itself.
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,  # no DEPTH_LIMIT: pagination is bounded by total_count
}
# Our meta is built fresh by api/requests.py; named only where this Scrapy has it (every key is imported).
_metacopy = "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware"
if _metacopy in default_settings.SPIDER_MIDDLEWARES_BASE:
    SPIDER_MIDDLEWARES[_metacopy] = None

DOWNLOADER_MIDDLEWARES = {
    # Nothing to do for one API host: the spider names no allowed_domains and sends no HTTP basic auth.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "tmapi_spiders.crawl.middlewares.TmapiBackoffMiddleware": 560,
    # Gateways gzip JSON: decode before the envelope (910) reads the body and the cache (900) keeps it.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "tmapi_spiders.crawl.middlewares.TmapiHttpCompressionMiddleware": 915,
    "tmapi_spiders.crawl.middlewares.TmapiEnvelopeMiddleware": 910,
    # After the cache lookup (900) and the envelope (910): counts only calls that go out.
    "tmapi_spiders.jobs.spending.TmapiCallCapMiddleware": 930,
    # After the cap: a refused call takes no slot; cached answers never get here.
    "tmapi_spiders.limits.middleware.TmapiLimitMiddleware": 940,
}

# No log line shows the token: in the _BASE dict, so a user's `-s EXTENSIONS=...` keeps it.
EXTENSIONS_BASE = {**default_settings.EXTENSIONS_BASE, "tmapi_spiders.extensions.redaction.LogRedaction": 0}
EXTENSIONS = {
    "tmapi_spiders.extensions.progress.TmapiProgress": 500,
    "tmapi_spiders.extensions.summary.TmapiRunSummary": 510,
    "tmapi_spiders.extensions.report.TmapiReport": 530,
    "tmapi_spiders.extensions.stats_file.TmapiStatsFile": 540,  # TMAPI_STATS_FILE: the final stats as JSON
}

# ValidationPipeline logs each drop reason once; Scrapy's line per dropped record goes to DEBUG.
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"

ITEM_PIPELINES = {
    "tmapi_spiders.crawl.pipelines.ValidationPipeline": 200,
}

FEED_EXPORT_ENCODING = "utf-8"
# A failed feed write stops the crawl in one line, exit 7 (crawl/writes.py, crawl/storage.py).
FEED_STORAGES = {
    **dict.fromkeys(("", "file"), "tmapi_spiders.crawl.writes.CheckedFileFeedStorage"),
    "s3": "tmapi_spiders.crawl.storage.GuardedS3FeedStorage",
    "gs": "tmapi_spiders.crawl.storage.GuardedGCSFeedStorage",
}
FEED_EXPORTERS = {
    "csv": "tmapi_spiders.crawl.exporters.FlatCsvItemExporter",
    **dict.fromkeys(("jsonlines", "jl", "jsonl"), "tmapi_spiders.crawl.exporters.FastJsonLinesItemExporter"),
    # The sourcing workbook (docs/sourcing.md).
    "xlsx": "tmapi_spiders.spreadsheets.exporter.XlsxItemExporter",
}


# Scrapy re-reads a callback's source for every response to warn about `return` in a generator.
WARN_ON_GENERATOR_RETURN_VALUE = False
# Tasks Scrapy starts per response: our pipelines never wait on I/O, so more only cost.
CONCURRENT_ITEMS = 5
LOG_LEVEL = "INFO"
REMOTE_CONTROL_ENABLED = False  # no code-execution port on a machine that holds an API token

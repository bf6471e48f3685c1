"""Settings for tmapi-spiders. Every TMAPI_* setting is documented in README.md."""

import os

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
# A page with fewer items than page_size is the last one: do not pay for the next.
TMAPI_STOP_ON_SHORT_PAGE = True
# Exponential backoff before retries: BASE * 2**(n-1) seconds, at most MAX (jittered).
TMAPI_BACKOFF_BASE = 0.5
TMAPI_BACKOFF_MAX = 30.0
TMAPI_OUTPUT_DIR = "output"
TMAPI_FAILURES_FEED = ""

# --- Politeness and speed ------------------------------------------------------------
ROBOTSTXT_OBEY = False  # an API, not a site
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 16
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = contract.REQUEST_TIMEOUT
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.0
AUTOTHROTTLE_MAX_DELAY = 10.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 8.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REDIRECT_ENABLED = False
USER_AGENT = "tmapi-spiders (+https://github.com/tmapi-spiders)"

# --- Retries (Scrapy's RetryMiddleware; backoff by TmapiBackoffMiddleware) -------------
RETRY_ENABLED = True
RETRY_TIMES = 5
RETRY_HTTP_CODES = sorted(contract.TRANSIENT_STATUSES)

DOWNLOADER_MIDDLEWARES = {
    "tmapi_spiders.middlewares.TmapiBackoffMiddleware": 560,
    "tmapi_spiders.middlewares.TmapiEnvelopeMiddleware": 910,
    "tmapi_spiders.middlewares.TmapiAuthMiddleware": 950,
}

ITEM_PIPELINES = {
    "tmapi_spiders.pipelines.NormalisationPipeline": 100,
    "tmapi_spiders.pipelines.ValidationPipeline": 200,
}

# --- Output ---------------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"
FEED_EXPORTERS = {"csv": "tmapi_spiders.exporters.FlatCsvItemExporter"}

LOG_LEVEL = "INFO"
REMOTE_CONTROL_ENABLED = False  # no code-execution port on a machine that holds an API token

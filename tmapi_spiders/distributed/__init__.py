"""Distributed crawls: any number of `scrapy crawl` workers sharing one job in Redis.

Setting REDIS_URL switches it on (`configure`, from the add-on in tmapi_spiders/addons.py);
without it nothing here is imported by the crawl and Redis is never touched.
Modules: keys (names), connection (clients, safe messages), serializer (JSON
requests), scripts + job (atomic Redis operations), worker (leases, heartbeats,
acks, Redis loss), scheduler (leased; a Scrapy BaseScheduler on scrapy-redis's keys) +
dupefilter (scrapy-redis's), start (seeds),
feeds (per-worker, kill-safe feeds), merge (joining the workers' feeds), backends (the
job's side of the run summary, the spending cap and the limiter, handed to those features
by tmapi_spiders/jobs/backends.py).
"""

from __future__ import annotations

import os
import secrets
import socket

from scrapy.settings import BaseSettings

# Not `from tmapi_spiders import backends`: importing the submodule distributed/backends.py
# would rebind that name in this package.
from tmapi_spiders.jobs.backends import shared as _shared_job
from tmapi_spiders.settings_util import priority_above, set_unless_given

SCHEDULER = "tmapi_spiders.distributed.scheduler.LeasingScheduler"
DUPEFILTER = "tmapi_spiders.distributed.dupefilter.ImageDupeFilter"
STORAGE = "tmapi_spiders.crawl.done.UnbufferedFileFeedStorage"  # kill -9 safe: each line in the kernel
LOCAL_STORAGE = "tmapi_spiders.crawl.done.CheckedFileFeedStorage"  # settings.py's, for one process
URI_PARAMS = "tmapi_spiders.distributed.feeds.uri_params"
# A worker's start requests come from the job in Redis: a spider middleware next to the spider
# takes the place of its own seed list (the spider does not know it runs as a worker).
WORKER_START = "tmapi_spiders.distributed.start.WorkerStartMiddleware"
WORKER_START_ORDER = 990
# When a lease's work is done (records written, follow-ups queued): outermost, next to the
# engine, so it counts what every other spider middleware lets through.
REQUESTS_DONE = "tmapi_spiders.crawl.done.RequestsDone"
REQUESTS_DONE_ORDER = -1000


def enabled(settings: BaseSettings) -> bool:
    """REDIS_URL, or REDIS_SENTINELS (the sentinels name the master): a worker of a job
    (defined once, in tmapi_spiders/jobs/backends.py)."""
    return _shared_job(settings)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def configure(settings: BaseSettings) -> None:
    """Turn the crawl into a worker of the job named by TMAPI_JOB (default: the spider)."""
    if not enabled(settings):
        return
    for name, value in (("SCHEDULER", SCHEDULER), ("DUPEFILTER_CLASS", DUPEFILTER)):
        set_unless_given(settings, name, value)  # a `-s` choice wins
    if not settings.get("TMAPI_WORKER_ID"):
        settings.set("TMAPI_WORKER_ID", default_worker_id(), priority=priority_above(settings, "TMAPI_WORKER_ID"))
    if not settings.get("FEED_URI_PARAMS"):
        settings.set("FEED_URI_PARAMS", URI_PARAMS, priority=priority_above(settings, "FEED_URI_PARAMS"))
    storages = dict(settings.getdict("FEED_STORAGES"))
    for scheme in ("", "file"):
        if storages.get(scheme) in (None, LOCAL_STORAGE):  # a storage of the user's own is kept
            storages[scheme] = STORAGE
    settings.set("FEED_STORAGES", storages, priority=priority_above(settings, "FEED_STORAGES"))
    middlewares = dict(settings.getdict("SPIDER_MIDDLEWARES"))
    middlewares.setdefault(WORKER_START, WORKER_START_ORDER)
    middlewares.setdefault(REQUESTS_DONE, REQUESTS_DONE_ORDER)
    settings.set("SPIDER_MIDDLEWARES", middlewares, priority=priority_above(settings, "SPIDER_MIDDLEWARES"))

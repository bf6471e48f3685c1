"""Distributed crawls: any number of `scrapy crawl` workers sharing one job in Redis.

REDIS_URL (or REDIS_SENTINELS) switches it on (`configure`, from tmapi_spiders/addons.py);
without it nothing here is imported by the crawl.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from scrapy import Spider
from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.jobs.backends import shared as enabled
from tmapi_spiders.settings_util import priority_above

SCHEDULER = "tmapi_spiders.distributed.scheduler.LeasingScheduler"
DUPEFILTER = "tmapi_spiders.distributed.dupefilter.ImageDupeFilter"
STORAGE = "tmapi_spiders.crawl.writes.UnbufferedFileFeedStorage"  # kill -9 safe: each line in the kernel
LOCAL_STORAGE = "tmapi_spiders.crawl.writes.CheckedFileFeedStorage"  # settings.py's, for one process
URI_PARAMS = "tmapi_spiders.distributed.uri_params"
SPIDER_MIDDLEWARES = {
    # The worker's start requests come from the job in Redis: next to the spider, in place of its own
    # seed list (the spider does not know it runs as a worker).
    "tmapi_spiders.distributed.start.WorkerStartMiddleware": 990,
    # When a lease's work is done (records written, follow-ups queued): outermost, next to the engine,
    # so it counts what every other spider middleware lets through.
    "tmapi_spiders.crawl.done.RequestsDone": -1000,
}


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def uri_params(params: dict[str, Any], spider: Spider) -> dict[str, Any]:
    """Feed URI placeholders for a worker's own feeds: %(worker)s, %(host)s, %(pid)s."""
    worker = registry.read(spider.settings, "TMAPI_WORKER_ID")
    return {**params, "worker": worker, "host": socket.gethostname(), "pid": os.getpid()}


def configure(settings: BaseSettings) -> None:
    """Turn the crawl into a worker of the job named by TMAPI_JOB (default: the spider)."""
    if not enabled(settings):
        return
    settings.set("SCHEDULER", SCHEDULER, priority="addon")  # the project's, a spider's or a `-s` choice wins
    settings.set("DUPEFILTER_CLASS", DUPEFILTER, priority="addon")
    if not registry.read(settings, "TMAPI_WORKER_ID"):
        settings.set("TMAPI_WORKER_ID", default_worker_id(), priority=priority_above(settings, "TMAPI_WORKER_ID"))
    if not settings.get("FEED_URI_PARAMS"):
        settings.set("FEED_URI_PARAMS", URI_PARAMS, priority=priority_above(settings, "FEED_URI_PARAMS"))
    storages = dict(settings.getdict("FEED_STORAGES"))
    for scheme in ("", "file"):
        if storages.get(scheme) in (None, LOCAL_STORAGE):  # a storage of the user's own is kept
            storages[scheme] = STORAGE
    settings.set("FEED_STORAGES", storages, priority=priority_above(settings, "FEED_STORAGES"))
    middlewares = {**SPIDER_MIDDLEWARES, **settings.getdict("SPIDER_MIDDLEWARES")}  # the user's orders win
    settings.set("SPIDER_MIDDLEWARES", middlewares, priority=priority_above(settings, "SPIDER_MIDDLEWARES"))

"""The answer store: never pay twice for one call (docs/resume.md, docs/running-jobs.md).

Scrapy's HttpCacheMiddleware (900) with `TmapiCachePolicy` (good answers only) and `AnswerStore`
(SQLite, answer_store.py). `auto`: on in one process, off for distributed workers (state in Redis).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from typing import Any, Self

from scrapy import Request
from scrapy.core.scheduler import Scheduler
from scrapy.crawler import Crawler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import NotConfigured
from scrapy.extensions.httpcache import DummyPolicy
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.project import data_path

from tmapi_spiders import registry
from tmapi_spiders.api import contract, paging
from tmapi_spiders.api.requests import ENDPOINT_SEARCH, ENVELOPE_META, META_KEY, endpoint_of
from tmapi_spiders.crawl.outputs import cause, probe
from tmapi_spiders.jobs import backends
from tmapi_spiders.jobs.answer_store import DB_NAME, SCHEDULER, connect


class TmapiCachePolicy(DummyPolicy):
    """Stores API answers with status 200 (the envelope gave failed ones their real status) and,
    for a search, a usable page: a re-run must not replay a hiccup. Freshness is the storage's."""

    def should_cache_request(self, request: Request) -> bool:
        return endpoint_of(request) is not None and super().should_cache_request(request)

    def should_cache_response(self, response: Response, request: Request) -> bool:
        if response.status != contract.OK:
            return False
        if endpoint_of(request) != ENDPOINT_SEARCH:
            return True
        envelope, state = request.meta.get(ENVELOPE_META), request.meta.get(META_KEY)
        if envelope is None or envelope.data is None or not isinstance(state, dict):
            return True
        return paging.unusable_search(envelope.data, state["page"], state["q"]["page_size"]) is None


def enabled(settings: BaseSettings) -> bool:
    """Whether this crawl keeps and reuses answers (`auto`: in one process). ValueError names a bad value."""
    if settings.get("TMAPI_CACHE") is None:  # settings built without the project's defaults (which say auto)
        return False
    value = registry.read(settings, "TMAPI_CACHE")
    return not backends.shared(settings) if value == "auto" else contract.parse_bool(value)


def cache_dir(settings: BaseSettings) -> str:
    """TMAPI_CACHE_DIR; a relative one lives in the project's .scrapy directory, as HTTPCACHE_DIR would
    (./.scrapy without a project, as under scrapyd)."""
    directory = registry.read(settings, "TMAPI_CACHE_DIR").strip() or "tmapi-cache"
    if os.path.isabs(directory):
        return directory
    try:
        return str(data_path(directory))
    except (NotConfigured, OSError):
        return os.path.abspath(os.path.join(".scrapy", directory))


def check_writable(directory: str) -> None:
    """Create the store and write a probe file before any paid call: ConfigError says what is wrong
    and how to go on. A damaged database is left for the store to move aside."""
    database = os.path.join(directory, DB_NAME)
    if os.path.isdir(database):
        raise registry.ConfigError(
            f"TMAPI_CACHE_DIR {directory}: {database} is a directory, where the answer store's file should be:"
            " move it away or choose another directory with -s TMAPI_CACHE_DIR=..."
        )
    probe_file = os.path.join(directory, f".probe-{os.getpid()}")
    try:
        probe(probe_file, [])
        connect(directory).close()
    except (OSError, sqlite3.OperationalError) as exc:
        reason = cause(exc, probe_file) if isinstance(exc, OSError) else str(exc)
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        raise registry.ConfigError(
            f"TMAPI_CACHE_DIR {directory} cannot be written ({reason}): "
            + ("free some space or choose" if full else "choose")
            + " another directory with -s TMAPI_CACHE_DIR=..., or run without the answer store"
            " (-s TMAPI_CACHE=false: an interrupted run then pays again for everything)"
        ) from None
    except sqlite3.DatabaseError:
        pass


def check(settings: BaseSettings) -> None:
    """Raise ConfigError for an unwritable store, or JOBDIR that cannot resume (before any paid call);
    each setting's own value is the registry's to check."""
    if not enabled(settings):
        overwrites = any((options or {}).get("overwrite") for options in settings.getdict("FEEDS").values())
        if settings.get("JOBDIR") and not backends.shared(settings) and overwrites:
            raise registry.ConfigError(
                "JOBDIR with TMAPI_CACHE=false and -O: resuming would overwrite the records of the run it"
                " resumes. Keep the answer store on (the default) or write with -o (append)"
            )
        return
    if not registry.read(settings, "TMAPI_CACHE_DIR").strip():
        raise registry.ConfigError("TMAPI_CACHE_DIR must name a directory when the answer store is on (TMAPI_CACHE)")
    check_writable(cache_dir(settings))


def configure(settings: BaseSettings) -> None:
    """The answer store as Scrapy's HTTPCACHE_* settings, at the add-on's priority (the user's win).
    A bad value is left for config.check_settings."""
    try:
        if not enabled(settings):
            return
        ttl = round(registry.read(settings, "TMAPI_CACHE_TTL"))  # 1 or more: the registry's bound
    except ValueError:
        return
    wanted: dict[str, Any] = {
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": cache_dir(settings),
        "HTTPCACHE_EXPIRATION_SECS": ttl,
        "HTTPCACHE_POLICY": "tmapi_spiders.jobs.cache.TmapiCachePolicy",
        "HTTPCACHE_STORAGE": "tmapi_spiders.jobs.answer_store.AnswerStore",
    }
    # JOBDIR in one process with -O: the answer store resumes (ReplayScheduler). With -o (a feed a re-run
    # appends to, no `%(time)s`), Scrapy's own JOBDIR resume is kept: replaying would append every record again.
    appends = any(
        not (options or {}).get("overwrite") and "%(time)s" not in str(uri)
        for uri, options in settings.getdict("FEEDS").items()
    )
    if settings.get("JOBDIR") and not backends.shared(settings) and not appends:
        wanted["SCHEDULER"] = SCHEDULER
    settings.setdict(wanted, priority="addon")


class ReplayScheduler(Scheduler):
    """Scrapy's scheduler without JOBDIR's queue and seen-set (one process, store on): a resumed run
    replays what was paid for and writes the whole feed again; the seen-set would skip done images."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        dupefilter_cls = load_object(settings["DUPEFILTER_CLASS"])
        if dupefilter_cls is RFPDupeFilter:
            dupefilter = RFPDupeFilter(
                debug=settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter
            )
        else:
            dupefilter = build_from_crawler(dupefilter_cls, crawler)
        return cls(
            dupefilter=dupefilter,
            jobdir=None,
            dqclass=load_object(settings["SCHEDULER_DISK_QUEUE"]),
            mqclass=load_object(settings["SCHEDULER_MEMORY_QUEUE"]),
            logunser=settings.getbool("SCHEDULER_DEBUG"),
            stats=crawler.stats,
            pqclass=load_object(settings["SCHEDULER_PRIORITY_QUEUE"]),
            crawler=crawler,
        )

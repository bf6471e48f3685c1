"""The answer store: never pay twice for the same call, on by default in one process.

Users pay per call, and a crawl of a big list is interrupted (Ctrl-C, a kill, a power
cut, the spending cap, a 439) or extended ("I added 50 photos"). The answer store keeps
every good answer on disk as it arrives, so running the same command again replays
every answer already paid for, free, and rewrites the whole `-O` feed; only the calls
in flight at a kill -9 are paid again.

It is Scrapy's own HttpCacheMiddleware (900) with two project classes:

- `TmapiCachePolicy` stores good answers only (the envelope middleware at 910 has
  already given every failed answer its real status);
- `AnswerStore`, the storage: one SQLite database (write-ahead log, one row per answer,
  zlib-compressed). A kill -9 loses no committed answer and a power cut leaves it
  consistent; an entry that cannot be decoded is a miss, not a crash. Scrapy's
  FilesystemCacheStorage writes six files per entry (file creation was most of the
  store's CPU, and 4 KiB blocks most of its disk) and can leave an entry half-written;
  DbmCacheStorage can lose the whole database to one kill -9.

The key is a SHA-1 of the request's method, URL and body: no header, so never the
token, which is a header added after the lookup. Settings: TMAPI_CACHE (auto: on in
one process; off for distributed workers, whose state is in Redis, and for the
bundled in-process sandbox, which costs nothing), TMAPI_CACHE_DIR, TMAPI_CACHE_TTL,
TMAPI_CACHE_MAX_MB, TMAPI_REFRESH (or `-a refresh=true`). docs/running-jobs.md and
docs/resume.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
import zlib
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote, quote_plus

from scrapy import Request, Spider
from scrapy.core.scheduler import Scheduler
from scrapy.crawler import Crawler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import NotConfigured
from scrapy.extensions.httpcache import DummyPolicy
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.settings import BaseSettings
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.project import data_path

from tmapi_spiders import contract
from tmapi_spiders.api import endpoint_of
from tmapi_spiders.redact import Redactor
from tmapi_spiders.settings_util import priority_above

logger = logging.getLogger(__name__)

POLICY = "tmapi_spiders.cache.TmapiCachePolicy"
STORAGE = "tmapi_spiders.cache.AnswerStore"
SCHEDULER = "tmapi_spiders.cache.ReplayScheduler"
# zlib level 1: a page's JSON shrinks about 5x at half of level 6's CPU (benchmarks/RESULTS.md).
ZLIB_LEVEL = 1
# Seconds between checkpoints, which sync the write-ahead log to disk: what a power cut can
# lose of the answers already saved (a kill -9 loses none of them). A sync per answer would
# cost a disk flush per page on the reactor thread.
SYNC_SECONDS = 5.0
AUTO = "auto"


class TmapiCachePolicy(DummyPolicy):
    """Caches API answers whose status is 200, the POST conversion included.

    TmapiEnvelopeMiddleware (910) has already given every failed answer (a bad `code`
    in an HTTP 200, no `data`, malformed JSON) its real status before the cache (900)
    sees it, so status 200 here means a good answer. Freshness is the storage's (the
    TTL is applied when an entry is read); the API's own cache headers are ignored.
    """

    def should_cache_request(self, request: Request) -> bool:
        return endpoint_of(request) is not None and super().should_cache_request(request)

    def should_cache_response(self, response: Response, request: Request) -> bool:
        return response.status == contract.OK


# -- settings ---------------------------------------------------------------------------


def ttl_seconds(settings: BaseSettings) -> int:
    """TMAPI_CACHE_TTL as whole seconds; ValueError names the setting."""
    raw = settings.get("TMAPI_CACHE_TTL")
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError(f"TMAPI_CACHE_TTL must be a number of seconds (e.g. 86400 for a day), got {raw!r}") from None
    if value <= 0 or value != value:
        raise ValueError(f"TMAPI_CACHE_TTL must be more than 0 seconds, got {raw!r}")
    return max(1, round(value))


def max_bytes(settings: BaseSettings) -> int:
    """TMAPI_CACHE_MAX_MB in bytes (0: no size bound); ValueError names the setting."""
    raw = settings.get("TMAPI_CACHE_MAX_MB")
    if raw in (None, ""):
        return 0
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError(f"TMAPI_CACHE_MAX_MB must be a number of megabytes (0 for no bound), got {raw!r}") from None
    if value < 0 or value != value:
        raise ValueError(f"TMAPI_CACHE_MAX_MB must not be negative (0 for no bound), got {raw!r}")
    return int(value * 1024 * 1024)


def enabled(settings: BaseSettings) -> bool:
    """Whether this crawl keeps and reuses answers. `auto` (the default): in one process,
    yes; a distributed worker keeps its state in Redis, and the bundled in-process
    sandbox (a new port, so new keys, every run) costs nothing. ValueError names the setting."""
    from tmapi_spiders import distributed

    raw = settings.get("TMAPI_CACHE")
    if raw is None:
        return False  # settings built without the project's defaults (which say auto)
    if str(raw).strip().lower() == AUTO:
        return not distributed.enabled(settings) and not settings.getbool("TMAPI_SANDBOX")
    try:
        return contract.parse_bool(raw)
    except ValueError:
        raise ValueError(f"TMAPI_CACHE must be auto, true or false, got {raw!r}") from None


def refresh_setting(settings: BaseSettings) -> bool:
    raw = settings.get("TMAPI_REFRESH")
    if raw in (None, ""):
        return False
    try:
        return contract.parse_bool(raw)
    except ValueError:
        raise ValueError(f"TMAPI_REFRESH must be true or false, got {raw!r}") from None


def cache_dir(directory: str) -> str:
    """A relative TMAPI_CACHE_DIR lives in the project's .scrapy directory, as HTTPCACHE_DIR
    would; where there is no scrapy.cfg to find it (scrapyd runs from an egg), or the
    project directory cannot be written (checked later, with one clear line), under ./.scrapy."""
    if os.path.isabs(directory):
        return directory
    try:
        return str(data_path(directory))
    except (NotConfigured, OSError):
        return os.path.abspath(os.path.join(".scrapy", directory))


def check_writable(directory: str) -> None:
    """Create the store (directory and database) and write a probe file, before any paid
    call: an unwritable directory or a full disk is one line at start, not a surprise an
    hour into a paid job. ValueError says what and how to go on. A database file that is
    not one is left for the store to move aside (AnswerStore._open)."""
    probe = os.path.join(directory, f".probe-{os.getpid()}")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
        os.remove(probe)
        connect(directory).close()
    except (OSError, sqlite3.OperationalError) as exc:
        try:
            os.remove(probe)
        except OSError:
            pass
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(
            f"TMAPI_CACHE_DIR {directory} cannot be written ({reason}): free some space or choose another"
            " directory with -s TMAPI_CACHE_DIR=..., or run without the answer store"
            " (-s TMAPI_CACHE=false: an interrupted run then pays again for everything)"
        ) from None
    except sqlite3.DatabaseError:
        pass


def check(settings: BaseSettings) -> None:
    """Raise ValueError for a bad store setting or an unwritable store (before any paid call)."""
    from tmapi_spiders import distributed

    on = enabled(settings)
    refresh_setting(settings)
    max_bytes(settings)
    if on or settings.get("TMAPI_CACHE_TTL") is not None:
        ttl_seconds(settings)
    if not on:
        if settings.get("JOBDIR") and not distributed.enabled(settings) and _overwrites(settings):
            raise ValueError(
                "JOBDIR with TMAPI_CACHE=false and -O: resuming would overwrite the records of the run it"
                " resumes. Keep the answer store on (the default) or write with -o (append)"
            )
        return
    directory = str(settings.get("TMAPI_CACHE_DIR") or "").strip()
    if not directory:
        raise ValueError("TMAPI_CACHE_DIR must name a directory when the answer store is on (TMAPI_CACHE)")
    check_writable(cache_dir(directory))


def _overwrites(settings: BaseSettings) -> bool:
    return any((options or {}).get("overwrite") for options in settings.getdict("FEEDS").values())


def _appends(settings: BaseSettings) -> bool:
    """A feed opened in append mode (`-o`) that a re-run writes into again: a file name
    without `%(time)s`, which would be a new file each run."""
    return any(
        not (options or {}).get("overwrite") and "%(time)s" not in str(uri)
        for uri, options in settings.getdict("FEEDS").items()
    )


def configure(settings: BaseSettings) -> None:
    """Turn the answer store into Scrapy's HTTPCACHE_* settings (from the spider's update_settings).

    Each is set one priority above whatever set it before: `CrawlerProcess.crawl(crawler)`
    merges the process's settings back in wherever the crawler's priority is not higher
    (see feeds.configure). A bad value is left for config.check_settings to report.
    """
    from tmapi_spiders import distributed

    try:
        on = enabled(settings)
        ttl = ttl_seconds(settings)
    except ValueError:
        return
    if not on:
        return
    wanted: dict[str, Any] = {
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": cache_dir(str(settings.get("TMAPI_CACHE_DIR") or "").strip() or "tmapi-cache"),
        "HTTPCACHE_EXPIRATION_SECS": ttl,
        "HTTPCACHE_POLICY": POLICY,
        "HTTPCACHE_STORAGE": STORAGE,
    }
    # JOBDIR in one process, writing with -O: the answer store does the resuming (each run
    # starts from the seed list and replays what is stored), so the feed is written whole
    # again. Scrapy's queue and seen-set in JOBDIR would skip the images already done, and
    # a resumed -O would lose their records; they are also not safe against kill -9. With
    # -o (append), Scrapy's own JOBDIR resume is kept: replaying would append every record
    # of the first run a second time.
    if (
        settings.get("JOBDIR")
        and not distributed.enabled(settings)
        and not _appends(settings)
        and (settings.getpriority("SCHEDULER") or 0) < 40
    ):
        wanted["SCHEDULER"] = SCHEDULER
    for name, value in wanted.items():
        settings.set(name, value, priority=priority_above(settings, name))


# -- the storage --------------------------------------------------------------------------

DB_NAME = "answers.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,   -- the key's first 8 bytes, signed: the row id, so no second index
    key BLOB NOT NULL,        -- SHA-1 of the request's method, URL and body (never a header)
    stored_at REAL NOT NULL,  -- Unix time the answer was paid for
    data BLOB NOT NULL        -- zlib: a JSON line {"url", "status", "headers"}, then the body
);
CREATE INDEX IF NOT EXISTS answers_by_age ON answers (stored_at);
"""


def connect(directory: str) -> sqlite3.Connection:
    """The store's database, created if need be. WAL with synchronous=NORMAL: a commit is one
    append to the log, without fsync; a kill -9 loses no committed answer, a power cut at most
    the last ones, and never leaves the database inconsistent."""
    os.makedirs(directory, exist_ok=True)
    db = sqlite3.connect(os.path.join(directory, DB_NAME), isolation_level=None, timeout=10)
    try:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect in a new database only
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def key_of(request: Request) -> bytes:
    """SHA-1 of the request's method, URL and body: never a header, so never the token.
    Scrapy's request fingerprint canonicalises the URL first, which cost 0.25 ms a page;
    ApiRequests already writes every URL in one stable form."""
    return hashlib.sha1(b"%s %s\n%s" % (request.method.encode(), request.url.encode(), request.body)).digest()


def row_id(key: bytes) -> int:
    return int.from_bytes(key[:8], "big", signed=True)


def encode(response: Response) -> bytes:
    headers = {k.decode("latin-1"): [v.decode("latin-1") for v in values] for k, values in response.headers.items()}
    head = json.dumps({"url": response.url, "status": response.status, "headers": headers}).encode()
    return head + b"\n" + response.body


def decode(data: bytes) -> Response:
    """ValueError (or zlib.error) for anything but a whole entry."""
    head, _, body = zlib.decompress(data).partition(b"\n")
    meta = json.loads(head)
    url, status, headers = str(meta["url"]), int(meta["status"]), Headers(meta["headers"])
    respcls = responsetypes.from_args(headers=headers, url=url, body=body)
    return respcls(url=url, headers=headers, status=status, body=body)


def stored_answers(directory: str) -> list[tuple[float, bytes]]:
    """Every entry as (stored_at, JSON line + body): for tests and for looking inside."""
    with closing(connect(directory)) as db:
        rows = db.execute("SELECT stored_at, data FROM answers ORDER BY stored_at").fetchall()
    return [(at, zlib.decompress(data)) for at, data in rows]


@dataclass
class Inventory:
    """What the store held at start, after pruning."""

    entries: int = 0
    bytes: int = 0
    pruned_old: int = 0
    pruned_size: int = 0
    pruned_bytes: int = 0


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def prune(db: sqlite3.Connection, ttl: int, limit: int, now: float | None = None) -> Inventory:
    """Delete entries older than the TTL (never reused again) and, over `limit` bytes, the
    oldest ones; give the freed pages back to the file system. Returns what is left."""
    now = time.time() if now is None else now
    inventory = Inventory()
    old = db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM answers WHERE stored_at < ?", (now - ttl,))
    inventory.pruned_old, inventory.pruned_bytes = old.fetchone()
    if inventory.pruned_old:
        db.execute("DELETE FROM answers WHERE stored_at < ?", (now - ttl,))
    entries, total = db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM answers").fetchone()
    if limit and total > limit:
        doomed: list[tuple[int]] = []
        for rid, size in db.execute("SELECT id, length(data) FROM answers ORDER BY stored_at"):
            if total <= limit:
                break
            doomed.append((rid,))
            total -= size
            inventory.pruned_bytes += size
        db.executemany("DELETE FROM answers WHERE id = ?", doomed)
        inventory.pruned_size = len(doomed)
        entries -= len(doomed)
    if inventory.pruned_old or inventory.pruned_size:
        db.execute("PRAGMA incremental_vacuum")
    inventory.entries, inventory.bytes = entries, total
    return inventory


class AnswerStore:
    """HTTPCACHE_STORAGE: every good answer as one row of a SQLite database.

    One file, whatever the number of answers (one file per answer cost a file creation,
    0.5 ms a page, and 4 KiB blocks on disk); a lookup is one primary-key read; a commit
    one append to the write-ahead log. An entry that cannot be decoded (a disk fault) is a
    miss and is deleted; a database that is not one (overwritten, truncated) is moved aside
    and a new one started. A write that fails (disk full) is logged once and counted
    (`tmapi/answers/store_failed`): the answer still goes on to the spider, so the feed
    loses nothing; only the next run pays for that call again.
    """

    def __init__(self, settings: BaseSettings) -> None:
        self.root = str(settings["HTTPCACHE_DIR"])
        self.ttl = settings.getint("HTTPCACHE_EXPIRATION_SECS")
        self.max_bytes = max_bytes(settings)
        self.refresh = refresh_setting(settings)
        self.jobdir = settings.get("JOBDIR") or ""
        self.replays_jobdir = settings.get("SCHEDULER") == SCHEDULER
        token = settings.get("TMAPI_API_TOKEN") or ""
        self.redactor = Redactor([token])
        # Plain substring checks first (fast); the redactor (case-insensitive) only on a hit.
        forms = (token, quote(token, safe=""), quote_plus(token, safe=""))
        self.token_forms = tuple({f.encode() for f in forms}) if self.redactor else ()
        self.db: sqlite3.Connection | None = None
        self.stats: Any = None
        self.write_error_logged = False
        self.read_error_logged = False
        self.last_sync = time.monotonic()

    # Scrapy's storage interface

    def open_spider(self, spider: Spider) -> None:
        self.stats = spider.crawler.stats
        job = getattr(spider, "job", None)
        self.refresh = self.refresh or bool(getattr(job, "refresh", False))
        try:
            self.db = self._open()
            inventory = prune(self.db, self.ttl, self.max_bytes)
        except (OSError, sqlite3.Error) as exc:
            self.db = None
            logger.error(
                "Answer store: cannot open %s (%s): this run keeps no answers, and running it again will pay"
                " for every call again. Its records still reach the feed.",
                os.path.join(self.root, DB_NAME),
                exc,
            )
            return
        self.stats.set_value("tmapi/answers/stored_at_start", inventory.entries)
        self.log_start(inventory)

    def _open(self) -> sqlite3.Connection:
        try:
            return connect(self.root)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise  # locked, disk full, unwritable: not the file's fault
        path = os.path.join(self.root, DB_NAME)
        aside = f"{path}.unreadable-{int(time.time())}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        logger.warning("Answer store: %s was not a readable database: moved to %s, starting an empty one", path, aside)
        return connect(self.root)

    def close_spider(self, spider: Spider) -> None:
        if self.db is not None:
            try:
                self.db.close()  # the last connection folds the write-ahead log into the database
            except sqlite3.Error:
                pass
            self.db = None

    def retrieve_response(self, spider: Spider, request: Request) -> Response | None:
        if self.refresh or self.db is None:
            return None
        key = key_of(request)
        try:
            row = self.db.execute("SELECT key, stored_at, data FROM answers WHERE id = ?", (row_id(key),)).fetchone()
        except sqlite3.Error as exc:
            self._read_failed(f"could not be read ({exc})")
            return None
        if row is None or row[0] != key:
            return None
        if time.time() - row[1] > self.ttl:
            return None  # too old to reuse: asked (and paid for) again, and replaced
        try:
            return decode(row[2])
        except (zlib.error, ValueError, KeyError, TypeError) as exc:
            self._read_failed(f"is torn or corrupt ({type(exc).__name__})")
            try:
                self.db.execute("DELETE FROM answers WHERE id = ?", (row_id(key),))
            except sqlite3.Error:
                pass
            return None

    def store_response(self, spider: Spider, request: Request, response: Response) -> None:
        if self.db is None:
            self.stats.inc_value("tmapi/answers/store_failed")
            return
        payload = encode(response)
        if self.token_forms and any(form in payload for form in self.token_forms):
            payload = self.redactor.bytes(payload)  # an answer that echoed the token: never on disk
            self.stats.inc_value("tmapi/answers/token_redacted")
        key = key_of(request)
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO answers (id, key, stored_at, data) VALUES (?, ?, ?, ?)",
                (row_id(key), key, time.time(), zlib.compress(payload, ZLIB_LEVEL)),
            )
        except sqlite3.Error as exc:
            self.stats.inc_value("tmapi/answers/store_failed")
            if not self.write_error_logged:
                self.write_error_logged = True
                logger.error(
                    "Answer store: could not save an answer under %s (%s). The crawl goes on and its records"
                    " still reach the feed, but answers not saved will be paid for again by the next run"
                    " (count: tmapi/answers/store_failed).",
                    self.root,
                    exc,
                )
            return
        self.stats.inc_value("tmapi/answers/stored")
        if time.monotonic() - self.last_sync >= SYNC_SECONDS:
            self.last_sync = time.monotonic()
            try:
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # a later checkpoint, or the one at close, does it

    # helpers

    def _read_failed(self, what: str) -> None:
        self.stats.inc_value("tmapi/answers/unreadable")
        if not self.read_error_logged:
            self.read_error_logged = True
            logger.warning("Answer store: an entry under %s %s: treated as not stored (asked again)", self.root, what)

    def log_start(self, inventory: Inventory) -> None:
        if inventory.pruned_old or inventory.pruned_size:
            logger.info(
                "Answer store: pruned %d entries older than TMAPI_CACHE_TTL (%d s) and %d over TMAPI_CACHE_MAX_MB:"
                " %s freed",
                inventory.pruned_old,
                self.ttl,
                inventory.pruned_size,
                _mb(inventory.pruned_bytes),
            )
        bound = f"at most {_mb(self.max_bytes)} (TMAPI_CACHE_MAX_MB)" if self.max_bytes else "no size bound"
        if self.refresh:
            logger.info(
                "Answer store: refresh: the %d stored answers under %s are not reused this run; every call is"
                " paid for and its answer replaces the stored one",
                inventory.entries,
                self.root,
            )
        elif inventory.entries:
            logger.info(
                "Answer store: resuming: %d stored answers under %s (younger than TMAPI_CACHE_TTL, %d s) are"
                " reused free wherever this run asks for them; new good answers are saved there as they"
                " arrive (%s, %s). -a refresh=true pays for everything again",
                inventory.entries,
                self.root,
                self.ttl,
                _mb(inventory.bytes),
                bound,
            )
        else:
            logger.info(
                "Answer store: nothing stored under %s yet; every good answer is saved there as it arrives,"
                " so running the same command again after an interruption pays nothing for it (%s)",
                self.root,
                bound,
            )
        if self.jobdir and self.replays_jobdir:
            logger.info(
                "JOBDIR %s: the job resumes from the answer store: every run starts from the seed list,"
                " replays the stored answers free and writes the feed whole again",
                self.jobdir,
            )
        elif self.jobdir:
            logger.info(
                "JOBDIR %s with an appended feed (-o): Scrapy's own resume (its request queue and seen"
                " requests there) goes on where the last run stopped; stop it with one Ctrl-C",
                self.jobdir,
            )


# -- JOBDIR ---------------------------------------------------------------------------------


class ReplayScheduler(Scheduler):
    """Scrapy's scheduler without JOBDIR's request queue and seen-set (one process, store on).

    With the answer store, a resumed run replays everything already paid for and writes
    the whole feed again; JOBDIR's seen-set would instead skip the images already done
    (and `-O` would lose their records), and its disk queue is only consistent after a
    clean stop. JOBDIR itself stays the job's directory (spider state and so on).
    """

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        settings = crawler.settings
        dupefilter_cls = load_object(settings["DUPEFILTER_CLASS"])
        if dupefilter_cls is RFPDupeFilter:
            dupefilter = RFPDupeFilter(
                None, settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter
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

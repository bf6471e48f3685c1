"""The answer store (HTTPCACHE_STORAGE): every good API answer kept in one SQLite file as it arrives.

A stored answer is served free, a torn entry is a miss, a damaged file is moved aside (docs/resume.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
import zlib
from contextlib import closing, suppress
from typing import Any

from scrapy import Request, Spider
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.jobs.answer_upkeep import Inventory, damaged, prune, salvage

logger = logging.getLogger(__name__)

ZLIB_LEVEL = 1  # the fastest level: JSON still shrinks well
SYNC_SECONDS = 5.0  # between write-ahead log checkpoints: what a power cut can lose (a sync per answer is slow)

DB_NAME = "answers.sqlite3"
# The scheduler cache.configure sets with JOBDIR in one process: a resumed run replays the store.
SCHEDULER = "tmapi_spiders.jobs.cache.ReplayScheduler"
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
    """The store's database, created if need be. WAL, synchronous=NORMAL: a kill -9 loses no committed
    answer, a power cut at most the last ones, never consistency."""
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
    """SHA-1 of method, URL and body: never a header, so never the token (api/requests.py writes each URL one way)."""
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
    """Every entry as (stored_at, JSON line + body), for looking inside."""
    with closing(connect(directory)) as db:
        rows = db.execute("SELECT stored_at, data FROM answers ORDER BY stored_at").fetchall()
    return [(at, zlib.decompress(data)) for at, data in rows]


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


class AnswerStore:
    """HTTPCACHE_STORAGE: one row per good answer. A failed write is logged once and counted: the
    answer still reaches the spider, only the next run pays for that call again."""

    def __init__(self, settings: BaseSettings) -> None:
        self.root = str(settings["HTTPCACHE_DIR"])
        self.ttl = settings.getint("HTTPCACHE_EXPIRATION_SECS")
        self.max_bytes = int(registry.read(settings, "TMAPI_CACHE_MAX_MB") * 1024 * 1024)
        self.refresh = registry.read(settings, "TMAPI_REFRESH")
        self.jobdir = settings.get("JOBDIR") or ""
        self.replays_jobdir = settings.get("SCHEDULER") == SCHEDULER
        self.redactor = Redactor([registry.read(settings, "TMAPI_API_TOKEN")])
        self.db: sqlite3.Connection | None = None
        self.stats: Any = None
        self.write_error_logged = False
        self.read_error_logged = False
        self.last_sync = time.monotonic()

    def open_spider(self, spider: Spider) -> None:
        self.stats = spider.crawler.stats
        self.refresh = self.refresh or bool(getattr(getattr(spider, "job", None), "refresh", False))
        try:
            try:
                self.db = connect(self.root)
                inventory = prune(self.db, self.ttl, self.max_bytes)
            except sqlite3.DatabaseError as exc:
                if not damaged(exc):
                    raise
                self._replace_damaged(exc)  # damage that shows at open, or in the pruning's reads
                inventory = prune(self.db, self.ttl, self.max_bytes)
        except (OSError, sqlite3.Error) as exc:
            self.close_spider()
            logger.error(
                "Answer store: cannot open %s (%s): this run keeps no answers, and running it again will pay"
                " for every call again. Its records still reach the feed.",
                os.path.join(self.root, DB_NAME),
                exc,
            )
            return
        self.stats.set_value("tmapi/answers/stored_at_start", inventory.entries)
        self.log_start(inventory)

    def _replace_damaged(self, exc: sqlite3.Error) -> None:
        """Move the damaged database (and its log) aside; start a new one with what can still be read."""
        self.close_spider()
        path = os.path.join(self.root, DB_NAME)
        aside = f"{path}.unreadable-{int(time.time())}"
        n = 1
        while os.path.lexists(aside):  # moved aside once already this second: keep both
            n += 1
            aside = f"{path}.unreadable-{int(time.time())}-{n}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        self.db = connect(self.root)
        kept = salvage(aside, self.db)
        self.stats.inc_value("tmapi/answers/damaged_store_moved")
        logger.warning(
            "Answer store: %s was not a readable database: moved to %s (%s); a new one was started with the"
            " %d answers that could still be read from it",
            path,
            aside,
            exc,
            kept,
        )

    def close_spider(self, spider: Spider | None = None) -> None:
        """Also whenever the store is given up; the last connection folds the write-ahead log into the database."""
        if self.db is not None:
            with suppress(sqlite3.Error):
                self.db.close()
            self.db = None

    def retrieve_response(self, spider: Spider, request: Request) -> Response | None:
        if self.refresh or self.db is None:
            return None
        key = key_of(request)
        try:
            row = self._on_db("SELECT key, stored_at, data FROM answers WHERE id = ?", (row_id(key),))
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
            with suppress(sqlite3.Error):
                self.db.execute("DELETE FROM answers WHERE id = ?", (row_id(key),))
            return None

    def store_response(self, spider: Spider, request: Request, response: Response) -> None:
        if self.db is None:
            self.stats.inc_value("tmapi/answers/store_failed")
            return
        payload = encode(response)
        if self.redactor.found_in_bytes(payload):
            payload = self.redactor.bytes(payload)  # an answer that echoed the token: never on disk
            self.stats.inc_value("tmapi/answers/token_redacted")
        key = key_of(request)
        row = (row_id(key), key, time.time(), zlib.compress(payload, ZLIB_LEVEL))
        try:
            self._on_db("INSERT OR REPLACE INTO answers (id, key, stored_at, data) VALUES (?, ?, ?, ?)", row)
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
            with suppress(sqlite3.Error):  # else a later checkpoint, or the one at close, does it
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _on_db(self, sql: str, params: tuple[Any, ...]) -> Any:
        """One statement's first row (or None); damage found mid-run replaces the store and the statement
        runs once more on the new one (if no new store can be started, the rest of the run keeps no answers)."""
        assert self.db is not None
        try:
            return self.db.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            if not damaged(exc):
                raise
            try:
                self._replace_damaged(exc)
            except (OSError, sqlite3.Error) as again:
                self.close_spider()
                logger.error(
                    "Answer store: %s is damaged (%s) and no new one could be started (%s): the rest of this run"
                    " keeps no answers. Its records still reach the feed.",
                    os.path.join(self.root, DB_NAME),
                    exc,
                    again,
                )
                raise exc from None
        return self.db.execute(sql, params).fetchone()

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

"""The answer store: every good API answer kept in one SQLite file as it arrives.

Scrapy's HttpCacheMiddleware calls it (HTTPCACHE_STORAGE, set by cache.configure): a
stored answer is served free, a new good one is written at once (WAL mode, so a kill -9
loses no committed answer), a torn or unreadable entry is a miss. Keys hold no token.
See docs/resume.md.
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
from typing import Any

from scrapy import Request, Spider
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.redact import Redactor

logger = logging.getLogger(__name__)

# zlib level 1: a page's JSON shrinks about 5x at half of level 6's CPU (benchmarks/RESULTS.md).
ZLIB_LEVEL = 1
# Seconds between checkpoints, which sync the write-ahead log to disk: what a power cut can
# lose of the answers already saved (a kill -9 loses none of them). A sync per answer would
# cost a disk flush per page on the reactor thread.
SYNC_SECONDS = 5.0

DB_NAME = "answers.sqlite3"
# The scheduler cache.configure sets with JOBDIR in one process: a resumed run replays the store.
SCHEDULER = "tmapi_spiders.cache.ReplayScheduler"
SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,   -- the key's first 8 bytes, signed: the row id, so no second index
    key BLOB NOT NULL,        -- SHA-1 of the request's method, URL and body (never a header)
    stored_at REAL NOT NULL,  -- Unix time the answer was paid for
    data BLOB NOT NULL        -- zlib: a JSON line {"url", "status", "headers"}, then the body
);
CREATE INDEX IF NOT EXISTS answers_by_age ON answers (stored_at);
"""


def max_bytes(settings: BaseSettings) -> int:
    """TMAPI_CACHE_MAX_MB in bytes (0: no size bound)."""
    return int(registry.read(settings, "TMAPI_CACHE_MAX_MB") * 1024 * 1024)


def refresh_setting(settings: BaseSettings) -> bool:
    return bool(registry.read(settings, "TMAPI_REFRESH"))


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


# SQLite's primary result codes for a damaged file: CORRUPT ("database disk image is
# malformed") and NOTADB ("file is not a database"). Others (full, locked, I/O) are not the file's fault.
DAMAGED_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (then it is moved aside, not retried)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in DAMAGED_CODES
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def salvage(source: str, db: sqlite3.Connection) -> int:
    """Copy every entry still readable in the database at `source` into `db`: in key order up
    to the first damaged page, then backwards from the end to it. Returns how many."""
    copied: set[int] = set()
    try:
        old = sqlite3.connect(source, isolation_level=None, timeout=1)
    except sqlite3.Error:
        return 0
    with closing(old):
        for order in ("ASC", "DESC"):
            try:
                db.execute("BEGIN")
                try:
                    for row in old.execute(f"SELECT id, key, stored_at, data FROM answers ORDER BY id {order}"):
                        if row[0] in copied:
                            break
                        db.execute("INSERT OR IGNORE INTO answers (id, key, stored_at, data) VALUES (?, ?, ?, ?)", row)
                        copied.add(row[0])
                finally:
                    db.execute("COMMIT")
            except sqlite3.DatabaseError:
                continue
    return len(copied)


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
            try:
                self.db, inventory = self._open_and_prune()
            except sqlite3.DatabaseError as exc:
                if not damaged(exc):
                    raise
                self._replace_damaged(exc)  # damage that shows at open, or in the pruning's reads
                self.db, inventory = self._open_and_prune()
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

    def _open_and_prune(self) -> tuple[sqlite3.Connection, Inventory]:
        db = connect(self.root)
        try:
            return db, prune(db, self.ttl, self.max_bytes)
        except BaseException:
            db.close()
            raise

    def _replace_damaged(self, exc: sqlite3.Error) -> None:
        """Move the damaged database aside (with its write-ahead log) and start a new one
        holding every answer that can still be read from it: the run goes on keeping its
        answers, and the next one replays them."""
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
            self.db = None
        path = os.path.join(self.root, DB_NAME)
        aside = f"{path}.unreadable-{int(time.time())}"
        n = 1
        while os.path.lexists(aside):  # moved aside once already this second: keep both
            n += 1
            aside = f"{path}.unreadable-{int(time.time())}-{n}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        db = connect(self.root)
        kept = salvage(aside, db)
        self.db = db
        if self.stats is not None:
            self.stats.inc_value("tmapi/answers/damaged_store_moved")
        logger.warning(
            "Answer store: %s was not a readable database: moved to %s (%s); a new one was started with the"
            " %d answers that could still be read from it",
            path,
            aside,
            exc,
            kept,
        )

    def _recover(self, exc: sqlite3.Error) -> bool:
        """Damage found mid-run: replace the store (False, and no store for the rest of the
        run, when even that fails)."""
        try:
            self._replace_damaged(exc)
            return True
        except (OSError, sqlite3.Error) as again:
            self.db = None
            logger.error(
                "Answer store: %s is damaged (%s) and no new one could be started (%s): the rest of this run"
                " keeps no answers. Its records still reach the feed.",
                os.path.join(self.root, DB_NAME),
                exc,
                again,
            )
            return False

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
            row = self._select(key)
        except sqlite3.Error as exc:
            if not (damaged(exc) and self._recover(exc)):
                self._read_failed(f"could not be read ({exc})")
                return None
            try:
                row = self._select(key)
            except sqlite3.Error as again:
                self._read_failed(f"could not be read ({again})")
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
        if self.redactor.found_in_bytes(payload):
            payload = self.redactor.bytes(payload)  # an answer that echoed the token: never on disk
            self.stats.inc_value("tmapi/answers/token_redacted")
        key = key_of(request)
        row = (row_id(key), key, time.time(), zlib.compress(payload, ZLIB_LEVEL))
        try:
            try:
                self._insert(row)
            except sqlite3.DatabaseError as exc:
                if not (damaged(exc) and self._recover(exc)):
                    raise
                self._insert(row)
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

    def _select(self, key: bytes) -> tuple[bytes, float, bytes] | None:
        assert self.db is not None
        row: tuple[bytes, float, bytes] | None = self.db.execute(
            "SELECT key, stored_at, data FROM answers WHERE id = ?", (row_id(key),)
        ).fetchone()
        return row

    def _insert(self, row: tuple[int, bytes, float, bytes]) -> None:
        if self.db is None:
            raise sqlite3.OperationalError("no answer store")
        self.db.execute("INSERT OR REPLACE INTO answers (id, key, stored_at, data) VALUES (?, ?, ?, ?)", row)

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

"""The answer store's upkeep: pruning old and excess answers at start, salvaging a damaged database."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing, suppress
from dataclasses import dataclass


def damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (moved aside, not retried): full, locked or I/O are not
    the file's fault, and an error of the sqlite3 module's own (a closed connection) carries no SQLite code."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def salvage(source: str, db: sqlite3.Connection) -> int:
    """Copy every entry still readable at `source` into `db`, forwards to the first damaged page
    then backwards to it; returns how many."""
    copied: set[int] = set()
    try:
        old = sqlite3.connect(source, isolation_level=None, timeout=1)
    except sqlite3.Error:
        return 0
    with closing(old):
        for order in ("ASC", "DESC"):
            with suppress(sqlite3.DatabaseError):  # the damaged page: what was copied before it is kept
                db.execute("BEGIN")
                try:
                    for row in old.execute(f"SELECT id, key, stored_at, data FROM answers ORDER BY id {order}"):
                        if row[0] in copied:
                            break
                        db.execute("INSERT OR IGNORE INTO answers (id, key, stored_at, data) VALUES (?, ?, ?, ?)", row)
                        copied.add(row[0])
                finally:
                    db.execute("COMMIT")
    return len(copied)


@dataclass
class Inventory:
    """What the store held at start, after pruning."""

    entries: int
    bytes: int
    pruned_old: int
    pruned_size: int
    pruned_bytes: int


def prune(db: sqlite3.Connection, ttl: int, limit: int) -> Inventory:
    """Delete entries past the TTL and, over `limit` bytes, the oldest; free their pages. Returns what is left."""
    args = {"cutoff": time.time() - ttl, "limit": limit}
    old = "stored_at < :cutoff"
    # Over the limit (0: none): an entry that, with every newer one, comes to more than it.
    excess = (
        ":limit > 0 AND id IN (SELECT id FROM (SELECT id, sum(length(data)) OVER (ORDER BY stored_at DESC, id DESC"
        " ROWS UNBOUNDED PRECEDING) AS upto FROM answers WHERE stored_at >= :cutoff) WHERE upto > :limit)"
    )
    sizes = "SELECT count(*), coalesce(sum(length(data)), 0) FROM answers WHERE "
    pruned_old, old_bytes = db.execute(sizes + old, args).fetchone()
    pruned_size, excess_bytes = db.execute(sizes + excess, args).fetchone()
    if pruned_old or pruned_size:
        db.execute(f"DELETE FROM answers WHERE {old} OR {excess}", args)
        db.execute("PRAGMA incremental_vacuum")
    entries, size = db.execute(sizes + "1").fetchone()
    return Inventory(entries, size, pruned_old, pruned_size, old_bytes + excess_bytes)

"""The answer store's upkeep: pruning old and excess answers at start, salvaging a damaged database."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing, suppress
from dataclasses import dataclass

# SQLite's result codes for a damaged file; others (full, locked, I/O) are not the file's fault.
DAMAGED_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (moved aside, not retried); an error of the
    sqlite3 module's own (a closed connection, a bad parameter) carries no SQLite code and is not."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in DAMAGED_CODES


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

    entries: int = 0
    bytes: int = 0
    pruned_old: int = 0
    pruned_size: int = 0
    pruned_bytes: int = 0


def prune(db: sqlite3.Connection, ttl: int, limit: int) -> Inventory:
    """Delete entries past the TTL and, over `limit` bytes, the oldest; free their pages. Returns what is left."""
    cutoff = time.time() - ttl
    inventory = Inventory()
    old = db.execute("SELECT count(*), coalesce(sum(length(data)), 0) FROM answers WHERE stored_at < ?", (cutoff,))
    inventory.pruned_old, inventory.pruned_bytes = old.fetchone()
    if inventory.pruned_old:
        db.execute("DELETE FROM answers WHERE stored_at < ?", (cutoff,))
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

"""A real damaged answer store (pages of a real store file overwritten, so SQLite says
`database disk image is malformed`): moved aside, a new store started with what can still be
read, the run keeps its answers and the next one replays them free (answer_store.py)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.e2e.test_resume import Job
from tmapi_spiders.jobs import answer_store, outcome
from tmapi_spiders.sandbox import SandboxThread

TOKEN = "tok-RESUME-good-41"  # test_resume's Job runs with this token
SMALL = [f"https://cbu01.alicdn.com/img/damaged-{i}.jpg?total=100" for i in range(10)]  # 5 pages each
BIG = "https://cbu01.alicdn.com/img/damaged-big.jpg?total=4000"  # 200 pages: the age index needs 2 leaf pages
SANDBOX_OPTIONS = {"tokens": (TOKEN,)}  # this module's `sandbox` (tests/conftest.py)


def pages(db: Path, name: str) -> list[tuple[int, int]]:
    """(page number, cells) of the b-tree `name`'s leaf pages, left to right."""
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path", (name,)
        ).fetchall()
    return [(int(n), int(c)) for n, c in rows]


def overwrite(db: Path, pageno: int) -> None:
    """Garbage over one whole page of the closed store file."""
    with closing(sqlite3.connect(db)) as con:
        size = con.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((pageno - 1) * size)
        f.write(os.urandom(size))


def malformed(db: Path) -> str:
    with closing(sqlite3.connect(db)) as con:
        try:
            con.execute("SELECT count(*), sum(length(data)) FROM answers").fetchone()
            con.execute("SELECT count(*) FROM answers INDEXED BY answers_by_age WHERE stored_at > 0").fetchone()
        except sqlite3.DatabaseError as exc:
            return str(exc)
    return ""


def test_a_store_damaged_in_the_middle_is_moved_aside_at_start(tmp_path: Path, sandbox: SandboxThread) -> None:
    job = Job(tmp_path, sandbox.base_url, images=SMALL)
    assert job.run().returncode == outcome.OK
    db = job.store / answer_store.DB_NAME
    leaves = pages(db, "answers")
    pageno, lost = leaves[len(leaves) // 2]
    overwrite(db, pageno)
    assert malformed(db) == "database disk image is malformed"
    sandbox.reset()
    second = job.run()
    assert second.returncode == outcome.OK, second.log[-3000:]
    [aside] = job.store.glob(answer_store.DB_NAME + ".unreadable-*")
    warning = [line for line in second.log.splitlines() if "was not a readable database" in line]
    assert len(warning) == 1 and str(aside) in warning[0] and "malformed" in warning[0]
    kept = int(warning[0].split("started with the ")[1].split()[0])
    # Only the answers the salvage could not read are paid again: the damaged page's, and those a
    # scan could not reach next to it (SQLite stops a scan at the page before or after it).
    paid = second.stats["tmapi/paid_calls"]
    assert paid == 50 - kept == sandbox.stats()["total_calls"] and lost <= paid <= lost + 4
    assert len(job.records()) == len(set(job.records())) == 10 * 100
    assert "Traceback" not in second.log and "keeps no answers" not in second.log
    sandbox.reset()
    third = job.run()
    assert third.returncode == outcome.OK and third.stats.get("tmapi/paid_calls", 0) == 0
    assert sandbox.stats()["total_calls"] == 0 and len(job.records()) == 10 * 100


def test_damage_found_mid_run_moves_the_store_aside_and_keeps_every_answer(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    job = Job(tmp_path, sandbox.base_url, images=[BIG])
    assert job.run().returncode == outcome.OK
    db = job.store / answer_store.DB_NAME
    index = pages(db, "answers_by_age")
    assert len(index) >= 2
    # The age index's last page: read only when a new answer is written (pruning at start reads
    # its first page, replays read the table), so the damage shows in the middle of the run.
    overwrite(db, index[-1][0])
    assert malformed(db) == "database disk image is malformed"
    job.write_seeds([BIG, *SMALL[:2]])
    sandbox.reset()
    second = job.run()
    assert second.returncode == outcome.OK, second.log[-3000:]
    assert "Answer store: resuming: 200 stored answers" in second.log  # the damage was not seen at start
    [aside] = job.store.glob(answer_store.DB_NAME + ".unreadable-*")
    warning = [line for line in second.log.splitlines() if "was not a readable database" in line]
    assert len(warning) == 1 and str(aside) in warning[0] and "started with the 200 answers" in warning[0]
    assert second.stats["tmapi/paid_calls"] == 10 == sandbox.stats()["total_calls"]  # the 2 new images only
    assert second.stats.get("tmapi/answers/store_failed", 0) == 0
    assert len(job.records()) == len(set(job.records())) == 4000 + 200
    sandbox.reset()
    third = job.run()
    assert third.returncode == outcome.OK and sandbox.stats()["total_calls"] == 0
    assert len(job.records()) == 4000 + 200

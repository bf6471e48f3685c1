"""Never pay twice by default: any interrupted or extended run finishes by running the same command again.

Every test drives real `scrapy crawl` subprocesses against a sandbox and reads the sandbox's own
per-page call counts. "Paid again" is a page (or conversion) the sandbox answered more than once
over the interrupted run and its re-run. The final `-O` file must equal an uninterrupted run's
records (as a set, `crawled_at` aside) with no duplicates. docs/running-jobs.md, docs/resume.md.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from scrapy import Request, Spider
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, REPO, read_jsonl, read_stats, run_scrapy, scrapy_env
from tests.redis_server import RedisServer
from tests.scrapy_server import ScrapyProcess, start_scrapy
from tmapi_spiders.api import contract
from tmapi_spiders.jobs import answer_store, outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

GOOD, BROKE = "tok-RESUME-good-41", "tok-RESUME-broke-42"
CONCURRENCY = 4
# 10 Alibaba-hosted images of 5 pages and 2 converted first (1 conversion + 3 pages): 58 calls.
ALIBABA = [f"https://cbu01.alicdn.com/img/resume-{i}.jpg?total=100" for i in range(10)]
CONVERTED = [f"https://shop.example.com/resume-c{i}/total-60.jpg" for i in range(2)]
IMAGES = ALIBABA + CONVERTED
CALLS = 10 * 5 + 2 * (1 + 3)
SETTINGS = {
    "CONCURRENT_REQUESTS": CONCURRENCY,
    "CONCURRENT_REQUESTS_PER_DOMAIN": CONCURRENCY,
    "AUTOTHROTTLE_ENABLED": "false",
    "TMAPI_BACKOFF_BASE": "0.05",
    "TMAPI_PROGRESS_INTERVAL": "0",
}


@dataclass
class Run:
    returncode: int
    log: str
    stats: dict[str, Any]  # the run's final stats (TMAPI_STATS_FILE)


class Job:
    """One job's command line (seeds, feed, store and settings), run as often as a test likes."""

    def __init__(self, tmp: Path, base_url: str, images: list[str] = IMAGES, **settings: Any) -> None:
        self.tmp, self.base_url = tmp, base_url
        self.seeds = tmp / "seeds.txt"
        self.write_seeds(images)
        self.out = tmp / "out" / "products.jsonl"
        self.store = tmp / "store"
        self.settings = {**SETTINGS, "TMAPI_CACHE_DIR": str(self.store), "TMAPI_OUTPUT_DIR": str(tmp / "output")}
        self.settings.update({k: str(v) for k, v in settings.items()})
        self.args: dict[str, str] = {}
        self.feed_option = "-O"  # -o: append
        self.runs = 0

    def write_seeds(self, images: list[str]) -> None:
        self.seeds.write_text("\n".join(images) + "\n", encoding="utf-8")

    def stats_file(self) -> Path:
        return self.tmp / f"run{self.runs}.stats.json"

    def scrapy_args(self) -> list[str]:
        cmd = ["crawl", "image_search", "-a", f"urls_file={self.seeds}"]
        cmd += [arg for key, value in self.args.items() for arg in ("-a", f"{key}={value}")]
        cmd += [self.feed_option, str(self.out)]
        settings = {**self.settings, "TMAPI_STATS_FILE": str(self.stats_file())}
        return cmd + [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "scrapy", *self.scrapy_args()]

    def start(self, token: str = GOOD, **popen: Any) -> tuple[ScrapyProcess | subprocess.Popen[str], Path]:
        """The command started, its stderr going to the run's log; a process of its own with
        `popen` (subprocess.Popen's options), else a fork of the warm scrapy server."""
        self.runs += 1
        log = self.tmp / f"run{self.runs}.log"
        env = scrapy_env(self.base_url, token)
        with open(log, "w", encoding="utf-8") as handle:
            if not popen:
                return start_scrapy(self.scrapy_args(), env, stdout=subprocess.DEVNULL, stderr=handle), log
            proc = subprocess.Popen(
                self.command(), cwd=REPO, env=env, text=True, stdout=subprocess.DEVNULL, stderr=handle, **popen
            )
        return proc, log

    def run(self, token: str = GOOD, **popen: Any) -> Run:
        """The command run to its end (its stderr is the log); a process of its own with `popen`
        (subprocess.Popen's options: preexec_fn...)."""
        if not popen:
            self.runs += 1
            done = run_scrapy(self.scrapy_args(), scrapy_env(self.base_url, token))
            return Run(done.returncode, done.stderr, read_stats(self.stats_file()))
        proc, log = self.start(token, **popen)
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        return Run(proc.returncode, log.read_text(encoding="utf-8"), read_stats(self.stats_file()))

    def records(self) -> list[str]:
        return [same(r) for r in read_jsonl(self.out)]

    def failures(self) -> list[dict[str, Any]]:
        return read_jsonl(self.out.with_name("products.failures.jsonl"))

    def stored(self) -> list[tuple[float, bytes]]:
        return answer_store.stored_answers(str(self.store))

    def sql(self, statement: str, *args: Any) -> None:
        """Change the store behind the crawl's back (age entries, tear them, make writes fail)."""
        with closing(sqlite3.connect(self.store / answer_store.DB_NAME, isolation_level=None)) as db:
            db.execute(statement, args)


def same(record: dict[str, Any]) -> str:
    """A record as compared across runs: everything but the time it was crawled at."""
    return json.dumps({k: v for k, v in record.items() if k != "crawled_at"}, sort_keys=True, ensure_ascii=False)


def paid_again(sandbox: SandboxThread) -> int:
    """Calls the sandbox answered for a page or conversion it had answered before."""
    stats = sandbox.stats()
    counts = [n for pages in stats["pages"].values() for n in pages.values()] + list(stats["conversions"].values())
    return sum(n - 1 for n in counts)


def calls_made(sandbox: SandboxThread) -> int:
    stats = sandbox.stats()
    return sum(n for pages in stats["pages"].values() for n in pages.values()) + sum(stats["conversions"].values())


def wait_for_calls(sandbox: SandboxThread, proc: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 60
    while sandbox.stats()["total_calls"] < count:
        assert proc.poll() is None, "the crawl ended before it was interrupted"
        assert time.monotonic() < deadline, "the crawl made no calls"
        time.sleep(0.02)


def assert_complete(job: Job, baseline: list[str]) -> None:
    """The -O file holds every record of the job exactly once, and no image failed."""
    records = job.records()
    assert len(records) == len(set(records)), "duplicate records in the feed"
    assert sorted(records) == baseline
    assert job.failures() == []


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    config = SandboxConfig(tokens=(GOOD,), broke_tokens=(BROKE,), latency=0.1)
    with SandboxThread(config) as sb:
        yield sb


@pytest.fixture(scope="module")
def baseline(sandbox: SandboxThread, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The records of one uninterrupted run of the whole list."""
    sandbox.reset()
    job = Job(tmp_path_factory.mktemp("baseline"), sandbox.base_url)
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert f"Answer store: nothing stored under {job.store} yet; every good answer is saved there" in result.log
    assert calls_made(sandbox) == CALLS and paid_again(sandbox) == 0
    records = job.records()
    assert len(records) == len(set(records)) == 10 * 100 + 2 * 60
    assert len(job.stored()) == CALLS
    return sorted(records)


@pytest.fixture
def fresh(sandbox: SandboxThread) -> SandboxThread:
    sandbox.reset()
    return sandbox


# -- interruptions by signal: Ctrl-C once or twice, SIGTERM, kill -9, power loss -------------------


def tear(job: Job) -> None:
    """What a power cut can leave of the last writes: an entry cut short, one whose data never
    reached the disk, and a write-ahead log ending in a half-written frame."""
    job.sql(
        "UPDATE answers SET data = substr(data, 1, length(data) / 2)"
        " WHERE id = (SELECT id FROM answers ORDER BY stored_at DESC LIMIT 1)"
    )
    job.sql(
        "UPDATE answers SET data = zeroblob(length(data))"
        " WHERE id = (SELECT id FROM answers ORDER BY stored_at DESC LIMIT 1 OFFSET 1)"
    )
    with sqlite3.connect(job.store / answer_store.DB_NAME) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(job.store / (answer_store.DB_NAME + "-wal"), "ab") as wal:
        wal.write(os.urandom(3000))


@pytest.mark.parametrize("kind", ["sigint", "sigterm", "sigint_twice", "kill", "power_loss"])
def test_the_same_command_again_finishes_an_interrupted_job(
    tmp_path: Path, fresh: SandboxThread, baseline: list[str], kind: str
) -> None:
    job = Job(tmp_path, fresh.base_url)
    proc, _ = job.start()
    wait_for_calls(fresh, proc, 16)
    if kind == "sigint":
        proc.send_signal(signal.SIGINT)
    elif kind == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif kind == "sigint_twice":
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    else:
        proc.kill()
    proc.wait(timeout=60)
    time.sleep(0.3)  # calls in flight at the sandbox are counted when they arrive; let them end
    first_calls, stored = calls_made(fresh), len(job.stored())
    assert 0 < first_calls < CALLS, "the interruption came too late to test anything"
    unsaved = first_calls - stored  # paid but never saved: the calls in flight when it died
    torn = 0
    if kind == "power_loss":
        tear(job)
        torn = 2

    again = job.run()

    assert again.returncode == outcome.OK, again.log[-3000:]
    assert "Traceback" not in again.log
    assert f"Answer store: resuming: {stored} stored answers" in again.log
    assert_complete(job, baseline)
    assert calls_made(fresh) == CALLS + paid_again(fresh)  # every page was paid for at least once
    assert again.stats.get("httpcache/hit", 0) == stored - torn
    print(f"{kind}: {first_calls} calls before, {stored} saved, {paid_again(fresh)} paid again")
    if kind in ("sigint", "sigterm"):
        assert proc.returncode == 0 and unsaved == 0  # a clean stop saves every call it paid for
        assert paid_again(fresh) == 0
    else:
        assert unsaved <= CONCURRENCY
        assert paid_again(fresh) == unsaved + torn
    if kind == "power_loss":
        assert again.stats.get("tmapi/answers/unreadable", 0) == 2
        assert again.log.count("is torn or corrupt") == 1  # logged once, counted in stats


# -- interruptions by the API or the operator: a spending cap, a 439 -------------------------------


def test_a_spending_cap_is_finished_by_the_same_command_without_paying_twice(
    tmp_path: Path, fresh: SandboxThread, baseline: list[str]
) -> None:
    """The same command, the same cap: each run replays what is stored (free, outside the cap)
    and pays for up to the cap more, until the job is done."""
    job = Job(tmp_path, fresh.base_url, TMAPI_MAX_CALLS=25)
    codes = []
    for _ in range(4):
        result = job.run()
        codes.append(result.returncode)
        if result.returncode == outcome.OK:
            break
    assert codes == [outcome.CAP_REACHED, outcome.CAP_REACHED, outcome.OK], result.log[-3000:]
    assert_complete(job, baseline)
    assert calls_made(fresh) == CALLS and paid_again(fresh) == 0


def test_a_439_is_finished_by_running_again_with_a_funded_token(
    tmp_path: Path, fresh: SandboxThread, baseline: list[str]
) -> None:
    job = Job(tmp_path, fresh.base_url)
    proc, _ = job.start()
    wait_for_calls(fresh, proc, 16)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    stored = len(job.stored())
    # The balance runs out: what is stored is replayed free, the first new call answers 439.
    broke = job.run(token=BROKE)
    assert broke.returncode == outcome.API_REFUSED, broke.log[-3000:]
    assert "TMAPI refused the crawl" in broke.log
    # (it stops at the first 439, so it may not get through every stored answer first)
    assert 0 < broke.stats.get("httpcache/hit", 0) <= stored
    assert len(job.stored()) == stored  # a refusal is never stored
    # Topped up: the same command finishes the job.
    again = job.run()
    assert again.returncode == outcome.OK, again.log[-3000:]
    assert_complete(job, baseline)
    assert paid_again(fresh) == 0 and calls_made(fresh) == CALLS


# -- extended runs: more seeds, another query, refresh, TTL ----------------------------------------


def test_added_seeds_pay_exactly_the_new_images_pages(
    tmp_path: Path, fresh: SandboxThread, baseline: list[str]
) -> None:
    old, new = ALIBABA[:6], ALIBABA[6:] + CONVERTED
    job = Job(tmp_path, fresh.base_url, images=old)
    assert job.run().returncode == outcome.OK
    fresh.reset()
    job.write_seeds(old + new)  # "I added photos to my list, run it again"
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert_complete(job, baseline)
    calls = fresh.calls()
    assert len(calls) == 4 * 5 + 2 * (1 + 3)  # exactly the new images' pages and conversions
    old_urls = set(old)
    assert not [c for c in calls if c["params"].get("img_url") in old_urls]
    assert paid_again(fresh) == 0
    assert result.stats.get("httpcache/hit", 0) == 6 * 5


def test_another_query_pays_only_for_its_own_pages(tmp_path: Path, fresh: SandboxThread) -> None:
    images = [ALIBABA[0], CONVERTED[0]]
    job = Job(tmp_path, fresh.base_url, images=images)
    assert job.run().returncode == outcome.OK
    fresh.reset()
    job.args = {"language": "ru", "sort": "sales", "free_shipping": "true"}
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    calls = fresh.calls()
    # Every search page again in the new query; the conversion is the same call and is reused.
    assert {c["endpoint"] for c in calls} == {contract.SEARCH_PATH}
    assert len(calls) == result.stats.get("tmapi/pages", 0) > 0
    assert {(c["params"]["language"], c["params"]["sort"], c["params"]["free_shipping"]) for c in calls} == {
        ("ru", "sales", "true")
    }
    assert result.stats.get("httpcache/hit", 0) == 1
    assert {r["language"] for r in read_jsonl(job.out)} == {"ru"}


def test_refresh_pays_again_and_replaces_the_stored_answers(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0], CONVERTED[0]])
    assert job.run().returncode == outcome.OK
    before = max(at for at, _ in job.stored())
    fresh.reset()
    job.args = {"refresh": "true"}
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert "Answer store: refresh: the 9 stored answers" in result.log
    assert calls_made(fresh) == 9 and result.stats.get("httpcache/hit", 0) == 0
    after = job.stored()
    assert len(after) == 9 and min(at for at, _ in after) > before  # every answer replaced by the new one
    fresh.reset()
    job.args = {}
    job.settings["TMAPI_REFRESH"] = "true"  # the setting does the same
    assert job.run().returncode == outcome.OK and calls_made(fresh) == 9
    fresh.reset()
    job.settings.pop("TMAPI_REFRESH")
    assert job.run().returncode == outcome.OK and calls_made(fresh) == 0


def test_bad_refresh_argument_is_one_line(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0]])
    job.args = {"refresh": "sometimes"}
    result = job.run()
    assert result.returncode == outcome.BAD_INPUT
    assert result.log.strip().splitlines() == [
        "error: bad argument refresh: 'sometimes' is not one of true/false/1/0/yes/no"
    ]
    assert fresh.stats()["total_calls"] == 0


def test_old_answers_are_pruned_and_the_size_is_bounded(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0], CONVERTED[0]])
    assert job.run().returncode == outcome.OK
    # three answers older than the TTL: paid for again, and pruned at start
    job.sql("UPDATE answers SET stored_at = stored_at - 2 * 86400 WHERE id IN (SELECT id FROM answers LIMIT 3)")
    with closing(sqlite3.connect(job.store / answer_store.DB_NAME)) as db:
        [(size,)] = db.execute("SELECT sum(length(data)) FROM answers WHERE stored_at > ?", (time.time() - 86400,))
    fresh.reset()
    job.settings["TMAPI_CACHE_MAX_MB"] = str((size - 1) / 1024 / 1024)  # one entry too many
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert "Answer store: pruned 3 entries older than TMAPI_CACHE_TTL (86400 s) and 1 over TMAPI_CACHE_MAX_MB" in (
        result.log
    )
    assert calls_made(fresh) == 4 and result.stats.get("httpcache/hit", 0) == 5


# -- JOBDIR ----------------------------------------------------------------------------------------


def test_jobdir_resumes_with_the_whole_feed(tmp_path: Path, fresh: SandboxThread, baseline: list[str]) -> None:
    """Scrapy's pause-and-resume convention: Ctrl-C, then the same command with the same JOBDIR."""
    job = Job(tmp_path, fresh.base_url, JOBDIR=tmp_path / "job")
    proc, _ = job.start()
    wait_for_calls(fresh, proc, 16)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    again = job.run()
    assert again.returncode == outcome.OK, again.log[-3000:]
    assert f"JOBDIR {tmp_path / 'job'}: the job resumes from the answer store" in again.log
    assert_complete(job, baseline)  # -O kept nothing of the first run, and lost nothing either
    assert paid_again(fresh) == 0 and calls_made(fresh) == CALLS


def test_jobdir_with_an_appended_feed_resumes_as_scrapy_does(
    tmp_path: Path, fresh: SandboxThread, baseline: list[str]
) -> None:
    """`-o` with JOBDIR, Scrapy's documented idiom: the second run appends only what is left."""
    job = Job(tmp_path, fresh.base_url, JOBDIR=tmp_path / "job")
    job.feed_option = "-o"
    proc, _ = job.start()
    wait_for_calls(fresh, proc, 16)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    first = len(job.records())
    again = job.run()
    assert again.returncode == outcome.OK, again.log[-3000:]
    assert "with an appended feed (-o): Scrapy's own resume" in again.log
    assert 0 < first < len(baseline)
    assert_complete(job, baseline)
    assert paid_again(fresh) == 0 and calls_made(fresh) == CALLS


def test_jobdir_without_the_store_refuses_to_overwrite(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, JOBDIR=tmp_path / "job", TMAPI_CACHE="false")
    result = job.run()
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.log.strip().splitlines()
    assert line.startswith("error: JOBDIR with TMAPI_CACHE=false and -O: resuming would overwrite")
    assert fresh.stats()["total_calls"] == 0


# -- disk errors -----------------------------------------------------------------------------------


def test_an_unwritable_store_is_one_line_before_any_call(tmp_path: Path, fresh: SandboxThread) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0]], TMAPI_CACHE_DIR=blocker / "store")
    result = job.run()
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.log.strip().splitlines()
    cause = f"Not a directory: {blocker} is a file, not a folder"
    assert line.startswith(f"error: TMAPI_CACHE_DIR {blocker / 'store'} cannot be written ({cause})")
    assert fresh.stats()["total_calls"] == 0


def _small_files_only() -> None:
    """No file of the crawl may grow past 1,000 bytes: writes fail as on a full disk (EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))


def test_a_failing_disk_at_start_is_one_line_before_any_call(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0]])
    result = job.run(preexec_fn=_small_files_only)
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.log.strip().splitlines()
    assert line.startswith(f"error: TMAPI_CACHE_DIR {job.store} cannot be written (File too large)")
    assert fresh.stats()["total_calls"] == 0


def test_a_store_write_failing_mid_run_loses_nothing_from_the_feed(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0], CONVERTED[0]])
    answer_store.connect(str(job.store)).close()
    # every write fails after the start-up checks, as on a disk that fills up during the run
    job.sql("CREATE TRIGGER full BEFORE INSERT ON answers BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END")
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert len(read_jsonl(job.out)) == 100 + 60 and job.failures() == []
    assert result.log.count("Answer store: could not save an answer under") == 1
    assert "(database or disk is full)" in result.log
    assert result.stats.get("tmapi/answers/store_failed", 0) == 9
    assert "9 answers NOT saved in the answer store" in result.log  # the run summary says it too
    summary = json.loads((job.out.parent / "products.summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["answers_not_saved"] == 9
    assert "Traceback" not in result.log


def test_a_store_that_is_not_a_database_is_moved_aside(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0]])
    job.store.mkdir()
    (job.store / answer_store.DB_NAME).write_bytes(b"this is not a database" * 100)
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert "was not a readable database: moved to" in result.log and "Traceback" not in result.log
    assert len(job.stored()) == 5 and len(list(job.store.glob(answer_store.DB_NAME + ".unreadable-*"))) == 1


# -- what is on disk -------------------------------------------------------------------------------


def test_the_store_holds_no_token(tmp_path: Path, fresh: SandboxThread) -> None:
    job = Job(tmp_path, fresh.base_url, images=[ALIBABA[0], CONVERTED[0]], LOG_LEVEL="DEBUG")
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    entries = [data for _at, data in job.stored()]  # decompressed: a token would not show otherwise
    assert len(entries) == 9
    entries += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert not [e for e in entries if GOOD.encode() in e]
    assert GOOD not in result.log


def test_an_answer_that_echoes_the_token_is_redacted_before_it_is_stored(tmp_path: Path) -> None:
    """Belt and braces: the token never reaches the store even if an answer carried it."""
    crawler = get_crawler(Spider, {"HTTPCACHE_DIR": str(tmp_path), "HTTPCACHE_EXPIRATION_SECS": 60})
    crawler.settings.frozen = False
    crawler.settings.set("TMAPI_API_TOKEN", GOOD)
    spider = Spider.from_crawler(crawler, name="redaction")
    store = answer_store.AnswerStore(crawler.settings)
    store.open_spider(spider)
    request = Request("http://127.0.0.1:1/1688/global/search/image?img_url=x", meta={"tmapi_endpoint": "search"})
    body = json.dumps({"code": 200, "data": {"echo": f"apikey={GOOD}", "quoted": quote(GOOD)}}).encode()
    store.store_response(spider, request, TextResponse(request.url, status=200, body=body))
    stored = store.retrieve_response(spider, request)
    store.close_spider(spider)
    assert stored is not None and GOOD.encode() not in stored.body and b"[redacted]" in stored.body
    assert not [data for _at, data in answer_store.stored_answers(str(tmp_path)) if GOOD.encode() in data]


def test_a_single_process_rerun_of_a_distributed_jobs_list_reuses_what_its_workers_stored(
    tmp_path: Path, fresh: SandboxThread, baseline: list[str]
) -> None:
    """Workers keep their state in Redis and go without the store by default; given
    TMAPI_CACHE=true, a later single-process run of the list on the same machine reuses it."""

    def worker(redis_url: str, name: str, **extra: str) -> subprocess.CompletedProcess[str]:
        settings = {**QUICK_WORKER_SETTINGS, "REDIS_URL": redis_url, "TMAPI_JOB": name, **extra}
        settings["TMAPI_OUTPUT_DIR"] = str(tmp_path / "output")
        cmd = ["crawl", "image_search", "-a", f"urls_file={job.seeds}"]
        cmd += ["-o", str(tmp_path / name / "products-%(worker)s.jsonl")]
        cmd += [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]
        return run_scrapy(cmd, scrapy_env(fresh.base_url, GOOD))

    job = Job(tmp_path, fresh.base_url)
    with RedisServer() as redis_server:
        plain = worker(redis_server.url, "dist-default", TMAPI_CACHE_DIR=str(tmp_path / "unused"))
        assert plain.returncode == 0, plain.stderr[-3000:]
        assert not (tmp_path / "unused").exists()  # a worker's default: no store, as before
        fresh.reset()
        stored = worker(redis_server.url, "dist-store", TMAPI_CACHE="true", TMAPI_CACHE_DIR=str(job.store))
        assert stored.returncode == 0, stored.stderr[-3000:]
    assert calls_made(fresh) == CALLS and len(job.stored()) == CALLS
    result = job.run()
    assert result.returncode == outcome.OK, result.log[-3000:]
    assert_complete(job, baseline)
    assert paid_again(fresh) == 0 and result.stats.get("httpcache/hit", 0) == CALLS

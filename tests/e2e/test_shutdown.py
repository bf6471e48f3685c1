"""Ctrl-C: one SIGINT finishes in-flight calls and flushes the feeds; a second stops at once.

What is guaranteed (docs/reliability.md): after one SIGINT every page the API answered
was parsed and every record parsed is in the feed, as whole JSON lines. After a second
SIGINT the process ends promptly; records still buffered may be lost (single process).
A distributed worker leaves the job's unfinished work queued in Redis either way: after
one SIGINT it gives back what it had taken, after two its leases expire and come back,
and a worker started later finishes the job.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fault_soak import leases_of
from tests.crawl_helpers import read_stats, scrapy
from tests.redis_server import RedisServer
from tests.seeds import push_json, seed_json
from tmapi_spiders.api.contract import SearchQuery
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.distributed.merge import merge
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

IMAGES = [f"https://cbu01.alicdn.com/img/sigint-{i}.jpg?total=200" for i in range(40)]


def start(tmp_path: Path, base_url: str) -> tuple[subprocess.Popen[str], Path]:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(IMAGES) + "\n")
    out = tmp_path / "products.jsonl"
    cmd = ["crawl", "image_search", "-a", f"urls_file={seeds}", "-O", str(out)]
    cmd += ["-s", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}", "-s", "AUTOTHROTTLE_ENABLED=false"]
    cmd += ["-s", f"TMAPI_STATS_FILE={tmp_path / 'stats.json'}"]
    proc = scrapy(cmd, base_url, stderr=subprocess.PIPE)
    return proc, out


def wait_for_calls(sandbox: SandboxThread, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.stats()["total_calls"] < count:
        assert time.monotonic() < deadline, "the crawl made no calls"
        time.sleep(0.1)


def test_one_sigint_finishes_in_flight_calls_and_flushes_the_feed(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(latency=0.3)) as sandbox:
        proc, out = start(tmp_path, sandbox.base_url)
        wait_for_calls(sandbox, 20)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        time.sleep(0.4)  # a call answered just as the crawl ended is recorded after its latency
        served = sandbox.stats()
    assert proc.returncode == 0, stderr[-2000:]
    assert "Received SIGINT, shutting down gracefully" in stderr
    stats = read_stats(tmp_path / "stats.json")
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # whole JSON lines only
    assert len(records) == stats["item_scraped_count"] > 0
    # Every page the API answered was parsed (in-flight calls were finished, not dropped)...
    answered = sum(n for pages in served["pages_ok"].values() for n in pages.values())
    assert stats["tmapi/pages"] == answered
    # ...and every parsed page is whole in the feed: 20 records per page of these images.
    per_page: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record["query_image_url"], record["page"])
        per_page[key] = per_page.get(key, 0) + 1
    assert len(per_page) == stats["tmapi/pages"]
    assert set(per_page.values()) == {20}
    # It stopped early: far fewer pages than the list holds.
    assert stats["tmapi/pages"] < len(IMAGES) * 10


def test_second_sigint_stops_at_once(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(latency=2.0)) as sandbox:
        proc, _ = start(tmp_path, sandbox.base_url)
        wait_for_calls(sandbox, 1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError("a second SIGINT did not stop the crawl") from None
    assert "forcing unclean shutdown" in stderr
    # The stats are still written, with the finish reason the summary gives such a run.
    assert read_stats(tmp_path / "stats.json")["finish_reason"] == "shutdown_forced"


# -- distributed: one worker of a Redis job, stopped by SIGINT, then another one finishes the job ---------------

# 12 images of 5 pages (100 items) each: 60 pages, at 0.3 s a call and 4 at a time about 5 s of work.
DIST_IMAGES = [f"https://cbu01.alicdn.com/img/sigint-d{i}.jpg?total=100" for i in range(12)]
DIST_PAGES = 5
DIST_CONCURRENCY = 4
DIST_SETTINGS = {
    "CONCURRENT_REQUESTS": DIST_CONCURRENCY,
    "AUTOTHROTTLE_ENABLED": "false",
    "TMAPI_BACKOFF_BASE": "0.05",
    "TMAPI_REDIS_LEASE": "2",
    "TMAPI_REDIS_ACK_INTERVAL": "0.05",
    "TMAPI_REDIS_ACK_MAX_DELAY": "0",  # ack at every look: the job's counters follow the crawl closely
    "TMAPI_REDIS_POLL_INTERVAL": "0.2",
    "MAX_IDLE_TIME_BEFORE_CLOSE": "1",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(latency=0.3)) as sandbox:
        yield sandbox


class DistWorker:
    """One `scrapy crawl` worker of `job`, its feed under `out/`, its log beside it."""

    def __init__(self, tmp: Path, redis_url: str, base_url: str, job: str, name: str) -> None:
        self.name, self.out = name, tmp / "out"
        self.log = tmp / f"{name}.log"
        settings = {**DIST_SETTINGS, "REDIS_URL": redis_url, "TMAPI_JOB": job, "TMAPI_WORKER_ID": name}
        settings["TMAPI_OUTPUT_DIR"] = str(tmp / "output")
        settings["TMAPI_STATS_FILE"] = str(tmp / f"{name}.stats.json")
        cmd = ["crawl", "image_search", "-o", str(self.out / "products-%(worker)s.jsonl")]
        cmd += [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]
        with open(self.log, "w", encoding="utf-8") as log:
            self.proc = scrapy(cmd, base_url, stdout=subprocess.DEVNULL, stderr=log)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker {self.name} did not stop within {timeout} s") from None

    @property
    def feed(self) -> Path:
        return self.out / f"products-{self.name}.jsonl"

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stats(self) -> dict[str, Any]:
        """The worker's final stats (TMAPI_STATS_FILE)."""
        return read_stats(self.log.with_name(f"{self.name}.stats.json"))


def dist_job(server: RedisServer, name: str) -> Job:
    job = Job(server.client(), JobKeys.for_job(name))
    pushed, _ = push_json(job, [seed_json(url, SearchQuery(), 0) for url in DIST_IMAGES])
    assert pushed == len(DIST_IMAGES)
    return job


def wait_mid_crawl(job: Job, worker: DistWorker, timeout: float = 60) -> None:
    """Until the worker has done a few pages and holds leases on requests (calls in flight)."""
    deadline = time.monotonic() + timeout
    while not (job.status(2).counters.get("pages", 0) >= 8 and leases_of(job, worker.name)["request"] >= 2):
        assert worker.proc.poll() is None, worker.text()[-3000:]
        assert time.monotonic() < deadline, "the worker never got mid-crawl"
        time.sleep(0.05)


def paid_twice(sandbox: SandboxThread) -> int:
    """Calls the sandbox answered for a page (or conversion) it had answered before."""
    stats = sandbox.stats()
    counts = [n for pages in stats["pages"].values() for n in pages.values()]
    counts += list(stats["conversions"].values())
    return sum(n - 1 for n in counts)


def assert_job_complete(feeds: list[Path], sandbox: SandboxThread) -> list[dict[str, Any]]:
    """The merged feeds hold every page of every image whole, each item once, and the API was
    asked for every page of every image and nothing else."""
    merged = [json.loads(line) for line in merge([str(p) for p in feeds if p.exists()])]
    per_page = Counter((r["query_image_url"], r["page"]) for r in merged)
    assert set(per_page) == {(img, page) for img in DIST_IMAGES for page in range(1, DIST_PAGES + 1)}
    assert set(per_page.values()) == {20}
    assert (
        len({(r["query_image_url"], r["item_id"]) for r in merged}) == len(merged) == 20 * DIST_PAGES * len(DIST_IMAGES)
    )
    pages = sandbox.stats()["pages"]
    assert sorted(pages) == sorted(DIST_IMAGES)
    assert all(set(by_page) == {str(p) for p in range(1, DIST_PAGES + 1)} for by_page in pages.values())
    return merged


def test_distributed_one_sigint_leaves_the_unfinished_work_queued_and_pays_nothing_twice(
    tmp_path: Path, redis_server: RedisServer, slow_sandbox: SandboxThread
) -> None:
    job = dist_job(redis_server, "sigint-once")
    slow_sandbox.reset()
    first = DistWorker(tmp_path, redis_server.url, slow_sandbox.base_url, "sigint-once", "first")
    wait_mid_crawl(job, first)
    first.proc.send_signal(signal.SIGINT)
    assert first.wait() == 0, first.text()[-3000:]
    time.sleep(0.4)  # a call answered just as the worker ended is recorded after its latency
    log = first.text()
    assert "Received SIGINT, shutting down gracefully" in log and "Spider closed (shutdown)" in log
    # In-flight calls were finished and parsed, and every record is a whole JSON line in the feed.
    stats = first.stats()
    served = slow_sandbox.stats()
    assert stats["tmapi/pages"] == sum(n for pages in served["pages_ok"].values() for n in pages.values())
    raw = first.feed.read_text(encoding="utf-8")
    assert raw.endswith("\n")
    records = [json.loads(line) for line in raw.splitlines()]
    assert len(records) == stats["item_scraped_count"] == 20 * stats["tmapi/pages"]
    # The job's unfinished work is queued in Redis, none of it stuck in a lease.
    status = job.status(2)
    assert status.in_flight == 0 and not job.server.hlen(job.keys.leases)
    assert status.queued + status.seeds_left > 0
    assert stats["tmapi/pages"] < len(DIST_IMAGES) * DIST_PAGES

    second = DistWorker(tmp_path, redis_server.url, slow_sandbox.base_url, "sigint-once", "second")
    assert second.wait() == 0, second.text()[-3000:]
    assert "Spider closed (finished)" in second.text()
    assert_job_complete([first.feed, second.feed], slow_sandbox)
    # The two feeds together hold each record once (nothing redone), and no call was paid twice.
    both = [line for feed in (first.feed, second.feed) for line in feed.read_text(encoding="utf-8").splitlines()]
    assert len(both) == len(set(both)) == 20 * DIST_PAGES * len(DIST_IMAGES)
    assert paid_twice(slow_sandbox) == 0


def test_distributed_second_sigint_stops_at_once_and_loses_no_queued_work(
    tmp_path: Path, redis_server: RedisServer, slow_sandbox: SandboxThread
) -> None:
    job = dist_job(redis_server, "sigint-twice")
    slow_sandbox.reset()
    first = DistWorker(tmp_path, redis_server.url, slow_sandbox.base_url, "sigint-twice", "first")
    wait_mid_crawl(job, first)
    first.proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    first.proc.send_signal(signal.SIGINT)
    first.wait(timeout=15)
    assert "forcing unclean shutdown" in first.text()
    # It gave nothing back: its leases stay until they expire. They are all it can have left
    # half-done, so they bound what may be paid twice.
    left = leases_of(job, "first")
    status = job.status(2)
    assert status.queued + status.seeds_left + status.in_flight > 0
    assert status.in_flight == left["request"] + left["seed"]

    second = DistWorker(tmp_path, redis_server.url, slow_sandbox.base_url, "sigint-twice", "second")
    assert second.wait() == 0, second.text()[-3000:]
    assert "Spider closed (finished)" in second.text()
    if left["request"] or left["seed"]:
        assert "expired leases back to the job" in second.text()
    assert_job_complete([first.feed, second.feed], slow_sandbox)
    # At most the requests it held leased are paid again: those in its downloader and scraper,
    # plus any finished in the last ack interval (0.05 s).
    assert paid_twice(slow_sandbox) <= left["request"], (paid_twice(slow_sandbox), left)
    assert not job.server.exists(job.keys.requests, job.keys.inflight, job.keys.leases)

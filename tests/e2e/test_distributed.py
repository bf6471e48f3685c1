"""Distributed crawls: 3 real `scrapy crawl` workers, a real redis-server, the sandbox over HTTP.

Each test has its own job name (TMAPI_JOB), so the tests share one Redis and one
sandbox and still never see each other's keys; the sandbox's counters are reset
before each crawl, so its stats count exactly the calls of that test's workers.
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

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, read_jsonl, scrapy
from tests.redis_server import RedisServer, contents, free_port
from tests.seeds import push_json, seed_json
from tmapi_spiders.api.contract import SearchQuery
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread
from tmapi_spiders.sandbox.catalogue import converted_path

SECRET = "tok-SECRET-123"
TOKEN = "sandbox"
IMAGES = [
    "https://cbu01.alicdn.com/img/ibank/O1CN01Lnbnos2LkORtHhOVp_!!3367999730-0-cib.jpg",
    "https://cbu01.alicdn.com/img/ibank/O1CN01MJvUUV26UATGC9C8o_!!2407317664-0-cib.jpg",
    "https://img.alicdn.com/imgextra/i4/2207/O1CN01yNpkgG1BxXm6UG4jT.jpg",
    "https://sc04.alicdn.com/kf/H3c1f3f1a2b1c4d5e.jpg",
    "https://images.example-shop.com/products/phone-case-red.jpg",  # converted first
    "https://cdn.example.org/catalog/water-bottle-750ml.png",  # converted first
]
WORKERS = 3
WORKER_SETTINGS = {**QUICK_WORKER_SETTINGS, "LOG_LEVEL": "INFO"}

Key = tuple[str, Any, int, int]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    config = SandboxConfig(tokens=(TOKEN, SECRET), latency=0.1, jitter=0.1, seed=7)
    with SandboxThread(config) as running:
        yield running


@pytest.fixture(scope="module")
def seeds_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "images.txt"
    path.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def single(
    tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxThread, seeds_file: Path
) -> tuple[set[Key], Counter[tuple[str, str]]]:
    """What a single local process (no Redis) finds for the same list, and the calls it pays."""
    sandbox.reset()
    result = crawl(tmp_path_factory.mktemp("single"), sandbox.base_url, args={"urls_file": str(seeds_file)})
    assert result.returncode == 0, result.stderr[-2000:]
    keys = {key_of(p) for p in result.products}
    assert len(keys) == len(result.products) > 100
    return keys, paid_pages(sandbox)


@pytest.fixture(scope="module")
def reference(single: tuple[set[Key], Counter[tuple[str, str]]]) -> set[Key]:
    return single[0]


@pytest.fixture(scope="module")
def reference_calls(single: tuple[set[Key], Counter[tuple[str, str]]]) -> Counter[tuple[str, str]]:
    return single[1]


def key_of(product: dict[str, Any]) -> Key:
    return (product["query_image_url"], product["item_id"], product["page"], product["rank"])


class Cluster:
    """Workers of one job, each writing its own feed under `out/`."""

    def __init__(self, tmp: Path, redis_url: str, base_url: str, job: str, token: str = TOKEN) -> None:
        self.tmp, self.redis_url, self.base_url, self.job, self.token = tmp, redis_url, base_url, job, token
        self.out = tmp / "out"
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []

    def settings(self, extra: dict[str, str] | None = None) -> list[str]:
        merged = {**WORKER_SETTINGS, "REDIS_URL": self.redis_url, "TMAPI_JOB": self.job, **(extra or {})}
        merged["TMAPI_OUTPUT_DIR"] = str(self.tmp / "output")
        return [arg for key, value in merged.items() for arg in ("-s", f"{key}={value}")]

    def seed(self, seeds_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
        proc = scrapy(["seed", str(seeds_file), *args, *self.settings()], self.base_url, self.token)
        stdout, _ = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "")

    def start(self, count: int = WORKERS, extra: dict[str, str] | None = None) -> None:
        for _ in range(count):
            log = self.tmp / f"worker-{len(self.logs)}.log"
            self.logs.append(log)
            feed = str(self.out / "products-%(worker)s.jsonl")
            args = ["crawl", "image_search", "-o", feed, *self.settings(extra)]
            with open(log, "w", encoding="utf-8") as handle:
                self.procs.append(scrapy(args, self.base_url, self.token, stderr=handle))

    def wait(self, timeout: float = 90) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = []
        for proc in self.procs:
            try:
                proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise AssertionError(f"a worker did not stop within {timeout} s") from None
            codes.append(proc.returncode)
        self.procs = []
        return codes

    def products(self) -> list[dict[str, Any]]:
        return [
            p
            for path in sorted(self.out.glob("products-*.jsonl"))
            if ".failures." not in path.name
            for p in read_jsonl(path)
        ]

    def log_text(self) -> str:
        return "\n".join(log.read_text(encoding="utf-8") for log in self.logs)

    def job_api(self, server: RedisServer) -> Job:
        return Job(server.client(), JobKeys.for_job(self.job))


def push_seeds(job: Job) -> None:
    """What `scrapy seed` pushes (tested end to end in the first test), without its start-up time."""
    assert push_json(job, [seed_json(url, SearchQuery(), 0) for url in IMAGES]) == (len(IMAGES), 0)


def wait_until(predicate: Any, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def paid_pages(sandbox: SandboxThread) -> Counter[tuple[str, str]]:
    stats = sandbox.stats()
    counts: Counter[tuple[str, str]] = Counter()
    for img, pages in stats["pages"].items():
        for page, n in pages.items():
            counts[(img, page)] += n
    for url, n in stats["conversions"].items():
        counts[("convert", url)] += n
    return counts


def test_three_workers_pay_each_page_once_and_find_what_one_process_finds(
    tmp_path: Path,
    redis_server: RedisServer,
    sandbox: SandboxThread,
    seeds_file: Path,
    reference: set[Key],
    reference_calls: Counter[tuple[str, str]],
) -> None:
    cluster = Cluster(tmp_path, redis_server.url, sandbox.base_url, "exactly-once")
    seeded = cluster.seed(seeds_file)
    assert seeded.returncode == 0 and f"{len(IMAGES)} seeds pushed" in seeded.stdout
    again = cluster.seed(seeds_file)  # seeding twice searches nothing twice
    assert again.returncode == 0 and f"0 seeds pushed, {len(IMAGES)} already in the job" in again.stdout
    sandbox.reset()

    cluster.start()
    codes = cluster.wait()

    assert codes == [0] * WORKERS, cluster.log_text()[-3000:]
    products = cluster.products()
    assert {key_of(p) for p in products} == reference
    assert len(products) == len(reference)  # and no record twice across the workers' feeds
    paid = paid_pages(sandbox)
    assert paid and set(paid.values()) == {1}, [k for k, n in paid.items() if n > 1]
    assert paid == reference_calls  # the very calls one process pays, each once
    log = cluster.log_text()
    # each worker stopped by itself once the job was drained: the idle shutdown
    assert log.count("is drained and this worker was idle") == WORKERS
    assert log.count("Spider closed (finished)") == WORKERS
    job = cluster.job_api(redis_server)
    left = set(job.server.keys(job.keys.pattern))
    assert job.keys.stats in left and not left & set(job.keys.work())  # the finished job's work keys are gone
    counters = job.status(2).counters
    assert counters["items"] == len(reference)
    assert counters["paid_calls"] == sum(paid.values())


def test_kill_9_of_a_worker_loses_nothing(
    tmp_path: Path,
    redis_server: RedisServer,
    sandbox: SandboxThread,
    seeds_file: Path,
    reference: set[Key],
    reference_calls: Counter[tuple[str, str]],
) -> None:
    cluster = Cluster(tmp_path, redis_server.url, sandbox.base_url, "kill-9")
    job = cluster.job_api(redis_server)
    push_seeds(job)
    sandbox.reset()
    cluster.start()
    half = len(reference_calls) // 2
    victims: list[int] = []

    def a_worker_holds_leases_mid_crawl() -> bool:
        """Any worker will do: under load the first one started is not always the first to work."""
        if job.status(2).counters.get("pages", 0) >= half:
            return False
        leases = job.server.hvals(job.keys.leases)
        victims[:] = [i for i, proc in enumerate(cluster.procs) if any(victim_holds(v, proc.pid) for v in leases)]
        return bool(victims)

    wait_until(a_worker_holds_leases_mid_crawl, what="a worker to hold leases mid-crawl")
    index = victims[0]
    victim = cluster.procs[index]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    held = sum(victim_holds(v, victim.pid) for v in job.server.hvals(job.keys.leases))
    codes = cluster.wait()

    assert codes[index] == -signal.SIGKILL, cluster.log_text()[-3000:]
    assert [c for i, c in enumerate(codes) if i != index] == [0, 0], cluster.log_text()[-3000:]
    assert {key_of(p) for p in cluster.products()} == reference  # the union is complete
    assert "expired leases back to the job" in cluster.log_text()
    paid = paid_pages(sandbox)
    assert min(paid.values()) == 1
    # only what the victim held when it died can have been paid twice
    assert 0 < held and sum(n - 1 for n in paid.values()) <= held


def victim_holds(lease_json: str, pid: int) -> bool:
    return f"-{pid}-" in json.loads(lease_json)["w"]


def test_stop_all_workers_and_resume_pays_nothing_twice_and_keeps_no_token_in_redis(
    tmp_path: Path,
    redis_server: RedisServer,
    sandbox: SandboxThread,
    seeds_file: Path,
    reference: set[Key],
    reference_calls: Counter[tuple[str, str]],
) -> None:
    cluster = Cluster(tmp_path, redis_server.url, sandbox.base_url, "stop-resume", token=SECRET)
    job = cluster.job_api(redis_server)
    push_seeds(job)
    sandbox.reset()
    # Paced, so that the job is still far from done when the last worker has started, however
    # slowly the machine starts them.
    cluster.start(extra={"DOWNLOAD_DELAY": "0.3"})
    dumps: list[str] = []

    def mid_crawl() -> bool:
        dumps.append(contents(job.server, job.keys.pattern).decode())
        status = job.status(2)
        return len(status.live_workers) == WORKERS and status.counters.get("pages", 0) >= 8

    wait_until(mid_crawl, what="3 live workers and 8 pages done")
    # The youngest worker past its start-up: a SIGINT between "Spider opened" and the engine's
    # start is, in Scrapy, a stop without closing the spider (the forced stop's exit 130).
    time.sleep(1.0)
    for proc in cluster.procs:
        proc.send_signal(signal.SIGINT)
    codes = cluster.wait()
    assert codes == [0] * WORKERS, cluster.log_text()[-3000:]
    assert cluster.log_text().count("Spider closed (shutdown)") == WORKERS
    status = job.status(2)
    assert not status.drained and status.in_flight == 0  # work left in Redis, nothing stuck in a lease
    dumps.append(contents(job.server, job.keys.pattern).decode())
    assert status.queued + status.seeds_left > 0

    cluster.start()  # the same job, new processes
    codes = cluster.wait()
    assert codes == [0] * WORKERS, cluster.log_text()[-3000:]
    assert {key_of(p) for p in cluster.products()} == reference
    assert paid_pages(sandbox) == reference_calls  # across both runs, each call paid once
    # the token went out in every paid call, yet never into Redis, logs or feeds
    assert any(job.keys.requests in d and "global/search/image" in d for d in dumps)  # requests were queued
    assert all(SECRET not in d for d in dumps)
    assert SECRET not in cluster.log_text()
    assert all(SECRET not in p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())


def test_redis_down_at_start_is_one_line_exit_4_and_no_paid_call(tmp_path: Path, sandbox: SandboxThread) -> None:
    sandbox.reset()
    url = f"redis://:hunter2-pw@127.0.0.1:{free_port()}/0"
    result = crawl(tmp_path, sandbox.base_url, settings={"REDIS_URL": url})
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: cannot reach Redis at redis://:***@127.0.0.1:{url.split(':')[-1]}"
    )
    assert "hunter2-pw" not in result.stderr + result.stdout
    assert sandbox.stats()["total_calls"] == 0


def test_a_worker_of_an_empty_job_stops_after_the_idle_time(
    tmp_path: Path, redis_server: RedisServer, sandbox: SandboxThread
) -> None:
    sandbox.reset()
    cluster = Cluster(tmp_path, redis_server.url, sandbox.base_url, "empty")
    cluster.start(1, extra={"MAX_IDLE_TIME_BEFORE_CLOSE": "0.5"})
    assert cluster.wait(60) == [0]
    log = cluster.log_text()
    assert "is drained and this worker was idle 0.5 s" in log and "Spider closed (finished)" in log
    assert sandbox.stats()["total_calls"] == 0


def test_redis_lost_mid_crawl_stops_the_worker_with_exit_4(
    tmp_path: Path, sandbox: SandboxThread, seeds_file: Path
) -> None:
    with RedisServer() as private:
        cluster = Cluster(tmp_path, private.url, sandbox.base_url, "lost")
        job = cluster.job_api(private)
        push_seeds(job)
        cluster.start(1, extra={"TMAPI_REDIS_RETRY_TIMES": "2", "TMAPI_REDIS_RETRY_DELAY": "0.2"})
        wait_until(lambda: job.status(2).counters.get("pages", 0) >= 3, what="3 pages done")
        private.stop()
        codes = cluster.wait(60)
    log = cluster.log_text()
    assert codes == [4], log[-3000:]
    assert "Lost Redis" in log and "Spider closed (redis_unavailable)" in log
    assert "Traceback" not in log


def test_a_request_the_job_refuses_releases_its_lease_and_becomes_a_failure_record(
    tmp_path: Path, redis_server: RedisServer, sandbox: SandboxThread
) -> None:
    """A seed carrying the token (pushed by hand, or by a `scrapy seed` from before it refused
    such lines) becomes a request the scheduler will not queue: the seed's lease used to be
    renewed forever, so the worker never stopped and the job never drained."""
    cluster = Cluster(tmp_path, redis_server.url, sandbox.base_url, "refused", token=SECRET)
    job = cluster.job_api(redis_server)
    leaking = f"https://cbu01.alicdn.com/img/ibank/leak.jpg?k={SECRET}"
    assert push_json(job, [seed_json(leaking, SearchQuery(), 0), seed_json(IMAGES[0], SearchQuery(), 1)]) == (2, 0)
    sandbox.reset()
    started = time.monotonic()
    cluster.start(1)
    codes = cluster.wait(45)
    log = cluster.log_text()

    assert codes == [0], log[-3000:]  # a failed image, like any other: exit 0, a failure record
    assert time.monotonic() - started < 40
    assert "Spider closed (finished)" in log and "is drained and this worker was idle" in log
    failures = [f for path in cluster.out.glob("*.failures.jsonl") for f in read_jsonl(path)]
    assert [f["query_image_url"] for f in failures] == [leaking.replace(SECRET, "[redacted]")]
    assert failures[0]["stage"] == "search" and "carries the API token" in failures[0]["message"]
    assert {p["query_image_url"] for p in cluster.products()} == {IMAGES[0]}  # the other seed was searched
    status = job.status(2)
    assert status.drained and status.counters["failures"] == 1 and status.counters["images_done"] == 1
    assert sandbox.stats()["total_calls"] == 1  # the refused image cost nothing
    written = (
        log
        + contents(job.server, job.keys.pattern).decode()
        + "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    )
    assert SECRET not in written


def test_a_job_flushed_from_redis_mid_crawl_stops_its_workers_with_exit_6(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    """FLUSHALL (or a restart without persistence) left an empty queue, which looked like a
    finished job: the workers logged "Job ... is finished" and exited 0 (58 % of the items
    lost, measured). Now a worker that saw the job's marker and finds it gone stops loudly.
    (A worker that first reaches Redis after the flush finds no job at all: there is nothing it
    could know was lost, so the test flushes once both have joined.)"""
    with RedisServer() as private:
        cluster = Cluster(tmp_path, private.url, sandbox.base_url, "flushed")
        job = cluster.job_api(private)
        push_seeds(job)
        cluster.start(2)

        def joined_and_working() -> bool:
            status = job.status(60)  # both workers have seen the job's marker (their first heartbeat)
            return len(status.live_workers) == 2 and status.counters.get("pages", 0) >= 3

        wait_until(joined_and_working, what="both workers joined, 3 pages done")
        private.client().flushall()
        codes = cluster.wait(60)
        left = private.client().keys("{flushed}:*")
    log = cluster.log_text()
    assert codes == [6, 6], log[-3000:]
    assert left == [], left  # nothing of the lost job planted back
    assert log.count("lost its state in Redis") >= 2 and log.count("Spider closed (redis_job_lost)") == 2
    assert "is finished" not in log and "Traceback" not in log


def test_a_redis_restarted_empty_mid_crawl_stops_the_worker_with_exit_6(tmp_path: Path, sandbox: SandboxThread) -> None:
    """Redis comes back on the same address, but empty: the worker must not push what it
    kept while Redis was away into a job that no longer exists, nor call it finished."""
    with RedisServer() as private:
        cluster = Cluster(tmp_path, private.url, sandbox.base_url, "restarted")
        job = cluster.job_api(private)
        push_seeds(job)
        cluster.start(1, extra={"TMAPI_REDIS_RETRY_TIMES": "8", "TMAPI_REDIS_RETRY_DELAY": "0.3"})
        wait_until(lambda: job.status(2).counters.get("pages", 0) >= 3, what="3 pages done")
        port = private.port
        private.stop()
        time.sleep(0.5)
        private.start(port)
        codes = cluster.wait(60)
        left = private.client().keys("{restarted}:*")
    log = cluster.log_text()
    assert codes == [6], log[-3000:]
    assert "lost its state in Redis" in log and "Spider closed (redis_job_lost)" in log
    assert "Redis is back" not in log and "Traceback" not in log
    assert left == []  # nothing of the lost job planted in the new Redis


def test_a_wrong_redis_password_says_authentication_failed(
    tmp_path: Path, sandbox: SandboxThread, seeds_file: Path
) -> None:
    with RedisServer(password="right-pw-771") as private:
        sandbox.reset()
        wrong = private.url.replace("right-pw-771", "wrong-pw-338")
        result = crawl(tmp_path, sandbox.base_url, settings={"REDIS_URL": wrong})
        none = crawl(tmp_path, sandbox.base_url, settings={"REDIS_URL": private.url.replace(":right-pw-771@", "")})
        seeding = scrapy(
            ["seed", str(seeds_file), "-s", f"REDIS_URL={wrong}"], sandbox.base_url, stderr=subprocess.PIPE
        )
        _, seed_err = seeding.communicate(timeout=60)
    assert seeding.returncode == 4 and seed_err.startswith("error: authentication failed at Redis redis://:***@")
    for run in (result, none):
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 4 and len(lines) == 1, run.stderr
        assert lines[0].startswith("error: authentication failed at Redis redis://"), lines[0]
    assert "wrong-pw-338" not in result.stderr and "redis://:***@127.0.0.1" in result.stderr
    assert sandbox.stats()["total_calls"] == 0


def test_a_conversion_that_echoes_the_token_becomes_a_failure_record_and_the_job_drains(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The API answers a conversion with a path that holds the token (a server echoing what
    it was sent). Before, the search after it could not be queued and was dropped with a log
    line only; now the token never gets that far and the image is a failure record."""
    image = "https://cdn.example.org/catalog/echoed-token.png"
    echoed = converted_path(image).rsplit("/", 1)[1].split(".")[0].split("_")[0]  # the path's 24 hex digits
    with SandboxThread(SandboxConfig(tokens=(echoed,))) as echoing:
        cluster = Cluster(tmp_path, redis_server.url, echoing.base_url, "refused-later", token=echoed)
        job = cluster.job_api(redis_server)
        push_json(job, [seed_json(image, SearchQuery(), 0)])
        cluster.start(1)
        codes = cluster.wait(45)
        calls = echoing.stats()
    log = cluster.log_text()
    assert codes == [0], log[-3000:]
    failures = [f for path in cluster.out.glob("*.failures.jsonl") for f in read_jsonl(path)]
    assert len(failures) == 1 and failures[0]["query_image_url"] == image
    # The echoed token is taken out of the answer on arrival (middlewares.py), and a path that
    # held it is no path to search: the image fails at its conversion, nothing is queued.
    assert failures[0]["stage"] == "convert" and "holding the API token" in failures[0]["message"]
    assert calls["total_calls"] == 1 and sum(calls["conversions"].values()) == 1  # the conversion only
    status = job.status(2)
    assert status.drained and status.counters["failures"] == 1
    assert echoed not in log + contents(job.server, job.keys.pattern).decode()

"""TMAPI_MAX_CALLS: the cap is exact by the sandbox's own count, and stops the job cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, read_jsonl, scrapy
from tests.redis_server import RedisServer
from tmapi_spiders import registry
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.jobs import outcome
from tmapi_spiders.jobs.backends import LocalCounter
from tmapi_spiders.jobs.spending import FINISH_REASON
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

# 4 images of 3 pages each (max_pages=3) and one that needs a conversion first: 16 calls in all
URLS = [f"https://cbu01.alicdn.com/img/ibank/cap-{n}/total-200.jpg" for n in range(4)]
URLS.append("https://shop.example.com/photos/cap/total-60.jpg")
FULL_CALLS = 4 * 3 + 1 + 3


def run(tmp_path: Path, sandbox: SandboxThread, cap: int | str, **settings: str):  # type: ignore[no-untyped-def]
    return crawl(
        tmp_path,
        sandbox.base_url,
        {"urls": ",".join(URLS), "max_pages": "3"},
        {"TMAPI_MAX_CALLS": str(cap), **settings},
    )


@pytest.mark.parametrize("cap", [1, FULL_CALLS - 1])
def test_cap_is_exact_and_stops_cleanly(tmp_path: Path, cap: int) -> None:
    with SandboxThread(SandboxConfig(latency=0.01)) as sandbox:
        result = run(tmp_path, sandbox, cap)
        sandbox_calls = sandbox.stats()["total_calls"]
    assert result.returncode == outcome.CAP_REACHED, result.stderr[-3000:]
    assert sandbox_calls == cap
    assert result.stats["tmapi/paid_calls"] == cap
    assert result.stats["tmapi/max_calls_refused"] >= 1
    assert result.stats["finish_reason"] == FINISH_REASON
    assert f"TMAPI_MAX_CALLS={cap} reached: stopping the crawl" in result.stderr
    # every image is accounted for: searched to the end, a failure record naming the cap
    # (started), or listed once in the not-started file (never started)
    done = {p["query_image_url"] for p in result.products}
    failed = {f["query_image_url"]: f for f in result.failures}
    listed = tmp_path / "products.not-started.txt"
    not_started = set(listed.read_text(encoding="utf-8").splitlines()[1:]) if listed.exists() else set()
    assert set(URLS) == done | set(failed) | not_started
    assert not not_started & (done | set(failed))
    capped = [f for f in failed.values() if "TMAPI_MAX_CALLS" in f["message"]]
    assert capped and all(f["stage"] in ("search", "convert") for f in capped)
    # the feeds are complete JSON lines (read_jsonl parsed every line) and the summary agrees
    summary = json.loads((tmp_path / "products.summary.json").read_text(encoding="utf-8"))
    assert summary["finish_reason"] == FINISH_REASON and summary["max_calls"] == cap
    assert summary["totals"]["paid_calls"] == cap
    assert summary["totals"]["images_unfinished"] == len(not_started)
    assert summary["totals"].get("images_not_started", 0) == len(not_started)
    assert summary["totals"]["images_failed"] == len(failed)
    assert summary["totals"]["items"] == len(result.products)


def test_retries_are_paid_calls_too(tmp_path: Path) -> None:
    config = SandboxConfig(fault_rate=0.4, fault_kinds=("500", "503", "code", "truncated"), seed=7)
    cap = 9
    with SandboxThread(config) as sandbox:
        result = run(tmp_path, sandbox, cap, RETRY_TIMES="10")
        stats = sandbox.stats()
    assert result.returncode == outcome.CAP_REACHED, result.stderr[-3000:]
    assert sum(stats["faults"].values()) > 0  # some of the capped calls were retries
    assert stats["total_calls"] == cap
    assert result.stats["tmapi/paid_calls"] == cap


def test_cap_not_reached_finishes_normally(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig()) as sandbox:
        result = run(tmp_path, sandbox, FULL_CALLS)
        calls = sandbox.stats()["total_calls"]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert calls == FULL_CALLS
    assert result.failures == []
    assert len(result.products) == 4 * 60 + 60
    assert result.stats["finish_reason"] == "finished"


def test_raising_the_cap_with_the_cache_resumes_without_paying_twice(tmp_path: Path) -> None:
    cache = {"TMAPI_CACHE": "true", "TMAPI_CACHE_DIR": str(tmp_path / "cache")}
    with SandboxThread(SandboxConfig()) as sandbox:
        first = run(tmp_path / "one", sandbox, 6, **cache)
        assert first.returncode == outcome.CAP_REACHED, first.stderr[-3000:]
        assert sandbox.stats()["total_calls"] == 6
        sandbox.reset()
        second = run(tmp_path / "two", sandbox, 100, **cache)
        resumed_calls = sandbox.stats()["total_calls"]
    assert second.returncode == outcome.OK, second.stderr[-3000:]
    assert resumed_calls == FULL_CALLS - 6  # the 6 answers paid for in the first run came from the cache
    assert second.stats["httpcache/hit"] == 6
    assert second.failures == [] and len(second.products) == 4 * 60 + 60


@pytest.mark.parametrize("value", ["1.5"])  # the other bad values: test_max_calls_setting
def test_bad_cap_fails_before_any_call(tmp_path: Path, value: str) -> None:
    with SandboxThread(SandboxConfig()) as sandbox:
        result = run(tmp_path, sandbox, value)
        calls = sandbox.stats()["total_calls"]
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: TMAPI_MAX_CALLS must") and value in line
    assert calls == 0


def max_calls(settings: Settings) -> int:
    return registry.read(settings, "TMAPI_MAX_CALLS")


def test_max_calls_setting() -> None:
    assert max_calls(Settings({"TMAPI_MAX_CALLS": "12"})) == 12
    assert max_calls(Settings({"TMAPI_MAX_CALLS": 0})) == 0
    assert max_calls(Settings({})) == 0
    # the registry's one message shape (tmapi_spiders/registry: read)
    with pytest.raises(
        ValueError, match=r"TMAPI_MAX_CALLS must be a whole number of calls, 0 or more \(0: no cap\), got -3"
    ):
        max_calls(Settings({"TMAPI_MAX_CALLS": -3}))
    with pytest.raises(
        ValueError, match=r"TMAPI_MAX_CALLS must be a whole number of calls, 0 or more \(0: no cap\), got 'lots'"
    ):
        max_calls(Settings({"TMAPI_MAX_CALLS": "lots"}))


def test_local_counter_stops_at_the_limit() -> None:
    async def reserve_all(counter: LocalCounter, n: int) -> list[int]:
        return [await counter.reserve() for _ in range(n)]

    counter = LocalCounter(3)
    assert asyncio.run(reserve_all(counter, 5)) == [1, 2, 3, 0, 0]
    assert counter.count == 3


# Distributed: 2 workers of one job in Redis share the cap


WORKER_SETTINGS = {**QUICK_WORKER_SETTINGS, "TMAPI_PROGRESS_INTERVAL": "0"}
DIST_URLS = [f"https://cbu01.alicdn.com/img/ibank/dcap-{n}/total-60.jpg" for n in range(4)]
DIST_URLS.append("https://shop.example.com/photos/dcap/total-60.jpg")
DIST_CALLS = 4 * 3 + 1 + 3


def scrapy_cmd(args: list[str], settings: dict[str, str], base_url: str, **popen: Any) -> subprocess.Popen[str]:
    flat = [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]
    return scrapy([*args, *flat], base_url, **popen)


def run_workers(tmp: Path, settings: dict[str, str], base_url: str, count: int = 2) -> tuple[list[int], str]:
    procs, logs = [], []
    tmp.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        log = tmp / f"worker-{n}.log"
        logs.append(log)
        feed = str(tmp / "out" / "products-%(worker)s.jsonl")
        with open(log, "w", encoding="utf-8") as handle:
            procs.append(scrapy_cmd(["crawl", "image_search", "-o", feed], settings, base_url, stderr=handle))
    codes = []
    for proc in procs:
        try:
            proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError("a worker did not stop within 90 s") from None
        codes.append(proc.returncode)
    return codes, "\n".join(log.read_text(encoding="utf-8") for log in logs)


def summaries(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.summary.json"))]


def test_distributed_cap_is_job_wide_and_leaves_the_rest_queued(tmp_path: Path, redis_server: RedisServer) -> None:
    cap = 7
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(DIST_URLS) + "\n", encoding="utf-8")
    with SandboxThread(SandboxConfig(latency=0.02)) as sandbox:
        settings = {**WORKER_SETTINGS, "REDIS_URL": redis_server.url, "TMAPI_JOB": "capjob"}
        settings["TMAPI_OUTPUT_DIR"] = str(tmp_path / "output")
        seeded = scrapy_cmd(["seed", str(seeds)], settings, sandbox.base_url)
        seeded.communicate(timeout=60)
        assert seeded.returncode == 0
        client = redis_server.client()
        job = Job(client, JobKeys.for_job("capjob"))

        codes, log = run_workers(tmp_path / "one", {**settings, "TMAPI_MAX_CALLS": str(cap)}, sandbox.base_url)
        first_calls = sandbox.stats()["total_calls"]
        status = job.status(live_seconds=0)
        spent = int(client.get(JobKeys.for_job("capjob").max_calls_spent) or 0)
        first = [p for path in (tmp_path / "one" / "out").glob("products-*.jsonl") for p in read_jsonl(path)]
        first_failures = [p for p in first if "stage" in p]
        first_summaries = summaries(tmp_path / "one" / "out")

        sandbox.reset()
        codes_two, log_two = run_workers(tmp_path / "two", {**settings, "TMAPI_MAX_CALLS": "100"}, sandbox.base_url)
        second_calls = sandbox.stats()["total_calls"]
        left_keys = sorted(client.keys("{capjob}:*"))

    # run 1: exactly the cap across the three workers, stopped cleanly, the rest still queued
    assert set(codes) <= {outcome.OK, outcome.CAP_REACHED} and outcome.CAP_REACHED in codes, log[-3000:]
    assert first_calls == cap == spent
    assert status.counters["paid_calls"] == cap
    assert status.queued + status.seeds_left > 0 and status.in_flight == 0
    assert first_failures == []  # a capped image is not a failure: its work waits in the queue
    assert max(s["totals"]["paid_calls"] for s in first_summaries) == cap
    assert max(s["totals"]["items_written"] for s in first_summaries) == len(first)
    assert all(s["job"] == "capjob" for s in first_summaries)
    assert min(s["totals"]["images_unfinished"] for s in first_summaries) > 0
    # run 2, with a higher cap: the job resumes and nothing is paid twice
    assert codes_two == [outcome.OK] * 2, log_two[-3000:]
    assert second_calls == DIST_CALLS - cap
    second = [p for path in (tmp_path / "two" / "out").glob("products-*.jsonl") for p in read_jsonl(path)]
    keys = {(p["query_image_url"], p["item_id"]) for p in first + second if "item_id" in p}
    assert len(keys) == len([p for p in first + second if "item_id" in p]) == 5 * 60
    # finished_at has whole seconds: two workers stopping in the same second tie, and the one
    # that stopped first covers the job only as far as it had gone
    final = max(summaries(tmp_path / "two" / "out"), key=lambda s: (s["finished_at"], s["totals"]["images_done"]))
    assert final["totals"]["images"] == 5 and final["totals"]["images_done"] == 5
    assert final["totals"]["items"] == 5 * 60 and final["totals"]["paid_calls"] == DIST_CALLS
    assert {i["query_image_url"] for i in final["images"]} == set(DIST_URLS)
    assert JobKeys.for_job("capjob").max_calls_spent not in left_keys  # a finished job's count is cleared
    assert "{capjob}:summary" not in left_keys  # and so are its per-image results

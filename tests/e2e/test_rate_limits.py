"""The gateway's rate limit: HTTP 429, with or without `Retry-After`, against a sandbox
that refuses calls beyond its rate (SandboxConfig.rate_limit) and records when each call
came. Waits are measured on the sandbox's side, between the refused call and its retry."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, read_jsonl, scrapy
from tests.redis_server import RedisServer
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

SEARCH = "/1688/global/search/image"
# 24 images of 2 pages each: 48 calls, far more than a gateway of 5 calls a second allows at
# Scrapy's default 16 requests at once.
IMAGES = {f"https://cbu01.alicdn.com/img/rate/{i}/total-40.jpg": 40 for i in range(24)}
PAGES = sum(math.ceil(n / 20) for n in IMAGES.values())
DEFAULTS = {"TMAPI_BACKOFF_BASE": "0.5", "LOG_LEVEL": "INFO"}  # the shipped backoff, not the tests' quick one


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    path = tmp_path / "images.txt"
    path.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    return path


def found(products: list[dict[str, Any]]) -> dict[str, int]:
    per_image: dict[str, set[int]] = {}
    for p in products:
        per_image.setdefault(p["query_image_url"], set()).add(p["item_id"])
    return {url: len(ids) for url, ids in per_image.items()}


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["date", "seconds"])
def test_a_429_is_retried_after_the_retry_after_it_carries_in_either_form(tmp_path: Path, form: str) -> None:
    # Two one-page images at once through a gateway of one call a second: the second is refused,
    # with "Retry-After: <an HTTP-date 6 s away>" (or "6"), and must come back no sooner.
    images = [f"https://cbu01.alicdn.com/img/retry-after/{form}/{i}/total-20.jpg" for i in range(2)]
    seeds = tmp_path / "two.txt"
    seeds.write_text("\n".join(images) + "\n", encoding="utf-8")
    config = SandboxConfig(rate_limit=1, retry_after=form, retry_after_seconds=6)
    with SandboxThread(config) as api:
        result = crawl(tmp_path, api.base_url, {"urls_file": str(seeds)}, DEFAULTS)
        calls = [c for c in api.calls() if c["endpoint"] == SEARCH]
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert stats["statuses"] == {"200": 2, "429": 1}  # paid: one call each, and the one refused
    refused = next(c for c in calls if c["status"] == 429)
    retry = next(c for c in calls if c["seq"] > refused["seq"] and c["params"] == refused["params"])
    assert retry["status"] == 200
    waited = retry["time"] - refused["time"]
    assert waited >= 4.5, f"retried {waited:.2f} s after a 6 s Retry-After"
    assert waited < 12
    print(f"Retry-After ({form}) 6 s: retried after {waited:.2f} s")
    assert found(result.products) == dict.fromkeys(images, 20)
    assert result.failures == []


# --- 429s slow the whole job down -------------------------------------------------------------


def test_a_gateway_of_five_calls_a_second_slows_the_job_down_and_nothing_fails(tmp_path: Path, seeds: Path) -> None:
    # Default settings, no limit set: the first 429s set a rate for the whole job.
    with SandboxThread(SandboxConfig(rate_limit=5)) as api:
        result = crawl(tmp_path, api.base_url, {"urls_file": str(seeds)}, DEFAULTS)
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert found(result.products) == IMAGES  # every image searched to its end
    assert result.failures == []
    refused = stats["limited"].get("rate", 0)
    assert stats["statuses"] == {"200": PAGES, "429": refused}  # each page paid once, plus the refusals
    # One burst at most: the 16 calls in flight when the first 429 came (without the slowdown:
    # ~200 refusals and images failed for good).
    assert 0 < refused <= 20
    assert result.stats["tmapi/limit/rate_limited"] == refused
    assert 0 < result.stats["tmapi/limit/effective_qps"] <= 5.5
    assert "TMAPI answered 429 (rate limit): slowing the job down" in result.stderr
    print(f"one process: {refused} calls refused, {PAGES} pages")


def test_answers_slower_than_the_refusals_still_set_the_rate(tmp_path: Path, seeds: Path) -> None:
    # The API takes 0.3 s to answer, the gateway refuses at once: the first 429 comes back before the
    # answers of its second, which still count as let through (not the floor of 0.5 calls a second,
    # held for PROBE).
    with SandboxThread(SandboxConfig(rate_limit=5, latency=0.3)) as api:
        result = crawl(tmp_path, api.base_url, {"urls_file": str(seeds)}, DEFAULTS)
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert found(result.products) == IMAGES
    assert result.failures == []
    assert stats["statuses"] == {"200": PAGES, "429": stats["limited"].get("rate", 0)}
    assert result.stats["tmapi/limit/effective_qps"] >= 4


def test_with_the_plans_rate_set_a_429_cuts_it_as_a_503_does(tmp_path: Path, seeds: Path) -> None:
    # TMAPI_MAX_QPS says 10, the gateway allows 5: the plan's rate is cut until the gateway agrees.
    with SandboxThread(SandboxConfig(rate_limit=5)) as api:
        result = crawl(tmp_path, api.base_url, {"urls_file": str(seeds)}, {**DEFAULTS, "TMAPI_MAX_QPS": 10})
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert found(result.products) == IMAGES
    assert result.failures == []
    refused = stats["limited"].get("rate", 0)
    assert stats["statuses"] == {"200": PAGES, "429": refused}
    assert result.stats["tmapi/limit/cuts"] >= 1
    assert result.stats["tmapi/limit/effective_qps"] < 10


def test_without_a_429_nothing_waits(tmp_path: Path, seeds: Path) -> None:
    # No gateway limit: the limiter is on but never paces (no rate found, no cut); calls that
    # each take 0.2 s fill all of Scrapy's default 16 at once.
    with SandboxThread(SandboxConfig(latency=0.2)) as api:
        result = crawl(tmp_path, api.base_url, {"urls_file": str(seeds)}, DEFAULTS)
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert stats["statuses"] == {"200": PAGES}
    assert "tmapi/limit/cuts" not in result.stats
    assert "tmapi/limit/effective_qps" not in result.stats
    assert result.stats["tmapi/limit/peak_in_flight"] == 16  # Scrapy's default concurrency, all of it used


# --- a distributed job ---------------------------------------------------------------------------


def test_two_workers_without_a_limit_each_find_their_share_of_the_gateways_rate(
    tmp_path: Path, seeds: Path, redis_server: RedisServer
) -> None:
    job = "rate-limit"
    settings = {**QUICK_WORKER_SETTINGS, "CONCURRENT_REQUESTS": "16", "TMAPI_BACKOFF_BASE": "0.5"}
    with SandboxThread(SandboxConfig(rate_limit=5)) as api:
        common = ["-s", f"REDIS_URL={redis_server.url}", "-s", f"TMAPI_JOB={job}"]
        seed = scrapy(["seed", str(seeds), *common], api.base_url, stderr=subprocess.PIPE)
        assert seed.wait(timeout=60) == 0
        workers = []
        for name in ("w1", "w2"):
            args = ["crawl", "image_search", "-o", str(tmp_path / f"products-{name}.jsonl"), *common]
            for key, value in {**settings, "TMAPI_WORKER_ID": name, "TMAPI_OUTPUT_DIR": str(tmp_path)}.items():
                args += ["-s", f"{key}={value}"]
            log = open(tmp_path / f"{name}.log", "w", encoding="utf-8")  # closed below
            workers.append((scrapy(args, api.base_url, stdout=log, stderr=subprocess.STDOUT), log))
        codes = []
        for proc, log in workers:
            codes.append(proc.wait(timeout=120))
            log.close()
        stats = api.stats()
    logs = "\n".join((tmp_path / f"{name}.log").read_text(encoding="utf-8") for name in ("w1", "w2"))
    assert codes == [0, 0], logs[-3000:]
    products = [p for name in ("w1", "w2") for p in read_jsonl(tmp_path / f"products-{name}.jsonl")]
    assert found(products) == IMAGES
    assert [p for path in tmp_path.glob("*.failures.jsonl") for p in read_jsonl(path)] == []
    refused = stats["limited"].get("rate", 0)
    assert stats["statuses"] == {"200": PAGES, "429": refused}
    assert refused <= 40  # each worker's first burst, then a few as their shares settle
    assert "TMAPI answered 429 (rate limit): slowing the job down" in logs
    print(f"two workers: {refused} calls refused, {PAGES} pages")

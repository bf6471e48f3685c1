"""TMAPI_MAX_CALLS: the cap is exact by the sandbox's own count, and stops the job cleanly."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from scrapy.settings import Settings

from tests.crawl_helpers import crawl
from tmapi_spiders import outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread
from tmapi_spiders.spending import FINISH_REASON, LocalCounter, max_calls

# 4 images of 3 pages each (max_pages=3) and one that needs a conversion first: 16 calls in all
URLS = [f"https://cbu01.alicdn.com/img/ibank/cap-{n}/total-200.jpg" for n in range(4)]
URLS.append("https://shop.example.com/photos/cap/total-60.jpg")
FULL_CALLS = 4 * 3 + 1 + 3


def stat(stderr: str, name: str) -> int | None:
    found = re.search(rf"'{re.escape(name)}': (\d+)", stderr)
    return int(found.group(1)) if found else None


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
    assert stat(result.stderr, "tmapi/paid_calls") == cap
    assert stat(result.stderr, "tmapi/max_calls_refused") >= 1
    assert f"'finish_reason': '{FINISH_REASON}'" in result.stderr
    assert f"TMAPI_MAX_CALLS={cap} reached: stopping the crawl" in result.stderr
    # every image is accounted for: searched to the end, or a failure record naming the cap
    done = {p["query_image_url"] for p in result.products}
    failed = {f["query_image_url"]: f for f in result.failures}
    assert set(URLS) == done | set(failed)
    capped = [f for f in failed.values() if "TMAPI_MAX_CALLS" in f["message"]]
    assert capped and all(f["stage"] in ("search", "convert") for f in capped)
    # the feeds are complete JSON lines (read_jsonl parsed every line) and the summary agrees
    summary = json.loads((tmp_path / "products.summary.json").read_text(encoding="utf-8"))
    assert summary["finish_reason"] == FINISH_REASON and summary["max_calls"] == cap
    assert summary["totals"]["paid_calls"] == cap
    assert summary["totals"]["images_unfinished"] == 0
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
    assert stat(result.stderr, "tmapi/paid_calls") == cap


def test_cap_not_reached_finishes_normally(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig()) as sandbox:
        result = run(tmp_path, sandbox, FULL_CALLS)
        calls = sandbox.stats()["total_calls"]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert calls == FULL_CALLS
    assert result.failures == []
    assert len(result.products) == 4 * 60 + 60
    assert "'finish_reason': 'finished'" in result.stderr


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
    assert stat(second.stderr, "httpcache/hit") == 6
    assert second.failures == [] and len(second.products) == 4 * 60 + 60


@pytest.mark.parametrize("value", ["-1", "1.5"])
def test_bad_cap_fails_before_any_call(tmp_path: Path, value: str) -> None:
    with SandboxThread(SandboxConfig()) as sandbox:
        result = run(tmp_path, sandbox, value)
        calls = sandbox.stats()["total_calls"]
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: TMAPI_MAX_CALLS must") and value in line
    assert calls == 0


def test_max_calls_setting() -> None:
    assert max_calls(Settings({"TMAPI_MAX_CALLS": "12"})) == 12
    assert max_calls(Settings({"TMAPI_MAX_CALLS": 0})) == 0
    assert max_calls(Settings({})) == 0
    with pytest.raises(ValueError, match="TMAPI_MAX_CALLS must not be negative"):
        max_calls(Settings({"TMAPI_MAX_CALLS": -3}))


def test_local_counter_stops_at_the_limit() -> None:
    async def reserve_all(counter: LocalCounter, n: int) -> list[int]:
        return [await counter.reserve() for _ in range(n)]

    counter = LocalCounter(3)
    assert asyncio.run(reserve_all(counter, 5)) == [1, 2, 3, 0, 0]
    assert asyncio.run(counter.spent()) == 3

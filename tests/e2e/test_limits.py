"""TMAPI_MAX_CONCURRENCY / TMAPI_MAX_QPS: real crawls against a sandbox that counts what it sees.

The sandbox's `peak_concurrency` (calls it was serving at once, across every client) is
the ground truth: with the limit on, it must never pass the limit, in one process, across
3 worker processes sharing a real redis-server, and after one of them is killed with its
slots taken. None of these tests measure time.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings

from tests.crawl_helpers import crawl, read_jsonl, read_stats, run_scrapy
from tests.redis_server import RedisServer
from tests.scrapy_server import ScrapyProcess, start_scrapy
from tmapi_spiders import limits, registry
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "sandbox"
IMAGES = {f"https://cbu01.alicdn.com/img/limits/{i}/total-{n}.jpg": n for i, n in enumerate([100, 80, 60] * 4)}
EXPECTED = {(url, n) for url, n in IMAGES.items()}
PAGES = sum(math.ceil(n / 20) for n in IMAGES.values())


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limit-seeds") / "images.txt"
    path.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def slow_api() -> Iterator[SandboxThread]:
    """No server-side limit: only our limiter keeps the calls in flight down."""
    with SandboxThread(SandboxConfig(latency=0.2, jitter=0.05, seed=3)) as running:
        yield running


def found(products: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """(image, items found) per image, each item counted once."""
    per_image: dict[str, set[int]] = {}
    for p in products:
        per_image.setdefault(p["query_image_url"], set()).add(p["item_id"])
    return {(url, len(ids)) for url, ids in per_image.items()}


# --- settings and the policy (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TMAPI_MAX_CONCURRENCY", "eight", "TMAPI_MAX_CONCURRENCY must be a whole number"),
        ("TMAPI_MAX_CONCURRENCY", "-1", "TMAPI_MAX_CONCURRENCY must be a whole number of calls, 0 or more"),
        ("TMAPI_MAX_QPS", "fast", "TMAPI_MAX_QPS must be a number"),
        ("TMAPI_MAX_QPS", "-2", "TMAPI_MAX_QPS must be a number of calls per second, 0 or more"),
        ("TMAPI_MAX_QPS", "inf", "TMAPI_MAX_QPS must be a number"),
        ("TMAPI_LIMIT_LEASE", "0", "TMAPI_LIMIT_LEASE must be a number of seconds, 0.1 or more"),
    ],
)
def test_bad_limit_settings_name_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(registry.ConfigError, match=message):
        registry.check(Settings({name: value}))


def test_limits_read_and_configure_lifts_scrapy_caps_and_switches_autothrottle_off() -> None:
    # The add-on's own defaults (addons.DEFAULTS), at its priority: the limits change them.
    settings = Settings({"CONCURRENT_REQUESTS": 16, "AUTOTHROTTLE_ENABLED": True}, priority="addon")
    settings.set("TMAPI_MAX_CONCURRENCY", "12", priority="cmdline")
    settings.set("TMAPI_MAX_QPS", "7.5", priority="cmdline")
    assert limits.read_limits(settings) == (12, 7.5)
    limits.configure(settings)
    assert settings.getint("CONCURRENT_REQUESTS") == 24
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 24
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is False
    for priority in ("project", "spider", "cmdline"):  # the user's own choice, wherever it is made
        kept = Settings({"AUTOTHROTTLE_ENABLED": True, "CONCURRENT_REQUESTS": 5}, priority=priority)
        kept.set("TMAPI_MAX_CONCURRENCY", 4)
        limits.configure(kept)
        assert kept.getbool("AUTOTHROTTLE_ENABLED") is True and kept.getint("CONCURRENT_REQUESTS") == 5
    off = Settings({"AUTOTHROTTLE_ENABLED": True})
    limits.configure(off)
    assert off.getbool("AUTOTHROTTLE_ENABLED") is True


def test_aimd_cuts_once_per_window_and_creeps_back_only_after_the_probe_time() -> None:
    policy = limits.Aimd(8, 0)
    assert policy.slots() == 8
    assert policy.on_overload(0, now=100.0)
    assert policy.slots() == 7 and policy.bad == 8
    # the other calls made under the old limit come back 503 too: no second cut
    assert not policy.on_overload(0, now=100.1)
    assert policy.slots() == 7
    for _ in range(1000):
        policy.on_success(now=101.0)
    assert policy.slots() == 7  # never back to the level that failed within PROBE
    for _ in range(1000):
        policy.on_success(now=100.0 + limits.PROBE + 1)
    assert policy.slots() == 8  # then it probes the ceiling again, never above it
    for epoch in range(1, 20):
        policy.on_overload(epoch, now=200.0)
    assert policy.slots() == 1  # never below one call


def test_aimd_scales_the_rate_with_the_same_rule() -> None:
    policy = limits.Aimd(0, 10.0)
    assert policy.slots() > 1000  # no concurrency limit
    policy.on_overload(0, now=1.0)
    assert math.isclose(policy.qps, 9.0)
    for _ in range(100):
        policy.on_success(now=2.0)
    assert math.isclose(policy.qps, 10.0)


# --- one process -------------------------------------------------------------------------------


def test_bad_limit_is_one_line_before_any_call(tmp_path: Path, slow_api: SandboxThread, seeds: Path) -> None:
    slow_api.reset()
    result = crawl(tmp_path, slow_api.base_url, {"urls_file": str(seeds)}, {"TMAPI_MAX_CONCURRENCY": "lots"})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: TMAPI_MAX_CONCURRENCY must be a whole number of calls, 0 or more (0: no limit), got 'lots'"
    ]
    assert slow_api.stats()["total_calls"] == 0


def test_one_process_never_exceeds_max_concurrency_and_uses_all_of_it(
    tmp_path: Path, slow_api: SandboxThread, seeds: Path
) -> None:
    slow_api.reset()
    result = crawl(
        tmp_path,
        slow_api.base_url,
        {"urls_file": str(seeds)},
        {"TMAPI_MAX_CONCURRENCY": 3, "CONCURRENT_REQUESTS": 16, "LOG_LEVEL": "INFO"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = slow_api.stats()
    assert stats["peak_concurrency"] == 3  # never above the limit, and the whole limit used
    assert found(result.products) == EXPECTED
    assert len(result.products) == sum(IMAGES.values())
    assert stats["statuses"] == {"200": sum(math.ceil(n / 20) for n in IMAGES.values())}
    assert result.stats["tmapi/limit/peak_in_flight"] == 3


def test_max_qps_keeps_under_the_plans_rate(tmp_path: Path, seeds: Path) -> None:
    # The API admits 6 calls in any second; without the limiter 16 parallel calls overrun it.
    images = "\n".join(list(IMAGES)[:6]) + "\n"
    few = tmp_path / "few.txt"
    few.write_text(images, encoding="utf-8")
    with SandboxThread(SandboxConfig(max_qps=6)) as api:
        result = crawl(tmp_path, api.base_url, {"urls_file": str(few)}, {"TMAPI_MAX_QPS": 5})
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert stats["limited"] == {}  # not one call refused for the rate
    assert found(result.products) == {(u, n) for u, n in EXPECTED if u in images}


def test_a_503_settles_the_job_at_the_real_limit(tmp_path: Path, seeds: Path) -> None:
    # The settings promise 8 calls, the plan allows 3: the job learns it and loses nothing.
    with SandboxThread(SandboxConfig(latency=0.2, max_concurrency=3)) as api:
        result = crawl(
            tmp_path, api.base_url, {"urls_file": str(seeds)}, {"TMAPI_MAX_CONCURRENCY": 8, "LOG_LEVEL": "INFO"}
        )
        stats = api.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert found(result.products) == EXPECTED
    assert result.stats["tmapi/limit/effective_concurrency"] == 3
    pages = sum(math.ceil(n / 20) for n in IMAGES.values())
    refused = stats["limited"]["concurrency"]
    assert stats["statuses"] == {"200": pages, "503": refused}
    assert refused <= 3 * 8  # a few per cut from 8 down to 3, then none
    assert "lowering the job's limits to 3 calls in flight" in result.stderr


# --- across processes, through Redis -----------------------------------------------------------


def worker(
    tmp: Path, redis_url: str, base_url: str, job: str, name: str, **extra: str
) -> ScrapyProcess | subprocess.Popen[str]:
    settings = {
        "REDIS_URL": redis_url,
        "TMAPI_JOB": job,
        "TMAPI_WORKER_ID": name,
        "TMAPI_MAX_CONCURRENCY": "3",
        "TMAPI_LIMIT_LEASE": "1",
        "TMAPI_REDIS_LEASE": "2",
        "TMAPI_REDIS_POLL_INTERVAL": "0.2",
        "TMAPI_REDIS_ACK_INTERVAL": "0.05",
        "MAX_IDLE_TIME_BEFORE_CLOSE": "1",
        "TMAPI_BACKOFF_BASE": "0.05",
        "TMAPI_OUTPUT_DIR": str(tmp / "output"),
        "TMAPI_STATS_FILE": str(tmp / "stats" / "%(worker)s.json"),
        **extra,
    }
    args = ["crawl", "image_search", "-o", str(tmp / "out" / f"products-{name}.jsonl")]
    for key, value in settings.items():
        args += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN=TOKEN, TMAPI_BASE_URL=base_url)
    with open(tmp / f"{name}.log", "w", encoding="utf-8") as log:
        return start_scrapy(args, env, stdout=log, stderr=subprocess.STDOUT)


def seed_job(redis_url: str, base_url: str, job: str, seeds: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN=TOKEN, TMAPI_BASE_URL=base_url)
    args = ["seed", str(seeds), "-s", f"REDIS_URL={redis_url}", "-s", f"TMAPI_JOB={job}"]
    proc = run_scrapy(args, env)
    assert proc.returncode == 0, proc.stderr


def finish(procs: list[ScrapyProcess | subprocess.Popen[str]], timeout: float = 90) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError("a worker did not finish: the job hung") from None
    return codes


def job_products(tmp: Path) -> list[dict[str, Any]]:
    return [
        p for path in sorted((tmp / "out").glob("products-*.jsonl")) if ".failures." not in path.name
        for p in read_jsonl(path)
    ]  # fmt: skip


def logs(tmp: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(tmp.glob("w*.log")))


def test_three_workers_share_one_limit_through_redis(
    tmp_path: Path, redis_server: RedisServer, slow_api: SandboxThread, seeds: Path
) -> None:
    seed_job(redis_server.url, slow_api.base_url, "shared-limit", seeds)
    slow_api.reset()
    procs = [worker(tmp_path, redis_server.url, slow_api.base_url, "shared-limit", f"w{i}") for i in range(3)]
    codes = finish(procs)
    assert codes == [0, 0, 0], logs(tmp_path)[-3000:]
    stats = slow_api.stats()
    assert stats["peak_concurrency"] <= 3  # each worker alone may hold 3: together they never pass 3
    assert stats["peak_concurrency"] == 3
    assert found(job_products(tmp_path)) == EXPECTED
    assert stats["statuses"] == {"200": sum(math.ceil(n / 20) for n in IMAGES.values())}
    stats_files = sorted((tmp_path / "stats").glob("*.json"))
    assert [read_stats(p)["tmapi/limit/max_concurrency"] for p in stats_files] == [3, 3, 3]


def test_a_killed_workers_slots_come_back_and_the_limit_still_holds(
    tmp_path: Path, redis_server: RedisServer, slow_api: SandboxThread, seeds: Path
) -> None:
    job = "kill-limit"
    seed_job(redis_server.url, slow_api.base_url, job, seeds)
    slow_api.reset()
    client = redis_server.client()
    procs = [worker(tmp_path, redis_server.url, slow_api.base_url, job, f"w{i}") for i in range(3)]
    slots_key = JobKeys.for_job(job).limit_slots
    # kill a worker while it holds slots of the job's limit, and there is work left; any worker
    # will do (under load the first one started is not always the first to take work)
    deadline = time.monotonic() + 60
    held: list[str] = []
    while time.monotonic() < deadline:
        held = client.zrange(slots_key, 0, -1)
        if held and slow_api.stats()["total_calls"] < PAGES - 6:  # and work is left for the others
            break
        time.sleep(0.01)
    assert held, "no worker ever held a slot"
    name = held[0].split(":", 1)[0]
    index = int(name[1:])
    procs[index].send_signal(signal.SIGKILL)
    codes = finish(procs)
    assert codes[index] == -signal.SIGKILL, logs(tmp_path)[-3000:]
    assert [c for i, c in enumerate(codes) if i != index] == [0, 0], logs(tmp_path)[-3000:]
    stats = slow_api.stats()
    assert stats["peak_concurrency"] <= 3
    assert found(job_products(tmp_path)) == EXPECTED  # the job finished without the dead worker's slots
    assert not [h for h in client.zrange(slots_key, 0, -1) if h.startswith(f"{name}:")]

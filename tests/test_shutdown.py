"""Ctrl-C: one SIGINT finishes in-flight calls and flushes the feeds; a second stops at once.

What is guaranteed (docs/reliability.md): after one SIGINT every page the API answered
was parsed and every record parsed is in the feed, as whole JSON lines. After a second
SIGINT the process ends promptly; records still buffered may be lost (single process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.fault_soak import scrapy_stats
from tests.crawl_helpers import REPO
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

IMAGES = [f"https://cbu01.alicdn.com/img/sigint-{i}.jpg?total=200" for i in range(40)]


def start(tmp_path: Path, base_url: str) -> tuple[subprocess.Popen[str], Path]:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(IMAGES) + "\n")
    out = tmp_path / "products.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN="sandbox", TMAPI_BASE_URL=base_url)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "image_search", "-a", f"urls_file={seeds}", "-O", str(out)]
    cmd += ["-s", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}", "-s", "AUTOTHROTTLE_ENABLED=false"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
    stats = scrapy_stats(stderr)
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

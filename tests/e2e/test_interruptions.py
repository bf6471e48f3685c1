"""Interruptions are visible: after Ctrl-C once or twice the run summary is written, lists
every image the crawl had started and not finished (status `unfinished`, with the pages and
items it got), its counts agree with the feed, and a forced (unclean) stop exits non-zero."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.crawl_helpers import scrapy
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

IMAGES = [f"https://cbu01.alicdn.com/img/interrupt-{i}.jpg?total=200" for i in range(16)]


def start(tmp_path: Path, base_url: str) -> tuple[subprocess.Popen[str], Path]:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(IMAGES) + "\n")
    out = tmp_path / "products.jsonl"
    cmd = ["crawl", "image_search", "-a", f"urls_file={seeds}", "-O", str(out)]
    cmd += ["-s", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}", "-s", f"TMAPI_CACHE_DIR={tmp_path / 'store'}"]
    cmd += ["-s", "AUTOTHROTTLE_ENABLED=false", "-s", "CONCURRENT_REQUESTS=4"]
    return scrapy(cmd, base_url, stderr=subprocess.PIPE), out


def wait_for_calls(sandbox: SandboxThread, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.stats()["total_calls"] < count:
        assert time.monotonic() < deadline, "the crawl made no calls"
        time.sleep(0.05)


def summary_of(out: Path) -> dict[str, Any]:
    return json.loads(out.with_name("products.summary.json").read_text(encoding="utf-8"))


def test_one_ctrl_c_lists_every_unfinished_image_and_counts_what_the_feed_holds(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(latency=0.3)) as sandbox:
        proc, out = start(tmp_path, sandbox.base_url)
        wait_for_calls(sandbox, 12)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    summary = summary_of(out)
    assert summary["finish_reason"] == "shutdown"
    listed = {i["query_image_url"]: i for i in summary["images"]}
    # every image with records in the feed is in the summary, finished or not ...
    in_feed: dict[str, int] = {}
    for record in records:
        in_feed[record["query_image_url"]] = in_feed.get(record["query_image_url"], 0) + 1
    assert set(in_feed) <= set(listed)
    unfinished = [i for i in summary["images"] if i["status"] == "unfinished"]
    assert unfinished, "the crawl was stopped mid-way: some started images are not finished"
    assert all(i["reason"].startswith("not finished") for i in unfinished)
    # ... with the items the feed holds for it, so the totals agree with the feed
    for url, count in in_feed.items():
        assert listed[url]["items"] == count, url
    totals = summary["totals"]
    assert totals["items"] == totals["items_written"] == len(records)
    assert totals["images"] == len(IMAGES)
    assert totals["images_unfinished"] == len(IMAGES) - totals["images_done"] - totals["images_failed"]
    assert len(unfinished) <= totals["images_unfinished"]  # images never started are counted, not listed
    assert "unfinished" in stderr.split("Run summary (finish reason: shutdown)", 1)[1]


def test_a_second_ctrl_c_writes_the_summary_and_exits_non_zero(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(latency=2.0)) as sandbox:
        proc, out = start(tmp_path, sandbox.base_url)
        wait_for_calls(sandbox, 1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert "forcing unclean shutdown" in stderr
    assert proc.returncode == outcome.INTERRUPTED == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    summary = summary_of(out)
    assert summary["finish_reason"] == "shutdown_forced"
    started = [i for i in summary["images"] if i["status"] == "unfinished"]
    assert started and {i["query_image_url"] for i in started} <= set(IMAGES)
    assert summary["totals"]["images_unfinished"] == len(IMAGES) - summary["totals"]["images_done"]

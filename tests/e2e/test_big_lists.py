"""A long seed list: the crawl starts before the list is read, a cap stops it in seconds with
the images it never started counted and listed in one file, and the same command resumes.

20,000 lines, written here (a few spelling variants of earlier lines and hostile lines among
them), against a sandbox without latency; two crawls of a cap of 12 calls each.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawl_helpers import crawl
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

LINES = 20_000
CAP = 12


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig()) as sb:
        yield sb


def write_list(path: Path) -> int:
    """The list; returns how many distinct searchable images it holds."""
    lines, images = [], 0
    for n in range(LINES):
        if n % 500 == 7:
            lines.append("http://127.0.0.1/internal.jpg")  # hostile: skipped, never searched
        elif n % 10 == 3 and images:
            lines.append(f"HTTPS://CBU01.ALICDN.COM/img/big/{images - 1}/total-1.jpg#v")  # the previous image again
        else:
            lines.append(f"https://cbu01.alicdn.com/img/big/{images}/total-1.jpg")
            images += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return images


def test_a_long_list_starts_at_once_stops_at_the_cap_in_seconds_and_resumes(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    seeds = tmp_path / "images.txt"
    images = write_list(seeds)
    settings = {"TMAPI_MAX_CALLS": CAP, "TMAPI_PROGRESS_INTERVAL": "0.05", "CONCURRENT_REQUESTS": "2"}
    started = time.monotonic()
    first = crawl(tmp_path, sandbox.base_url, {"urls_file": str(seeds)}, settings)
    took = time.monotonic() - started
    assert first.returncode == 5, first.stderr[-3000:]
    calls = sandbox.calls()
    assert len(calls) == CAP
    # The first call went out before the list was read to its end (at the stop, here).
    assert calls[0]["time"] < first.stats["tmapi/seed_list_read_at"]
    assert took < 30, took  # the cap ends the crawl in seconds, not one refusal per line

    summary = json.loads((tmp_path / "products.summary.json").read_text(encoding="utf-8"))
    totals = summary["totals"]
    assert totals["images"] == images
    started_images = first.stats["tmapi/images_listed"]
    assert started_images < 100  # the rest of the list was never handed to the engine
    assert totals["images_not_started"] == images - started_images
    assert len(first.failures) == totals["images_failed"] <= started_images  # no failure record per line
    listed = (tmp_path / "products.not-started.txt").read_text(encoding="utf-8").splitlines()
    assert listed[0].startswith("# not started (tmapi_max_calls)")
    assert len(listed) - 1 == totals["images_not_started"] == len(set(listed[1:]))
    assert listed[-1] == f"https://cbu01.alicdn.com/img/big/{images - 1}/total-1.jpg"

    # Progress: no ETA before there is a rate (the cap came well within a second of the first page).
    etas = re.findall(r"INFO: progress: .*ETA (.*)$", first.stderr, flags=re.MULTILINE)
    assert etas, first.stderr[-3000:]
    assert not [eta for eta in etas if re.match(r"\d", eta)], etas

    # The same command again: what was paid is replayed free, the cap buys new images.
    sandbox.reset()
    second = crawl(tmp_path, sandbox.base_url, {"urls_file": str(seeds)}, settings)
    assert second.returncode == 5, second.stderr[-3000:]
    again = {c["params"].get("img_url") for c in sandbox.calls()}
    done_first = {p["query_image_url"] for p in first.products}
    assert not again & done_first
    assert second.stats.get("httpcache/hit", 0) >= len(done_first)
    summary = json.loads((tmp_path / "products.summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["images_done"] > totals["images_done"]
    assert summary["totals"]["images_not_started"] < totals["images_not_started"]

"""tmapi_spiders/inspection.py: the project's reads of Scrapy/Twisted internals fail loudly.

A rename in a later Scrapy must stop the crawl at open, not acknowledge leases while their
items are still in the scraper (a `kill -9` then loses them with every other test green).
Real crawls and real Scrapy objects, in `scrapy crawl` processes (tests/inspection_probes.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, REPO, CrawlResult, crawl
from tests.redis_server import RedisServer
from tmapi_spiders import settings as project_settings
from tmapi_spiders.inspection import SUPPORTED
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

IMAGES = [
    "https://cbu01.alicdn.com/img/ibank/O1CN01Lnbnos2LkORtHhOVp_!!3367999730-0-cib.jpg",
    "https://images.example-shop.com/products/phone-case-red.jpg",  # converted first
]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    with SandboxThread(SandboxConfig(tokens=("sandbox",), latency=0.02, seed=3)) as running:
        yield running


def worker(
    tmp_path: Path, sandbox: SandboxThread, redis: RedisServer, job: str, extensions: dict[str, int | None]
) -> CrawlResult:
    """One distributed worker seeding its own job from IMAGES, with these extensions changed."""
    seeds = tmp_path / "images.txt"
    seeds.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    settings = {
        **QUICK_WORKER_SETTINGS,
        "REDIS_URL": redis.url,
        "TMAPI_JOB": job,
        "PROBE_VERDICTS": str(tmp_path / "verdicts.json"),
        "EXTENSIONS": json.dumps({**project_settings.EXTENSIONS, **extensions}),
    }
    return crawl(tmp_path, sandbox.base_url, args={"urls_file": str(seeds)}, settings=settings)


def test_the_engine_meets_every_need_and_no_lease_is_done_before_its_records_are_written(
    tmp_path: Path, sandbox: SandboxThread, redis_server: RedisServer
) -> None:
    result = worker(tmp_path, sandbox, redis_server, "probe-ok", {"tests.inspection_probes.Verdicts": 900})
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = json.loads((tmp_path / "verdicts.json").read_text(encoding="utf-8"))
    assert verdicts["real"] == []  # this Scrapy has every attribute, in the shape the project reads
    assert verdicts["absent"] == [
        "ExecutionEngine._slot.nextcall_renamed is missing (a rename)"
    ]  # and the verdict names the one it lacks
    assert verdicts["wrong_shape"] == [
        "ExecutionEngine._slot.nextcall is not a list but CallLaterOnce (a changed type)"
    ]
    # What acknowledgement relies on (tmapi_spiders/done.py): when the feed has written a
    # page's record, that page's lease is not yet done; none is held once the spider closes.
    seen = verdicts["done_at_item"]
    assert len(seen) == len(result.products) > 40 and not any(seen)
    assert verdicts["held_at_close"] == 0


def test_a_scrapy_without_an_attribute_the_worker_reads_stops_it_before_any_call(
    tmp_path: Path, sandbox: SandboxThread, redis_server: RedisServer
) -> None:
    sandbox.reset()
    extensions = {"tmapi_spiders.inspection.InspectionCheck": None, "tests.inspection_probes.StricterCheck": 0}
    result = worker(tmp_path, sandbox, redis_server, "probe-renamed", extensions)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "This Scrapy cannot run tmapi-spiders safely" in line]
    assert len(errors) == 1 and "ExecutionEngine._slot.nextcall_renamed is missing" in errors[0], result.stderr
    assert "Supported: Scrapy >=" in errors[0]
    assert "Spider closed (tmapi_scrapy_unsupported)" in result.stderr
    assert sandbox.stats()["total_calls"] == 0 and result.products == []


def test_an_extension_left_on_item_scraped_that_item_processor_also_calls_stops_the_crawl(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    """itemproc.py takes CoreStats and FeedExporter off the signal by their `item_scraped`:
    a Scrapy whose FeedExporter listens through another method must not export twice."""
    sandbox.reset()
    extensions = {**project_settings.EXTENSIONS}
    extensions["tmapi_spiders.itemproc.FeedExporter"] = None
    extensions["tests.inspection_probes.FeedExporterListeningTwice"] = 0
    result = crawl(
        tmp_path, sandbox.base_url, args={"urls": IMAGES[0]}, settings={"EXTENSIONS": json.dumps(extensions)}
    )
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "This Scrapy cannot run tmapi-spiders safely" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "FeedExporterListeningTwice.item_scraped_again still receives item_scraped" in errors[0]
    assert "Spider closed (tmapi_scrapy_unsupported)" in result.stderr
    assert sandbox.stats()["total_calls"] == 0 and result.products == []
    # The same crawl with the project's own FeedExporter passes the check and writes each record once.
    fine = crawl(tmp_path / "fine", sandbox.base_url, args={"urls": IMAGES[0]})
    assert fine.returncode == 0 and "cannot run tmapi-spiders" not in fine.stderr, fine.stderr[-3000:]
    keys = [(p["query_image_url"], p["item_id"]) for p in fine.products]
    assert len(keys) == len(set(keys)) > 0


def test_the_download_handler_turns_twisteds_re_send_off_and_a_pool_without_it_stops_the_crawl() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.inspection_probes"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = json.loads(done.stdout)
    assert verdicts["real"] == [] and verdicts["retries_automatically"] is False
    assert verdicts["lacking"] == [
        "object._pool.retryAutomatically is missing"
        " (Twisted would re-send a failed paid call unseen by the cap and tmapi/paid_calls)"
    ]
    assert verdicts["lacking_stops"] == "tmapi_scrapy_unsupported"


def test_the_error_names_the_versions_pyproject_declares() -> None:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    scrapy = next(d for d in dependencies if d.startswith("scrapy>="))
    twisted = next(d for d in dependencies if d.startswith("twisted>=")).split()[0]
    assert f"Scrapy {scrapy.removeprefix('scrapy')} with Twisted {twisted.removeprefix('twisted')}" in SUPPORTED

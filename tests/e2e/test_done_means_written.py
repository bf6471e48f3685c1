"""Done means written: a failed write ends the run loudly, and nothing not written counts as done.

Real faults: a size-limited tmpfs that fills under the feed, a real redis-server whose
`maxmemory` is reached mid-job or mid-seeding. Real `scrapy crawl` and `scrapy seed` processes against the sandbox.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import scrapy
from tests.e2e.test_distributed import IMAGES as DISTRIBUTED_IMAGES
from tests.e2e.test_distributed import Cluster, Key, key_of, push_seeds, wait_until
from tests.e2e.test_resume import CALLS, GOOD, Job, calls_made, paid_again
from tests.redis_server import RedisServer
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "sandbox"


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path`: a disk that really fills (ENOSPC)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


def whole_records(path: Path) -> list[dict[str, Any]]:
    """The whole JSON lines of a feed (a line torn by the full disk is left out)."""
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxThread]:
    config = SandboxConfig(tokens=(GOOD, TOKEN), latency=0.05, seed=11)
    with SandboxThread(config) as running:
        yield running


def test_a_disk_that_fills_mid_run_stops_the_crawl_in_one_line_and_the_same_command_again_completes_it(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    sandbox.reset()
    with small_disk(tmp_path / "out", "192k") as out:
        job = Job(tmp_path, sandbox.base_url)  # the feed and failures feed under out/
        job.settings["TMAPI_SUMMARY_FILE"] = str(tmp_path / "first.summary.json")  # a disk with room
        first = job.run()
        assert first.returncode == outcome.WRITE_FAILED, first.log[-3000:]
        lines = [line for line in first.log.splitlines() if "Could not write" in line]
        assert len(lines) == 1, first.log[-3000:]
        assert str(out / "products.jsonl") in lines[0] and "No space left on device" in lines[0]
        assert "Traceback" not in first.log
        assert first.stats["finish_reason"] == "tmapi_write_failed"
        assert not list(out.glob("*.part"))  # no half-written summary left behind
        assert first.stats.get("tmapi/write_failed", 0) >= 1
        summary = json.loads((tmp_path / "first.summary.json").read_text(encoding="utf-8"))
        assert summary["finish_reason"] == "tmapi_write_failed"
        assert summary["write_failed"] == f"{out / 'products.jsonl'}: No space left on device"
        assert summary["totals"]["images_done"] == 0  # nothing reported done that may not be written
        assert {i["status"] for i in summary["images"]} <= {"unfinished", "failed"}
        paid_first = calls_made(sandbox)
        assert 0 < paid_first

        grow(out, "16m")  # room again: the same command
        del job.settings["TMAPI_SUMMARY_FILE"]
        second = job.run()
        assert second.returncode == outcome.OK, second.log[-3000:]
        records = job.records()
        assert len(records) == len(set(records)) == 10 * 100 + 2 * 60
        assert job.failures() == []
        assert paid_again(sandbox) == 0 and calls_made(sandbox) == CALLS  # nothing paid twice
        summary = json.loads((out / "products.summary.json").read_text(encoding="utf-8"))
        assert summary["finish_reason"] == "finished" and summary["write_failed"] is None


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, sandbox: SandboxThread) -> set[Key]:
    """What one local process finds for the distributed tests' images."""
    seeds = tmp_path_factory.mktemp("seeds") / "images.txt"
    seeds.write_text("\n".join(DISTRIBUTED_IMAGES) + "\n", encoding="utf-8")
    from tests.crawl_helpers import crawl

    result = crawl(tmp_path_factory.mktemp("single"), sandbox.base_url, args={"urls_file": str(seeds)})
    assert result.returncode == 0, result.stderr[-2000:]
    keys = {key_of(p) for p in result.products}
    assert len(keys) == len(result.products) > 100
    return keys


def feed_keys(folder: Path) -> list[Key]:
    return [
        key_of(p)
        for path in sorted(folder.glob("products-*.jsonl"))
        if ".failures." not in path.name
        for p in whole_records(path)
    ]


def test_a_workers_full_disk_gives_its_unwritten_work_back_and_another_worker_completes_the_job(
    tmp_path: Path, redis_server: RedisServer, sandbox: SandboxThread, reference: set[Key]
) -> None:
    full = Cluster(tmp_path / "a", redis_server.url, sandbox.base_url, "disk-full")
    roomy = Cluster(tmp_path / "b", redis_server.url, sandbox.base_url, "disk-full")
    for cluster in (full, roomy):
        cluster.tmp.mkdir()
    push_seeds(full.job_api(redis_server))
    with small_disk(full.out, "48k"):
        full.start(1)
        assert full.wait() == [outcome.WRITE_FAILED], full.log_text()[-3000:]
        log = full.log_text()
        lines = [line for line in log.splitlines() if "Could not write" in line]
        assert len(lines) == 1 and "No space left on device" in lines[0], log[-3000:]
        assert "Traceback" not in log
        assert "unfinished leases back to the job" in log  # not acknowledged: given back
        written_by_full = feed_keys(full.out)
        assert written_by_full  # it did write some before the disk filled

        roomy.start(1)
        assert roomy.wait() == [0], roomy.log_text()[-3000:]
        everything = written_by_full + feed_keys(roomy.out)
    assert set(everything) == reference  # nothing lost for good


def test_redis_out_of_memory_stops_the_worker_with_exit_4_and_a_restart_completes_the_job(
    tmp_path: Path, sandbox: SandboxThread, reference: set[Key]
) -> None:
    with RedisServer() as server:
        client = server.client()
        cluster = Cluster(tmp_path, server.url, sandbox.base_url, "oom")
        api = cluster.job_api(server)
        push_seeds(api)
        slow = {"DOWNLOAD_DELAY": "0.05", "CONCURRENT_REQUESTS": "2"}
        cluster.start(1, extra=slow)
        # Mid-job (some pages acknowledged, more queued), Redis reaches its maxmemory.
        wait_until(lambda: int(client.hget(cluster.job_api(server).keys.stats, "pages") or 0) >= 3, what="pages")
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) - 1024))
        codes = cluster.wait()
        log = cluster.log_text()
        assert codes == [outcome.REDIS_DOWN], log[-3000:]
        lines = [line for line in log.splitlines() if "Redis is out of memory (maxmemory)" in line]
        assert len(lines) == 1, log[-3000:]
        assert "Traceback" not in log
        assert api.work_left() > 0  # the job is not reported finished: its keys are all there

        client.config_set("maxmemory", "0")  # memory raised: the same workers again
        time.sleep(2.5)  # the stopped worker's leases expire (TMAPI_REDIS_LEASE 2)
        cluster.start(2)
        assert cluster.wait() == [0, 0], cluster.log_text()[-3000:]
        assert set(feed_keys(cluster.out)) == reference  # nothing lost


def test_scrapy_seed_into_a_full_redis_is_one_line_exit_4_and_a_second_push_completes(tmp_path: Path) -> None:
    """Redis at maxmemory refuses a batch of seeds: one line and exit 4, never a traceback and exit 1;
    once there is room, pushing the same list again adds what was refused and skips what was kept."""
    urls = [f"https://cbu01.alicdn.com/img/ibank/O1CN01{i:08d}_!!2200000000000-0-cib.jpg" for i in range(30000)]
    seed_list = tmp_path / "list.txt"
    seed_list.write_text("\n".join(urls) + "\n")
    with RedisServer() as server:
        client = server.client()
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) + 1_000_000))
        args = ["seed", str(seed_list), "-s", f"REDIS_URL={server.url}", "-s", "TMAPI_JOB=full"]
        proc = scrapy(args, "http://127.0.0.1:9", stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == outcome.REDIS_DOWN, stderr[-2000:]
        assert stderr.strip().splitlines() == [
            f"error: Redis at {server.url} is out of memory (maxmemory) and refused the seeds: raise maxmemory"
            " or free memory, then run scrapy seed again (seeds already pushed are kept and skipped)"
        ]
        client.config_set("maxmemory", "0")
        again = scrapy(args, "http://127.0.0.1:9", stderr=subprocess.PIPE)
        stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr[-2000:]
    pushed, known = (int(n) for n in re.findall(r"(\d+) seeds pushed, (\d+) already in the job", stdout)[0])
    assert pushed + known == len(urls), stdout

"""A distributed worker's progress line says what it knows: its own images, pages and calls,
and where the job's progress is (`scrapy job`), never a total of 0 (`images 16/0 done`) or
more pages than "expected" (`pages 106/95`), which it cannot know: its seeds come from
Redis and other workers fetch pages of the same images."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, scrapy
from tests.redis_server import RedisServer
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

URLS = [f"https://cbu01.alicdn.com/img/ibank/worker-progress-{i}/total-60.jpg" for i in range(4)]


def test_a_workers_progress_lines_claim_no_total_it_cannot_know(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(URLS) + "\n")
    with SandboxThread(SandboxConfig(latency=0.05)) as sb, RedisServer() as redis_server:
        common = ["-s", f"REDIS_URL={redis_server.url}", "-s", "TMAPI_JOB=progress"]
        common += [arg for k, v in QUICK_WORKER_SETTINGS.items() for arg in ("-s", f"{k}={v}")]
        assert scrapy(["seed", str(seeds), *common], sb.base_url).wait(60) == 0
        worker = scrapy(
            ["crawl", "image_search", "-o", str(tmp_path / "w.jsonl"), "-s", "TMAPI_PROGRESS_INTERVAL=0.2", *common],
            sb.base_url,
            stderr=subprocess.PIPE,
        )
        _, stderr = worker.communicate(timeout=120)
    assert worker.returncode == 0, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if "progress" in line and "paid calls" in line]
    assert lines
    assert not [line for line in lines if re.search(r"images \d+/\d+|expected|ETA", line)], lines[-1]
    last = lines[-1]
    assert "scrapy job" in last and "images 4 done" in last and "pages 12," in last, last

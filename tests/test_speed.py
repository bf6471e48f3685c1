"""Issue 17's behaviours that make the crawl cheap, checked by what they do, never by time.

Real crawls against the bundled sandbox and real redis-servers; the figures themselves
(CPU per page, CPU a second, Redis commands per page, rates) are benchmarks/speed.py's.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.crawl_helpers import crawl
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread


def stat(stderr: str, name: str) -> int:
    match = re.search(rf"'{re.escape(name)}': (\d+)", stderr)
    assert match, f"no {name} in the crawl's stats"
    return int(match.group(1))


def test_the_seed_loop_holds_a_long_list_out_of_the_scheduler(tmp_path: Path) -> None:
    # 150 one-page images through 4 download slots: start() is read only when the engine
    # has room, so the scheduler never holds more than a few requests, and every image is crawled.
    urls = [f"https://cbu01.alicdn.com/img/seedloop/{i}/total-20.jpg" for i in range(150)]
    seeds = tmp_path / "images.txt"
    seeds.write_text("\n".join(urls) + "\n", encoding="utf-8")
    with SandboxThread(SandboxConfig(latency=0.02, seed=5)) as api:
        result = crawl(
            tmp_path,
            api.base_url,
            {"urls_file": str(seeds)},
            {
                "CONCURRENT_REQUESTS": 4,
                "AUTOTHROTTLE_ENABLED": False,
                "EXTENSIONS": '{"tests.probes.SchedulerProbe": 900}',
            },
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p["query_image_url"] for p in result.products} == set(urls)
    assert len(result.products) == 150 * 20
    assert 1 <= stat(result.stderr, "probe/max_scheduled") <= 4

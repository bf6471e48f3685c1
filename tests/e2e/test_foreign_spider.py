"""Our extensions stay out of spiders that are not ours: a user's own spider run in this
project (`scrapy runspider`, the project's settings and EXTENSIONS apply) gets no progress
lines, no run summary, no HTML report and no failures feed; only the log redaction stays."""

from __future__ import annotations

import json
from pathlib import Path

from tests.crawl_helpers import run_scrapy, scrapy_env
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

SPIDER = """
import scrapy


class Mine(scrapy.Spider):
    name = "mine"

    async def start(self):
        yield scrapy.Request(URL)

    def parse(self, response):
        yield {"status": response.status, "calls": response.json()["total_calls"]}
"""


def test_a_users_own_spider_gets_none_of_our_extensions(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig()) as sb:
        spider = tmp_path / "mine.py"
        spider.write_text(SPIDER.replace("URL", repr(f"{sb.base_url}/_sandbox/stats")))
        out = tmp_path / "out.jsonl"
        settings = {
            "TMAPI_PROGRESS_INTERVAL": "0.1",
            "TMAPI_REPORT": "true",
            "TMAPI_OUTPUT_DIR": tmp_path / "output",
            "TMAPI_CACHE_DIR": tmp_path / "store",
        }
        proc = run_scrapy(
            ["runspider", str(spider), "-O", str(out)]
            + [arg for name, value in settings.items() for arg in ("-s", f"{name}={value}")],
            scrapy_env(sb.base_url),
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [json.loads(line)["status"] for line in out.read_text().splitlines()] == [200]
    for ours in ("TmapiProgress", "TmapiRunSummary", "TmapiReport", "progress: images", "Run summary"):
        assert ours not in proc.stderr, ours
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py", "out.jsonl"]

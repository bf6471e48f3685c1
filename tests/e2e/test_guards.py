"""A user's own `-s EXTENSIONS` does not switch off log redaction.

`-s EXTENSIONS` replaces the project's dict whole; log redaction sits in EXTENSIONS_BASE
(tmapi_spiders/settings.py), which Scrapy merges with whatever EXTENSIONS says.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.crawl_helpers import crawl
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "tok-Guarded-9Vq2-livekey"
REDACTION = "tmapi_spiders.extensions.redaction.LogRedaction"


def enabled_extensions(log: str) -> str:
    found = re.search(r"Enabled extensions:\n(\[.*?\])", log, re.S)
    assert found, "no 'Enabled extensions' list in the log"
    return found.group(1)


def test_user_extensions_keep_redaction(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("https://cbu01.alicdn.com/img/guards-1.jpg?total=40\n")
    user_extensions = {"scrapy.extensions.logstats.LogStats": 0}
    config = SandboxConfig(
        tokens=(TOKEN,), latency=0.0, echo_errors=True, fault_rate=0.5, fault_kinds=("echo",), seed=3
    )
    with SandboxThread(config) as sandbox:
        result = crawl(
            tmp_path,
            sandbox.base_url,
            args={"urls_file": str(seeds)},
            token=TOKEN,
            settings={"EXTENSIONS": json.dumps(user_extensions), "LOG_LEVEL": "DEBUG", "TMAPI_CACHE": "false"},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    extensions = enabled_extensions(result.stderr)
    assert REDACTION in extensions
    assert "scrapy.extensions.logstats.LogStats" in extensions  # the user's own still runs
    assert len(result.products) == 40
    assert TOKEN not in result.stderr + result.stdout

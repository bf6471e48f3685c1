"""The sandbox is an extra: without aiohttp, `-s TMAPI_SANDBOX=true` is one line naming the
fix (exit 2, nothing written), and a crawl of any other server works. The crawl's process
refuses every import of aiohttp, as where the extra is not installed. (Scrapy 2.19 and later
require aiohttp themselves, for their remote control extension, which the project keeps off:
the crawl without aiohttp leaves it out of EXTENSIONS_BASE, as older Scrapy releases do.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scrapy.utils.project import get_project_settings

from tests.conftest import SANDBOX_TOKEN
from tests.crawl_helpers import REPO, read_jsonl, scrapy_env
from tmapi_spiders.sandbox import SandboxThread
from tmapi_spiders.sandbox.addon import NO_EXTRA

WITHOUT_AIOHTTP = """
import sys

class NoAiohttp:
    def find_spec(self, name, path=None, target=None):
        if name == "aiohttp" or name.startswith("aiohttp."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoAiohttp())
from scrapy.cmdline import execute

execute()
"""


REMOTE_CONTROL = "scrapy.extensions.remote_control.RemoteControl"


def crawl_without_aiohttp(tmp_path: Path, base_url: str, *settings: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", WITHOUT_AIOHTTP, "crawl", "image_search", "-O", str(tmp_path / "p.jsonl")]
    extensions = get_project_settings().getdict("EXTENSIONS_BASE")
    if REMOTE_CONTROL in extensions:
        del extensions[REMOTE_CONTROL]
        cmd += ["-s", f"EXTENSIONS_BASE={json.dumps(extensions)}"]
    cmd += ["-a", "urls=https://cbu01.alicdn.com/img/ibank/extra/total-12.jpg"]
    cmd += ["-s", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}"]
    for setting in settings:
        cmd += ["-s", setting]
    env = scrapy_env(base_url, SANDBOX_TOKEN)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_the_sandbox_without_its_extra_is_one_line(tmp_path: Path) -> None:
    done = crawl_without_aiohttp(tmp_path, "http://127.0.0.1:9", "TMAPI_SANDBOX=true")
    assert done.returncode == 2, done.stderr[-2000:]
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [f"error: {NO_EXTRA}"]
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_crawl_needs_no_aiohttp(tmp_path: Path, sandbox: SandboxThread) -> None:
    done = crawl_without_aiohttp(tmp_path, sandbox.base_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(read_jsonl(tmp_path / "p.jsonl")) == 12
    assert sandbox.stats()["total_calls"] >= 1

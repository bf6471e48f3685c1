"""`scrapy shell` and `scrapy view` on an API URL send the token as a crawl does, and never
print it (`scrapy fetch` is in tests/e2e/test_auth.py). Both run as real subprocesses against
a sandbox that accepts only the test's token: a 200 proves the token went out."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.crawl_helpers import REPO, scrapy_env
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "tok-Shell-4Kp8-view"
IMAGE = "https://cbu01.alicdn.com/img/ibank/shell-view/total-33.jpg"


def _search_url(base_url: str) -> str:
    return f"{base_url}/1688/global/search/image?img_url={IMAGE}&page=1"


def test_scrapy_shell_sends_the_token_and_never_prints_it(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(tokens=(TOKEN,))) as sb:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scrapy",
                "shell",
                _search_url(sb.base_url),
                "-s",
                "LOG_LEVEL=DEBUG",
                "-c",
                "(response.status, response.url, response.json()['data']['total_count'])",
            ],
            cwd=REPO,
            env=scrapy_env(sb.base_url, TOKEN),
            capture_output=True,
            text=True,
            timeout=60,
        )
        statuses = sb.stats()["statuses"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the answer is the sandbox's 200 for this image, under the URL asked for (no token in it)
    assert proc.stdout.strip() == repr((200, _search_url(sb.base_url), 33)), proc.stdout
    assert statuses == {"200": 1}, statuses
    assert TOKEN not in proc.stdout + proc.stderr


def test_scrapy_view_sends_the_token_and_never_prints_it(tmp_path: Path) -> None:
    # BROWSER: a "browser" that copies the page scrapy view opens, so the test can read it.
    opened = tmp_path / "opened.html"
    browser = tmp_path / "browser.sh"
    # scrapy view opens a file:// URL of the page it saved
    browser.write_text(f'#!/bin/sh\ncat "${{1#file://}}" > {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    with SandboxThread(SandboxConfig(tokens=(TOKEN,))) as sb:
        env = scrapy_env(sb.base_url, TOKEN)
        env["BROWSER"] = f"{browser} %s"
        proc = subprocess.run(
            [sys.executable, "-m", "scrapy", "view", "-s", "LOG_LEVEL=DEBUG", _search_url(sb.base_url)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        statuses = sb.stats()["statuses"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert statuses == {"200": 1}, statuses
    page = opened.read_text(encoding="utf-8")
    assert '"total_count":33' in page.replace(" ", "")
    assert TOKEN not in proc.stdout + proc.stderr + page
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert os.environ.get("TMAPI_API_TOKEN", "") != TOKEN  # the token was given to the child only

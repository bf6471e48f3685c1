"""scrapyd round trip: a real scrapyd, the project deployed with scrapyd-deploy, a crawl
scheduled against the sandbox, its items read back."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import REPO, read_jsonl
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

BIN = Path(sys.executable).parent
TOKEN = "tok-SCRAPYD-secret-31"
PROJECT = "tmapi_spiders"
URLS = [
    "https://cbu01.alicdn.com/img/ibank/scrapyd-a/total-30.jpg",
    "https://shop.example.com/photos/scrapyd-b/total-7.jpg",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, data: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def scrapyd(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A scrapyd on a free port with its own config and directories; stopped after the test."""
    home = tmp_path / "scrapyd"
    home.mkdir()
    port = free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"http_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {home / 'logs'}\n"
        f"items_dir = {home / 'items'}\n"
        f"dbs_dir = {home / 'dbs'}\n"
        "max_proc = 1\n"
        "poll_interval = 0.2\n",
        encoding="utf-8",
    )
    # The token reaches the crawl through scrapyd's environment, never through `setting=`
    # (scrapyd logs the command line of every job it starts).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "SCRAPY_"))}
    env["TMAPI_API_TOKEN"] = TOKEN
    log = (home / "scrapyd.out").open("wb")
    proc = subprocess.Popen([str(BIN / "scrapyd")], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(url + "daemonstatus.json")["status"] == "ok":
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, (home / "scrapyd.out").read_text()
            assert time.monotonic() < deadline, "scrapyd did not start within 30 s"
            time.sleep(0.2)
        yield url, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def deploy(tmp_path: Path, url: str) -> None:
    """scrapyd-deploy from a copy of the project (it writes setup.py and build files where it runs)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "scrapy.cfg")
    assert cfg.get("deploy", "project") == PROJECT  # the repo's deploy target
    cfg.set("deploy", "url", url)
    project = tmp_path / "project"
    shutil.copytree(REPO / "tmapi_spiders", project / "tmapi_spiders", ignore=shutil.ignore_patterns("__pycache__"))
    with (project / "scrapy.cfg").open("w", encoding="utf-8") as f:
        cfg.write(f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "SCRAPY_"))}
    done = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "-v", "r1"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == "ok" and "image_search" in call(url + f"listspiders.json?project={PROJECT}")["spiders"]


def test_deploy_schedule_and_read_the_items(tmp_path: Path, scrapyd: tuple[str, Path]) -> None:
    url, home = scrapyd
    with SandboxThread(SandboxConfig(tokens=(TOKEN,))) as sandbox:
        deploy(tmp_path, url)
        scheduled = call(
            url + "schedule.json",
            [
                ("project", PROJECT),
                ("spider", "image_search"),
                ("urls", ",".join(URLS)),
                ("setting", f"TMAPI_BASE_URL={sandbox.base_url}"),
                ("setting", "TMAPI_BACKOFF_BASE=0.05"),
                ("setting", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}"),
            ],
        )
        assert scheduled["status"] == "ok", scheduled
        job = scheduled["jobid"]
        deadline = time.monotonic() + 120
        while True:
            jobs = call(url + f"listjobs.json?project={PROJECT}")
            if any(j["id"] == job for j in jobs["finished"]):
                break
            assert time.monotonic() < deadline, f"the job did not finish within 120 s: {jobs}"
            time.sleep(0.3)
        calls = sandbox.stats()["total_calls"]

    job_dir = home / "items" / PROJECT / "image_search"
    products = read_jsonl(job_dir / f"{job}.jl")
    log = (home / "logs" / PROJECT / "image_search" / f"{job}.log").read_text(encoding="utf-8")
    assert len(products) == 30 + 7, log[-3000:]
    assert {p["query_image_url"] for p in products} == set(URLS)
    assert read_jsonl(job_dir / f"{job}.failures.jsonl") == []
    summary = json.loads((job_dir / f"{job}.summary.json").read_text(encoding="utf-8"))
    assert summary["finish_reason"] == "finished" and summary["totals"]["items"] == 37
    assert summary["totals"]["paid_calls"] == calls == 2 + 1 + 1  # pages of a, conversion and page of b
    assert "Spider closed (finished)" in log
    # the token reached the API through the environment, and is in none of scrapyd's files
    written = [p for p in home.rglob("*") if p.is_file()]
    assert not [p for p in written if TOKEN.encode() in p.read_bytes()]

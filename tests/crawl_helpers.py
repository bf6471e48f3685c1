"""Run real `scrapy crawl` subprocesses against a sandbox and read what they wrote."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler

from tests.scrapy_server import REPO, ScrapyProcess, run_scrapy, start_scrapy

__all__ = ["REPO", "run_scrapy"]  # for the tests that import them from here
TOKEN = "sandbox"


# Distributed workers that notice things fast: short leases, polls and idle time.
QUICK_WORKER_SETTINGS = {
    "MAX_IDLE_TIME_BEFORE_CLOSE": "1",
    "TMAPI_REDIS_POLL_INTERVAL": "0.2",
    "TMAPI_REDIS_LEASE": "2",
    "TMAPI_REDIS_ACK_INTERVAL": "0.05",
    "TMAPI_BACKOFF_BASE": "0.05",
    "CONCURRENT_REQUESTS": "3",
    "AUTOTHROTTLE_ENABLED": "false",
}


@dataclass
class CrawlResult:
    returncode: int
    stdout: str
    stderr: str
    products: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # The crawl's final Scrapy stats, from the JSON file TMAPI_STATS_FILE wrote ({}: none written).
    stats: dict[str, Any] = field(default_factory=dict)
    crawler: Crawler | None = None  # an in-process crawl's (tests/in_process.py)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def stats_path(tmp_path: Path) -> Path:
    """Where `crawl` has the crawl write its stats (TMAPI_STATS_FILE): beside tmp_path, not
    in it, so tests that list what a crawl wrote into tmp_path do not see it."""
    return tmp_path.parent / f"{tmp_path.name}.stats.json"


def read_stats(path: Path) -> dict[str, Any]:
    """A crawl's final stats as TMAPI_STATS_FILE wrote them ({} when it wrote none). Tests
    read stats here, never from the log's dump: a key absent here was never set."""
    if not path.exists():
        return {}
    stats: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return stats


def scrapy_env(base_url: str, token: str = TOKEN) -> dict[str, str]:
    """This environment without TMAPI_* and REDIS_* variables, with the token and API base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN=token, TMAPI_BASE_URL=base_url)
    return env


def scrapy(args: list[str], base_url: str, token: str = TOKEN, **popen: Any) -> ScrapyProcess | subprocess.Popen[str]:
    """`python -m scrapy ARGS` in the repo, started and not waited for (stdout piped unless
    `popen` says otherwise: stdin, stdout, stderr): the distributed tests' workers."""
    popen.setdefault("stdout", subprocess.PIPE)
    return start_scrapy(args, scrapy_env(base_url, token), **popen)


def crawl(
    tmp_path: Path,
    base_url: str | None,
    args: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    output: str = "products.jsonl",
    token: str | None = TOKEN,
    extra: list[str] | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> CrawlResult:
    """`scrapy crawl image_search` in the repo, writing into tmp_path."""
    out = tmp_path / output
    cmd = ["crawl", "image_search", "-O", str(out)]
    for key, value in (args or {}).items():
        cmd += ["-a", f"{key}={value}"]
    stats_file = stats_path(tmp_path)
    stats_file.unlink(missing_ok=True)  # an earlier crawl's, in the same tmp_path
    merged = {
        "TMAPI_OUTPUT_DIR": str(tmp_path / "output"),
        "TMAPI_BACKOFF_BASE": "0.05",
        "TMAPI_STATS_FILE": str(stats_file),
    }
    merged.update({k: str(v) for k, v in (settings or {}).items()})
    for key, value in merged.items():
        cmd += ["-s", f"{key}={value}"]
    cmd += extra or []
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TMAPI_")}
    if token is not None:
        full_env["TMAPI_API_TOKEN"] = token
    if base_url is not None:
        full_env["TMAPI_BASE_URL"] = base_url
    full_env.update(env or {})
    proc = run_scrapy(cmd, full_env, timeout=timeout)
    result = CrawlResult(proc.returncode, proc.stdout, proc.stderr, stats=read_stats(stats_file))
    if output.endswith(".jsonl"):
        result.products = read_jsonl(out)
        result.failures = read_jsonl(out.with_name(out.name[: -len(".jsonl")] + ".failures.jsonl"))
    result.files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    return result

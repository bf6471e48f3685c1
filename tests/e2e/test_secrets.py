"""The API token never lands anywhere: every file, log line, stat and Redis key is searched.

One test, in each TMAPI_AUTH mode against a server that takes the token that way, runs
crawls with DEBUG logging, a feed of every format, the HTTP cache on, distributed mode
(a private redis-server), a fatal error (a token whose balance is gone), and a server
whose error answers quote the request's headers and query back (the token in them),
then greps everything they left behind for both tokens.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.crawl_helpers import run_scrapy
from tests.redis_server import RedisServer, contents
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "tok-Secret-7Qx9-livekey"
BROKE = "tok-Secret-Broke-4Zk2"
FORMATS = ("jsonlines", "jsonl", "json", "csv", "xml", "marshal", "pickle")
IMAGES = [f"https://cbu01.alicdn.com/img/secret-{i}.jpg?total=45" for i in range(3)]
IMAGES.append("https://images.example-shop.com/secret.jpg?total=25")  # converted first (POST body)
DENIED = "https://denied.example-shop.com/secret.jpg"  # a failure record whose message the server echoed into


def run(args: list[str], token: str, base_url: str, cwd: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN=token, TMAPI_BASE_URL=base_url)  # TMAPI_AUTH is a setting, not read from the environment
    return run_scrapy([*args, "-s", f"TMAPI_AUTH={mode}"], env, timeout=120)


def settings_args(values: dict[str, object]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("-s", f"{key}={value}")]


def needles(token: str) -> list[bytes]:
    return [token.encode(), quote(token, safe="").encode(), token.encode("utf-16-le")]


@pytest.mark.parametrize(("mode", "server"), [("auto", "query"), ("header", "header"), ("query", "both")])
def test_token_appears_in_no_file_log_stat_or_redis_key(tmp_path: Path, mode: str, server: str) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join([*IMAGES, DENIED]) + "\n")
    outputs: list[str] = []
    config = SandboxConfig(
        tokens=(TOKEN,),
        broke_tokens=(BROKE,),
        latency=0.01,
        auth=server,
        echo_errors=True,
        deny_patterns=(r"denied\.example",),
        fault_rate=0.15,
        fault_kinds=("echo", "500", "html", "gateway"),
        seed=4,
    )
    with SandboxThread(config) as sandbox, RedisServer() as redis_server:
        common = {
            "LOG_LEVEL": "DEBUG",
            "TMAPI_CACHE": "true",
            "TMAPI_CACHE_DIR": tmp_path / "cache",
            "TMAPI_OUTPUT_DIR": tmp_path / "output",
            "TMAPI_BACKOFF_BASE": 0.01,
            "STATS_DUMP": "true",
            "TMAPI_STATS_FILE": tmp_path / "stats" / "%(name)s-%(worker)s.json",
        }
        feeds = {str(tmp_path / "single" / f"products.{fmt}"): {"format": fmt} for fmt in FORMATS}
        every_format = settings_args({**common, "FEEDS": json.dumps(feeds)})
        single = run(
            ["crawl", "image_search", "-a", f"urls_file={seeds}", *every_format],
            TOKEN,
            sandbox.base_url,
            tmp_path,
            mode,
        )
        assert single.returncode == 0, single.stderr[-2000:]
        again = run(  # the same list again: answered from the HTTP cache
            ["crawl", "image_search", "-a", f"urls_file={seeds}", "-O", str(tmp_path / "again.jsonl"),
             *settings_args(common)],
            TOKEN,
            sandbox.base_url,
            tmp_path,
            mode,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-2000:]
        assert json.loads((tmp_path / "stats" / "image_search-.json").read_text())["httpcache/hit"] > 0
        distributed = {**common, "REDIS_URL": redis_server.url, "TMAPI_JOB": "secrets", "MAX_IDLE_TIME_BEFORE_CLOSE": 1}
        seeded = run(["seed", str(seeds), *settings_args(distributed)], TOKEN, sandbox.base_url, tmp_path, mode)
        assert seeded.returncode == 0, seeded.stderr[-2000:]
        worker = run(
            ["crawl", "image_search", "-o", str(tmp_path / "dist" / "products-%(worker)s.jsonl"),
             *settings_args({**distributed, "TMAPI_CACHE": "false"})],
            TOKEN,
            sandbox.base_url,
            tmp_path,
            mode,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr[-2000:]
        fatal = run(
            ["crawl", "image_search", "-a", f"urls_file={seeds}", "-O", str(tmp_path / "fatal.jsonl"),
             *settings_args({**common, "TMAPI_CACHE": "false"})],
            BROKE,
            sandbox.base_url,
            tmp_path,
            mode,
        )  # fmt: skip
        assert fatal.returncode == 3, fatal.stderr[-2000:]
        assert "TMAPI refused the crawl" in fatal.stderr
        for proc in (single, again, seeded, worker, fatal):
            outputs += [proc.stdout, proc.stderr]
        redis_dump = contents(redis_server.client())
    # Sanity: the searches really happened and really used the token.
    products = [json.loads(line) for line in (tmp_path / "single" / "products.jsonl").read_text().splitlines()]
    assert len(products) == 3 * 45 + 25
    failures = (tmp_path / "single" / "products.failures.jsonl").read_text()
    assert "denied.example-shop.com" in failures and "request headers were" in failures  # the echo was there
    assert "[redacted]" in failures
    assert "DEBUG" in single.stderr and "Crawled (200)" in single.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("cache" in p.parts for p in files)
    assert len([p for p in files if "stats" in p.parts]) == 2  # one process, one worker (the rest overwrote)
    assert {p.suffix for p in files} >= {".jsonlines", ".jsonl", ".json", ".csv", ".xml", ".marshal", ".pickle"}
    haystacks: dict[str, bytes] = {str(p): p.read_bytes() for p in files}
    haystacks.update({f"process output {i}": text.encode() for i, text in enumerate(outputs)})
    haystacks["redis"] = redis_dump
    hits = [
        (where, token)
        for where, data in haystacks.items()
        for token in (TOKEN, BROKE)
        for needle in needles(token)
        if needle in data
    ]
    assert hits == []


def test_scrapy_warnings_quoting_the_signed_url_reach_the_terminal_redacted(tmp_path: Path) -> None:
    """Scrapy's download handler names the request it sent, the signed copy with the token in its query,
    when a body passes DOWNLOAD_MAXSIZE: only the log filter stands between that warning and the terminal."""
    config = SandboxConfig(tokens=(TOKEN,), auth="query", fault_rate=1.0, fault_kinds=("huge",), compress="none")
    with SandboxThread(config) as sandbox:
        proc = run(
            ["crawl", "image_search", "-a", f"urls={IMAGES[0]}", "-O", str(tmp_path / "products.jsonl"),
             *settings_args({"RETRY_TIMES": 0, "TMAPI_CACHE": "false"})],
            TOKEN,
            sandbox.base_url,
            tmp_path,
            "query",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "larger than download max size" in proc.stderr  # the warning that quotes the signed URL was logged
    assert "apiToken=[redacted]" in proc.stderr
    output = (proc.stdout + proc.stderr).encode()
    assert [needle for needle in needles(TOKEN) if needle in output] == []

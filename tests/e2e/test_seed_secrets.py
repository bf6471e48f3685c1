"""Seed lines carrying the API token or URL credentials are bad lines, never searched or seeded.

A seed list is user input: a URL copied from a browser can carry `?key=<token>` or
`user:pass@`. Searching it would send the secret to TMAPI as an image URL and write it
into every feed; seeding it would put it in Redis, where the request serializer refuses
it and the seed's lease used to be renewed forever. Each such line is reported by number
and reason, never by its text.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, scrapy
from tests.redis_server import RedisServer, contents
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.seed_reading import parse_lines
from tmapi_spiders.crawl.seeds import CREDENTIALS_REASON, TOKEN_REASON, BadLine, Seed, check_image_url
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

SECRET = "tok-Seed/Secret+91"  # `/` and `+` so its percent-encoded forms differ from it
GOOD = "https://cbu01.alicdn.com/img/ibank/good.jpg?total=25"
LINES = [
    GOOD,
    f"https://cbu01.alicdn.com/a.jpg?k={SECRET}",
    f"https://cbu01.alicdn.com/a.jpg?k={quote(SECRET, safe='')}",
    f"https://cbu01.alicdn.com/a.jpg?k={quote(SECRET, safe='').lower()}",
    f"https://{SECRET}.example.com/a.jpg",
    "https://user:hunter2-pw@cbu01.alicdn.com/b.jpg",
    "https://user@cbu01.alicdn.com/c.jpg",
    f"/search/{SECRET}.jpg",
]
EXPECTED = [(2, TOKEN_REASON), (3, TOKEN_REASON), (4, TOKEN_REASON), (5, TOKEN_REASON)]
EXPECTED += [(6, CREDENTIALS_REASON), (7, CREDENTIALS_REASON), (8, TOKEN_REASON)]


def write_list(tmp_path: Path) -> Path:
    path = tmp_path / "images.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_lines_with_the_token_or_credentials_are_bad_lines_with_their_reason() -> None:
    entries = list(parse_lines((line.encode() for line in LINES), Redactor([SECRET])))
    assert entries[0] == Seed(GOOD, 1)
    assert [(e.line, e.reason) for e in entries[1:] if isinstance(e, BadLine)] == EXPECTED
    assert all(SECRET not in e.reason for e in entries if isinstance(e, BadLine))
    assert check_image_url(GOOD, Redactor([SECRET])) is None
    # without a token only the credentials are refused
    assert check_image_url(LINES[1]) is None and check_image_url(LINES[5]) == CREDENTIALS_REASON


def test_a_local_crawl_skips_them_naming_line_and_reason_never_the_token(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(tokens=(SECRET,))) as sandbox:
        result = crawl(tmp_path, sandbox.base_url, args={"urls_file": str(write_list(tmp_path))}, token=SECRET)
        calls = sandbox.stats()["total_calls"]
    assert result.returncode == 0, result.stderr[-2000:]
    for line, reason in EXPECTED:
        assert f"urls_file '{tmp_path / 'images.txt'}' line {line} skipped: {reason}" in result.stderr
    assert {p["query_image_url"] for p in result.products} == {GOOD} and calls == 2
    written = (
        result.stdout
        + result.stderr
        + "".join(p.read_text(errors="replace") for p in result.files if p.name != "images.txt")
    )
    assert SECRET not in written and quote(SECRET, safe="") not in written and "hunter2-pw" not in written


def test_a_worker_seeding_the_job_skips_them_naming_line_and_reason_never_the_token(tmp_path: Path) -> None:
    job = "worker-secrets"
    with RedisServer() as server, SandboxThread(SandboxConfig(tokens=(SECRET,))) as sandbox:
        settings = {**QUICK_WORKER_SETTINGS, "REDIS_URL": server.url, "TMAPI_JOB": job}
        args = {"urls_file": str(write_list(tmp_path))}
        result = crawl(tmp_path, sandbox.base_url, args=args, settings=settings, token=SECRET)
        dump = contents(server.client(), JobKeys.for_job(job).pattern).decode()
    assert result.returncode == 0, result.stderr[-2000:]
    for line, reason in EXPECTED:
        assert f"urls_file '{tmp_path / 'images.txt'}' line {line} skipped: {reason}" in result.stderr
    assert {p["query_image_url"] for p in result.products} == {GOOD}
    assert result.stats["tmapi/seeds_bad_line"] == len(EXPECTED)
    for needle in (SECRET, quote(SECRET, safe=""), "hunter2-pw"):
        assert needle not in result.stdout + result.stderr + dump


def test_scrapy_seed_refuses_them_and_nothing_secret_reaches_redis(tmp_path: Path) -> None:
    with RedisServer() as server:
        settings = ["-s", f"REDIS_URL={server.url}", "-s", "TMAPI_JOB=seed-secrets"]
        proc = scrapy(["seed", str(write_list(tmp_path)), *settings], "http://127.0.0.1:9", SECRET, stderr=-1)
        stdout, stderr = proc.communicate(timeout=60)
        dump = contents(server.client(), JobKeys.for_job("seed-secrets").pattern).decode()
    assert proc.returncode == 0, stderr
    assert "1 seeds pushed, 0 already in the job, 7 bad lines skipped" in stdout
    for line, reason in EXPECTED:
        assert f"line {line} skipped: {reason}" in stderr
    assert GOOD in dump
    for needle in (SECRET, quote(SECRET, safe=""), "hunter2-pw"):
        assert needle.lower() not in (stdout + stderr + dump).lower()

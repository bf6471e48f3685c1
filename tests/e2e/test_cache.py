"""TMAPI_CACHE: a re-run within the TTL pays nothing, errors are never cached, no token on disk."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import TextResponse
from scrapy.settings import Settings
from scrapy.utils.misc import load_object

from tests.crawl_helpers import crawl
from tests.in_process import crawl_in_process
from tmapi_spiders.api import contract
from tmapi_spiders.api.envelope import read_envelope
from tmapi_spiders.crawl.config import ConfigError, check_settings
from tmapi_spiders.jobs import answer_store, cache, outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

URLS = [
    "https://cbu01.alicdn.com/img/ibank/cache-a/total-45.jpg",
    "https://cbu01.alicdn.com/img/ibank/cache-b/total-0.jpg",
    "https://shop.example.com/photos/cache-c/total-21.jpg",  # converted first: the POST is cached too
]
CALLS = 3 + 1 + (1 + 2)
TOKEN = "tok-CACHE-5ecret-77"


def same_items(products: list[dict[str, Any]]) -> list[str]:
    """The records, without the time they were crawled at."""
    return sorted(json.dumps({k: v for k, v in p.items() if k != "crawled_at"}, sort_keys=True) for p in products)


def cache_settings(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"TMAPI_CACHE": "true", "TMAPI_CACHE_DIR": str(tmp_path / "cache"), **extra}


def test_a_cached_rerun_pays_nothing_and_yields_the_same_items(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(tokens=(TOKEN,))) as sandbox:
        args, settings = {"urls": ",".join(URLS)}, cache_settings(tmp_path)
        first = crawl_in_process(tmp_path / "1", sandbox.base_url, args, settings, token=TOKEN)
        assert first.returncode == outcome.OK, first.stderr[-3000:]
        assert sandbox.stats()["total_calls"] == CALLS
        sandbox.reset()
        second = crawl_in_process(tmp_path / "2", sandbox.base_url, args, settings, token=TOKEN)
        rerun_calls = sandbox.stats()["total_calls"]
    assert second.returncode == outcome.OK, second.stderr[-3000:]
    assert rerun_calls == 0
    assert second.stats["httpcache/hit"] == CALLS
    assert "tmapi/paid_calls" not in second.stats  # nothing was paid for
    assert len(first.products) == 45 + 21
    assert same_items(second.products) == same_items(first.products)
    summary = json.loads((tmp_path / "2" / "products.summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["paid_calls"] == 0 and summary["totals"]["cached_answers"] == CALLS

    # the token is nowhere in the cache (keys, metadata, bodies, headers), compressed or not
    entries = answer_store.stored_answers(str(tmp_path / "cache"))
    assert len(entries) == CALLS
    assert not [e for _at, e in entries if TOKEN.encode() in e]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if TOKEN.encode() in p.read_bytes()]
    assert TOKEN not in first.stderr + second.stderr


def test_errors_are_never_cached(tmp_path: Path) -> None:
    denied = "https://denied.example.net/photo.jpg"
    urls = [*URLS, denied]
    # every failed answer kind: HTTP errors, HTTP 200 with a bad code, and a cut-off body
    config = SandboxConfig(
        deny_patterns=(r"denied\.example\.net",), fault_rate=0.3, fault_kinds=("500", "code", "truncated"), seed=3
    )
    with SandboxThread(config) as sandbox:
        first = crawl_in_process(tmp_path / "1", sandbox.base_url, {"urls": ",".join(urls)}, cache_settings(tmp_path))
        stats = sandbox.stats()
        assert first.returncode == outcome.OK, first.stderr[-3000:]
        assert sum(stats["faults"].values()) > 0
        sandbox.reset()
        second = crawl_in_process(tmp_path / "2", sandbox.base_url, {"urls": ",".join(urls)}, cache_settings(tmp_path))
        calls = sandbox.calls()
    # only the denied conversion (a 422, an error) is asked again; every good answer came from the cache
    assert [(c["endpoint"], c["params"].get("url")) for c in calls] == [(contract.CONVERT_PATH, denied)]
    assert [f["query_image_url"] for f in second.failures] == [denied]
    assert same_items(second.products) == same_items(first.products)
    # and what is on disk is only good answers
    entries = answer_store.stored_answers(str(tmp_path / "cache"))
    assert len(entries) == CALLS
    for _at, entry in entries:
        _head, _, body = entry.partition(b"\n")
        assert read_envelope(200, body).ok


def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    url = "https://cbu01.alicdn.com/img/ibank/cache-ttl/total-5.jpg"
    settings = cache_settings(tmp_path, TMAPI_CACHE_TTL="1")
    with SandboxThread(SandboxConfig()) as sandbox:
        crawl_in_process(tmp_path / "1", sandbox.base_url, {"urls": url}, settings)
        time.sleep(1.5)  # the entry is now older than TMAPI_CACHE_TTL
        sandbox.reset()
        result = crawl_in_process(tmp_path / "2", sandbox.base_url, {"urls": url}, settings)
        calls = sandbox.stats()["total_calls"]
    assert result.returncode == outcome.OK
    assert calls == 1 and len(result.products) == 5


def test_store_is_on_by_default_in_one_process_only() -> None:
    """The project's own settings, completed by the spider as in a crawl: the answer store is on;
    a distributed worker (state in Redis) and the in-process sandbox (nothing paid) go without."""

    def completed(**chosen: str) -> Settings:
        settings = Settings()
        settings.setmodule("tmapi_spiders.settings", priority="project")
        for name, value in chosen.items():
            settings.set(name, value, priority="cmdline")
        cache.configure(settings)  # what the add-on does when the crawler applies its settings
        return settings

    on = completed()
    assert on.getbool("HTTPCACHE_ENABLED") and load_object(on["HTTPCACHE_POLICY"]) is cache.TmapiCachePolicy
    assert load_object(on["HTTPCACHE_STORAGE"]) is answer_store.AnswerStore
    assert not completed(TMAPI_CACHE="false").getbool("HTTPCACHE_ENABLED")
    assert not completed(REDIS_URL="redis://127.0.0.1:1/0").getbool("HTTPCACHE_ENABLED")
    assert completed(REDIS_URL="redis://127.0.0.1:1/0", TMAPI_CACHE="true").getbool("HTTPCACHE_ENABLED")
    # -s wins: an HTTPCACHE_* setting given on the command line is kept
    assert not completed(HTTPCACHE_ENABLED="false").getbool("HTTPCACHE_ENABLED")
    assert completed(HTTPCACHE_DIR="/tmp/elsewhere")["HTTPCACHE_DIR"] == "/tmp/elsewhere"


def test_s_httpcache_enabled_false_switches_the_store_off(tmp_path: Path) -> None:
    """`-s HTTPCACHE_ENABLED=false` is obeyed (the add-on set it back to True above -s)."""
    with SandboxThread(SandboxConfig(tokens=(TOKEN,))) as sandbox:
        args, settings = {"urls": ",".join(URLS)}, cache_settings(tmp_path, HTTPCACHE_ENABLED="false")
        for run in ("1", "2"):
            result = crawl_in_process(tmp_path / run, sandbox.base_url, args, settings, token=TOKEN)
            assert result.returncode == outcome.OK, result.stderr[-3000:]
        assert sandbox.stats()["total_calls"] == 2 * CALLS  # the second run paid again: no store
    assert answer_store.stored_answers(str(tmp_path / "cache")) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"TMAPI_CACHE": "true", "TMAPI_CACHE_TTL": "a day"}, "TMAPI_CACHE_TTL must be a number of seconds, 1 or more"),
        ({"TMAPI_CACHE": "true", "TMAPI_CACHE_TTL": "0"}, "TMAPI_CACHE_TTL must be a number of seconds, 1 or more"),
        ({"TMAPI_CACHE": "maybe"}, "TMAPI_CACHE must be one of auto, true, false"),
        ({"TMAPI_CACHE_MAX_MB": "-1"}, "TMAPI_CACHE_MAX_MB must be a number of megabytes, 0 or more"),
        ({"TMAPI_REFRESH": "later"}, "TMAPI_REFRESH must be true or false"),
    ],
)
def test_bad_cache_settings_are_named(settings: dict[str, str], message: str) -> None:
    """What `scrapy crawl` checks before any call (the one-line form is run for real below)."""
    with pytest.raises(ConfigError, match=message):
        check_settings(Settings({"TMAPI_API_TOKEN": "test-token", "TMAPI_BASE_URL": "http://127.0.0.1:9", **settings}))


def test_bad_cache_setting_fails_in_one_line(tmp_path: Path) -> None:
    settings = {"TMAPI_CACHE": "true", "TMAPI_CACHE_TTL": "a day"}
    result = crawl(tmp_path, "http://127.0.0.1:9", {"urls": URLS[0]}, settings)
    assert result.returncode == outcome.BAD_INPUT
    [line] = result.stderr.strip().splitlines()
    assert line == "error: TMAPI_CACHE_TTL must be a number of seconds, 1 or more, got 'a day'"


# the policy and the settings, as functions


def api_request(**meta: Any) -> Request:
    return Request("http://127.0.0.1:1/1688/global/search/image?img_url=x", meta={"tmapi_endpoint": "search", **meta})


def test_policy_stores_good_answers_only() -> None:
    policy = cache.TmapiCachePolicy(Settings({"HTTPCACHE_IGNORE_SCHEMES": ["file"], "HTTPCACHE_IGNORE_HTTP_CODES": []}))
    request = api_request()
    assert policy.should_cache_request(request)
    assert not policy.should_cache_request(Request("http://127.0.0.1:1/other"))  # not an API call
    for status, cached in ((200, True), (422, False), (500, False), (503, False), (439, False)):
        response = TextResponse(request.url, status=status, body=b"{}", request=request)
        assert policy.should_cache_response(response, request) is cached, status


def test_configure_turns_the_switch_into_httpcache_settings() -> None:
    settings = Settings({"TMAPI_CACHE": "true", "TMAPI_CACHE_DIR": "/c", "TMAPI_CACHE_TTL": "3600"})
    settings.set("HTTPCACHE_EXPIRATION_SECS", 5, priority="cmdline")
    cache.configure(settings)
    assert settings.getbool("HTTPCACHE_ENABLED")
    assert settings["HTTPCACHE_DIR"] == "/c"
    assert settings.getint("HTTPCACHE_EXPIRATION_SECS") == 5  # -s wins, here as everywhere
    assert load_object(settings["HTTPCACHE_POLICY"]) is cache.TmapiCachePolicy
    assert load_object(settings["HTTPCACHE_STORAGE"]) is answer_store.AnswerStore
    off = Settings({"TMAPI_CACHE": False})
    cache.configure(off)
    assert not off.getbool("HTTPCACHE_ENABLED")

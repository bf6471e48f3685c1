"""Answers that do not yield their records: an empty page while total_count says more, a
`code` that is not a number, a redirect. Each is produced by the sandbox over real HTTP
(`empty_patterns`, `string_code_patterns`, `redirect_patterns`), and the tests count the
calls the sandbox was paid, the records written and what the answer store kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.crawl_helpers import crawl
from tests.in_process import crawl_in_process
from tmapi_spiders.jobs import answer_store, outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "tok-EMPTY-5ecret-91"
IMAGE = "https://cbu01.alicdn.com/img/ibank/empty-{}/total-{}.jpg"


def image(name: str, total: int) -> str:
    return IMAGE.format(name, total)


def store_settings(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"TMAPI_CACHE": "true", "TMAPI_CACHE_DIR": str(tmp_path / "store"), **extra}


def summary_images(run_dir: Path) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = json.loads((run_dir / "products.summary.json").read_text())["images"]
    return images


def stored_bodies(tmp_path: Path) -> list[dict[str, Any]]:
    """Every search answer in the answer store, parsed (the entry is a JSON line, then the body)."""
    bodies = []
    for _at, entry in answer_store.stored_answers(str(tmp_path / "store")):
        _meta, _, body = entry.partition(b"\n")
        bodies.append(json.loads(body))
    return bodies


def test_a_hiccup_on_page_1_is_asked_once_more_and_the_empty_answer_is_never_stored(tmp_path: Path) -> None:
    url = image("once", 45)
    with SandboxThread(SandboxConfig(tokens=(TOKEN,), empty_patterns=("empty-once",))) as sb:
        first = crawl_in_process(tmp_path / "1", sb.base_url, {"urls": url}, store_settings(tmp_path), token=TOKEN)
        pages, faults = sb.stats()["pages"][url], sb.stats()["faults"]
        sb.reset()
        again = crawl_in_process(tmp_path / "2", sb.base_url, {"urls": url}, store_settings(tmp_path), token=TOKEN)
        rerun_calls = sb.stats()["total_calls"]
    assert first.returncode == outcome.OK, first.stderr[-3000:]
    assert faults == {"empty": 1}
    assert pages == {"1": 2, "2": 1, "3": 1}  # one extra paid call: page 1 asked twice
    assert first.stats["tmapi/paid_calls"] == 4
    assert first.stats["tmapi/empty_page_retry/count"] == 1
    assert "tmapi/empty_page_retry/max_reached" not in first.stats
    assert len(first.products) == 45 and first.failures == []
    [entry] = summary_images(tmp_path / "1")
    assert entry["status"] == "done" and entry["items"] == 45 and entry["ended"] == "last_page"
    # the store kept the three good pages, not the empty one: the re-run replays them for free
    stored = stored_bodies(tmp_path)
    assert sorted(len(b["data"]["items"]) for b in stored) == [5, 20, 20]
    assert again.returncode == outcome.OK, again.stderr[-3000:]
    assert rerun_calls == 0 and "tmapi/paid_calls" not in again.stats
    assert again.stats["httpcache/hit"] == 3
    assert sorted(p["item_id"] for p in again.products) == sorted(p["item_id"] for p in first.products)


def test_page_1_empty_twice_is_a_failure_record_and_a_rerun_asks_again(tmp_path: Path) -> None:
    url = image("twice", 45)
    config = SandboxConfig(tokens=(TOKEN,), empty_patterns=("empty-twice",), empty_times=2)
    with SandboxThread(config) as sb:
        first = crawl_in_process(tmp_path / "1", sb.base_url, {"urls": url}, store_settings(tmp_path), token=TOKEN)
        first_pages = sb.stats()["pages"][url]
        stored_after_first = stored_bodies(tmp_path)
        # the sandbox's count of empty answers goes on: the re-run's first ask is answered in full
        again = crawl_in_process(tmp_path / "2", sb.base_url, {"urls": url}, store_settings(tmp_path), token=TOKEN)
        pages_after = sb.stats()["pages"][url]
    assert first.returncode == outcome.OK, first.stderr[-3000:]
    assert first_pages == {"1": 2}
    assert first.stats["tmapi/paid_calls"] == 2
    assert first.stats["tmapi/empty_page_retry/count"] == 1
    assert first.stats["tmapi/empty_page_retry/max_reached"] == 1
    assert first.products == []
    [failure] = first.failures
    assert failure["stage"] == "search" and failure["status"] == 500
    assert failure["pages_ok"] == 0 and failure["failed_page"] == 1
    assert failure["message"] == "empty page: page 1 came back empty 2 times while total_count says 45"
    assert "tmapi/images_searched" not in first.stats and first.stats["tmapi/images_failed"] == 1
    [entry] = summary_images(tmp_path / "1")
    assert entry["status"] == "failed" and entry["total_count"] == 45
    assert stored_after_first == []  # nothing empty was kept
    # the re-run asks page 1 again (nothing to replay) and gets the whole image
    assert again.returncode == outcome.OK, again.stderr[-3000:]
    assert pages_after == {"1": 3, "2": 1, "3": 1}
    assert again.stats["tmapi/paid_calls"] == 3 and len(again.products) == 45 and again.failures == []


def test_with_empty_page_retries_at_0_the_empty_page_is_not_asked_again(tmp_path: Path) -> None:
    url = image("off", 45)
    with SandboxThread(SandboxConfig(empty_patterns=("empty-off",))) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url}, {"TMAPI_EMPTY_PAGE_RETRIES": 0})
        pages = sb.stats()["pages"][url]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert pages == {"1": 1}
    assert result.stats["tmapi/paid_calls"] == 1 and "tmapi/empty_page_retry/count" not in result.stats
    [failure] = result.failures
    assert failure["message"] == "empty page: page 1 came back empty once while total_count says 45"
    assert failure["failed_page"] == 1


def test_a_later_page_that_stays_empty_after_its_re_ask_ends_the_image_below_total(tmp_path: Path) -> None:
    """An empty page proves the end once asked again: the records are kept, no failure record,
    and the summary says the image ended on an empty page below total_count."""
    url = image("later", 45)
    config = SandboxConfig(empty_patterns=("empty-later",), empty_page=2, empty_times=2)
    with SandboxThread(config) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        pages = sb.stats()["pages"][url]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert pages == {"1": 1, "2": 2}  # page 2 asked once more, page 3 never: the image ended there
    assert result.stats["tmapi/paid_calls"] == 3
    assert len(result.products) == 20 and {p["page"] for p in result.products} == {1}
    assert result.failures == []
    assert result.stats["tmapi/empty_page_retry/count"] == 1
    [entry] = summary_images(tmp_path)
    assert entry["status"] == "done" and entry["ended"] == "empty_page" and entry["items"] == 20


def test_an_empty_page_after_a_short_one_ends_the_image_without_another_call(tmp_path: Path) -> None:
    """An overstated total_count: page 2 ran short, so the empty page 3 is the end, not a hiccup."""
    url = image("overstated", 30)
    with SandboxThread(SandboxConfig(overstate=0.5)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        pages = sb.stats()["pages"][url]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert pages == {"1": 1, "2": 1, "3": 1}
    assert len(result.products) == 30 and result.failures == []
    assert "tmapi/empty_page_retry/count" not in result.stats
    [entry] = summary_images(tmp_path)
    assert entry["status"] == "done" and entry["ended"] == "empty_page"


def test_a_code_that_is_a_string_is_refused_naming_it(tmp_path: Path) -> None:
    url = image("strcode", 45)
    with SandboxThread(SandboxConfig(tokens=(TOKEN,), string_code_patterns=("empty-strcode",))) as sb:
        result = crawl_in_process(
            tmp_path, sb.base_url, {"urls": url}, store_settings(tmp_path, RETRY_TIMES=1), token=TOKEN
        )
        pages = sb.stats()["pages"][url]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert pages == {"1": 2}  # the first call and RETRY_TIMES=1 retry, as any malformed answer
    assert result.products == []
    [failure] = result.failures
    assert failure["status"] == 500 and failure["message"] == "code is not a number: '200'"
    assert stored_bodies(tmp_path) == []


def test_a_redirect_names_its_host_and_never_the_token(tmp_path: Path) -> None:
    url = image("moved", 45)
    config = SandboxConfig(tokens=(TOKEN,), redirect_patterns=("empty-moved",))
    with SandboxThread(config) as sb:
        results = {
            auth: crawl(tmp_path / auth, sb.base_url, {"urls": url}, {"TMAPI_AUTH": auth}, token=TOKEN)
            for auth in ("query", "header")
        }
        calls = sb.calls()
    assert [c["status"] for c in calls] == [302, 302]
    for auth, result in results.items():
        assert result.returncode == outcome.OK, result.stderr[-3000:]
        assert result.stats["tmapi/paid_calls"] == 1  # not retried: a redirect is no answer to wait for
        [failure] = result.failures
        assert failure["status"] == 302
        assert failure["message"] == "redirected to moved.sandbox.invalid (HTTP 302)", auth
        written = result.stdout + result.stderr + "".join(p.read_text(errors="replace") for p in result.files)
        assert TOKEN not in written, auth

"""What a real API and its gateway send, end to end: compressed and chunked bodies, their
own page size, filtered, repeating and endless pages, bare gateway messages, oversized
pages, and the seed document's own example answer. Each against a server answering so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_hostile_responses import CannedApi
from tests.in_process import crawl_in_process
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

DATA = Path(__file__).parent.parent / "data"
IMAGE = "https://cbu01.alicdn.com/img/ibank/real-{}/total-{}.jpg"


def image(name: str, total: int) -> str:
    return IMAGE.format(name, total)


def summary_of(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "products.summary.json").read_text())


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "none"])
@pytest.mark.parametrize("chunked", [True, False])
def test_compressed_and_chunked_answers_give_every_record_for_one_call_a_page(
    tmp_path: Path, encoding: str, chunked: bool
) -> None:
    urls = [image(f"gz-{encoding}-{i}", 45) for i in range(2)]
    with SandboxThread(SandboxConfig(compress=encoding, chunked=chunked)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": ",".join(urls)})
        stats = sb.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 90 and not result.failures
    assert all(stats["pages"][url] == {"1": 1, "2": 1, "3": 1} for url in urls)
    decoded = result.stats.get("httpcompression/response_count", 0)
    assert decoded == (6 if encoding != "none" else 0)


def test_the_apis_own_page_size_is_followed(tmp_path: Path) -> None:
    url = image("cap10", 137)
    with SandboxThread(SandboxConfig(max_page_size=10)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        pages = sb.stats()["pages"][url]
    assert result.returncode == 0, result.stderr[-2000:]
    assert len({p["item_id"] for p in result.products}) == len(result.products) == 137
    assert pages == {str(p): 1 for p in range(1, 15)}  # 14 pages of 10, each paid once
    assert sorted(p["rank"] for p in result.products) == list(range(1, 138))
    assert summary_of(tmp_path)["images"][0]["ended"] == "last_page"


def test_a_short_page_does_not_end_the_image_while_total_count_says_more(tmp_path: Path) -> None:
    url = image("filtered", 137)
    with SandboxThread(SandboxConfig(filter_per_page=1)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        pages = sb.stats()["pages"][url]
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 130  # 137 less one filtered out of each of the 7 pages
    assert pages == {str(p): 1 for p in range(1, 8)}
    (entry,) = summary_of(tmp_path)["images"]
    assert entry["ended"] == "last_page" and entry["items"] == 130 and entry["total_count"] == 137
    assert result.stats["tmapi/images_below_total/last_page"] == 1


def test_an_endless_total_stops_after_a_page_with_nothing_new(tmp_path: Path) -> None:
    url = image("stuck", 40)
    with SandboxThread(SandboxConfig(report_total=10**12, stuck_after=1)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        pages = sb.stats()["pages"][url]
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 20
    assert pages == {"1": 1, "2": 1}  # page 2 repeated page 1: not a third call
    (entry,) = summary_of(tmp_path)["images"]
    assert entry["ended"] == "no_new_items" and entry["duplicates"] == 20
    assert result.stats["tmapi/images_below_total/no_new_items"] == 1


def test_repeated_items_across_pages_are_written_once_and_paging_goes_on(tmp_path: Path) -> None:
    url = image("repeats", 100)
    with SandboxThread(SandboxConfig(repeat_rate=0.25)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        pages = sb.stats()["pages"][url]
    ids = [p["item_id"] for p in result.products]
    assert result.returncode == 0 and len(ids) == len(set(ids))
    assert pages == {str(p): 1 for p in range(1, 6)}  # every page of total_count, once
    assert summary_of(tmp_path)["images"][0]["duplicates"] == 100 - len(ids) > 0


def test_an_unknown_gateway_message_is_a_failed_call_not_a_refused_token(tmp_path: Path) -> None:
    urls = [image(f"gw-{i}", 60) for i in range(4)]
    config = SandboxConfig(fault_rate=0.4, fault_kinds=("gateway",), seed=5)
    with SandboxThread(config) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": ",".join(urls)}, {"RETRY_TIMES": 8})
        stats = sb.stats()
    assert stats["faults"]["gateway"] > 0
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 240 and not result.failures
    assert "TMAPI refused the crawl" not in result.stderr
    assert result.stats["retry/count"] == stats["faults"]["gateway"]


def test_gateway_message_that_never_clears_becomes_a_failure_record(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(fault_rate=1.0, fault_kinds=("gateway",))) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": image("gw-always", 20)}, {"RETRY_TIMES": 2})
        calls = sb.stats()["total_calls"]
    assert result.returncode == outcome.OK
    assert calls == 3
    (failure,) = result.failures
    assert failure["status"] == 500 and failure["message"] == "An unexpected error occurred"


@pytest.mark.parametrize("compress", ["gzip", "none"])
def test_a_page_of_millions_of_items_is_refused_as_malformed(tmp_path: Path, compress: str) -> None:
    with SandboxThread(SandboxConfig(fault_rate=1.0, fault_kinds=("huge",), compress=compress)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": image("huge", 20)}, {"RETRY_TIMES": 1})
        calls = sb.stats()["total_calls"]
    assert result.returncode == outcome.OK, result.stderr[-2000:]
    assert calls == 2 and not result.products
    (failure,) = result.failures
    assert "DOWNLOAD_MAXSIZE" in failure["message"] or "max size" in failure["message"], failure
    assert "Traceback" not in result.stderr


def test_more_items_than_the_page_size_is_malformed(tmp_path: Path) -> None:
    url = "https://cbu01.alicdn.com/img/ibank/too-many.jpg"
    items = [{"item_id": i, "title": "x", "price": "1.00"} for i in range(1, 26)]
    body = json.dumps({"code": 200, "msg": "success", "data": {"total_count": 25, "items": items}}).encode()
    with CannedApi({url: body}) as api:
        result = crawl_in_process(tmp_path, api.base_url, {"urls": url}, {"RETRY_TIMES": 1})
    assert result.returncode == 0 and not result.products
    assert api.calls == [url, url]
    assert result.failures[0]["message"] == "malformed page: 25 items for page_size 20"


def test_golden_the_seed_documents_example_answer_goes_through_unchanged(tmp_path: Path) -> None:
    body = (DATA / "seed_example_response.json").read_bytes()
    example = json.loads(body)["data"]
    url = "https://cbu01.alicdn.com/img/ibank/O1CN01Lnbnos2LkORtHhOVp_!!3367999730-0-cib.jpg"
    with CannedApi({url: body}) as api:
        result = crawl_in_process(tmp_path, api.base_url, {"urls": url})
    assert result.returncode == 0, result.stderr[-2000:]
    # page_size 2 and total_count 666 say 333 pages; every page of this server is the same
    # two items, so page 2 brings nothing new and the search ends there: 2 calls, 2 records.
    assert api.calls == [url, url]
    assert [p["item_id"] for p in result.products] == [865835426638, 866011508042]
    for record, item in zip(result.products, example["items"], strict=True):
        for name, value in item.items():
            assert record[name] == value, name
    assert [p["rank"] for p in result.products] == [1, 2]
    (entry,) = summary_of(tmp_path)["images"]
    assert entry["total_count"] == 666 and entry["ended"] == "no_new_items"

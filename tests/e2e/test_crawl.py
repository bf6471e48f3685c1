"""End-to-end: crawls of image_search against a sandbox over HTTP. In this process
(tests/in_process.py) where what the crawl fetched and wrote is the point; `scrapy crawl`
subprocesses where the process is (exit codes for bad input, what the terminal shows)."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import crawl, run_scrapy
from tests.in_process import crawl_in_process
from tmapi_spiders.api import contract
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

SCRAPY_CRAWL = ["crawl", "image_search"]
ALI = "https://cbu01.alicdn.com/img/ibank/test-{}/total-{}.jpg"


def ali(name: str, total: int) -> str:
    return ALI.format(name, total)


def write_list(tmp_path: Path, lines: list[str], name: str = "images.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fetch_all(base_url: str, img_url: str, page_size: int = 20, **params: str) -> list[dict[str, Any]]:
    """Every item the sandbox holds for an image, page by page (not through the spider)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        query = {"img_url": img_url, "page": page, "page_size": page_size, "apiToken": "sandbox", **params}
        url = f"{base_url}{contract.SEARCH_PATH}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url) as resp:
            data = json.loads(resp.read())["data"]
        items.extend(data["items"])
        if page >= contract.last_page(data["total_count"], page_size):
            return items
        page += 1


@pytest.fixture
def sandbox():
    with SandboxThread(SandboxConfig()) as sb:
        yield sb


def test_exact_items_and_no_page_beyond_the_last(tmp_path: Path, sandbox: SandboxThread) -> None:
    totals = {"zero": 0, "one": 1, "exact": 20, "over": 21, "two-exact": 40, "two-over": 41}
    urls = {name: ali(name, total) for name, total in totals.items()}
    seeds = write_list(tmp_path, list(urls.values()))
    result = crawl_in_process(tmp_path, sandbox.base_url, {"urls_file": str(seeds)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.failures == []
    stats = sandbox.stats()
    for name, url in urls.items():
        expected = fetch_all(sandbox.base_url, url)
        assert len(expected) == totals[name]
        got = [p for p in result.products if p["query_image_url"] == url]
        assert [p["item_id"] for p in sorted(got, key=lambda p: p["rank"])] == [e["item_id"] for e in expected]
        assert [p["rank"] for p in sorted(got, key=lambda p: p["rank"])] == list(range(1, totals[name] + 1))
        last = max(1, math.ceil(totals[name] / 20))
        # each page 1..last paid for exactly once by the crawl (fetch_all's calls came after)
        crawl_pages = {int(p): n for p, n in stats["pages"][url].items()}
        assert crawl_pages == {page: 1 for page in range(1, last + 1)}, name
    assert len(result.products) == sum(totals.values())
    first = result.products[0]
    for field in ("item_id", "product_url", "title", "title_origin", "price", "price_info", "sale_info", "shop_info"):
        assert field in first
    for field in ("query_image_url", "search_image_url", "page", "rank", "language", "sort", "filters", "crawled_at"):
        assert field in first
    assert first["crawled_at"].endswith("Z")


def test_feed_is_utf8_without_escapes(tmp_path: Path, sandbox: SandboxThread) -> None:
    result = crawl_in_process(tmp_path, sandbox.base_url, {"urls": ali("utf8", 3)})
    raw = (tmp_path / "products.jsonl").read_text(encoding="utf-8")
    assert result.returncode == 0
    assert "\\u" not in raw
    assert any("\u4e00" <= ch <= "\u9fff" for ch in raw)  # Chinese title_origin, as is


def test_max_pages_and_query_arguments(tmp_path: Path, sandbox: SandboxThread) -> None:
    url = ali("args", 95)
    args = {"urls": url, "max_pages": "2", "page_size": "10", "language": "ru", "sort": "price_up", "is_factory": "yes"}
    result = crawl_in_process(tmp_path, sandbox.base_url, args)
    assert result.returncode == 0, result.stderr[-3000:]
    calls = [c for c in sandbox.calls() if c["endpoint"] == contract.SEARCH_PATH]
    assert [c["params"]["page"] for c in calls] == ["1", "2"]
    assert all(c["params"]["language"] == "ru" and c["params"]["sort"] == "price_up" for c in calls)
    assert all(c["params"]["is_factory"] == "true" and c["params"]["page_size"] == "10" for c in calls)
    expected = fetch_all(sandbox.base_url, url, 10, language="ru", sort="price_up", is_factory="true")[:20]
    assert [p["item_id"] for p in sorted(result.products, key=lambda p: p["rank"])] == [e["item_id"] for e in expected]
    assert all(p["shop_info"]["is_factory"] for p in result.products)
    assert {p["language"] for p in result.products} == {"ru"}
    assert {json.dumps(p["filters"]) for p in result.products} == {'{"is_factory": true}'}
    prices = [float(p["price"]) for p in sorted(result.products, key=lambda p: p["rank"])]
    assert prices == sorted(prices)


def test_conversion_once_per_url_and_denied_image(tmp_path: Path) -> None:
    config = SandboxConfig(deny_patterns=(r"denied\.example",))
    with SandboxThread(config) as sb:
        ok = "https://shop.example.com/photos/total-25.jpg"
        denied = "https://denied.example/photo.jpg"
        seeds = write_list(tmp_path, [ok, denied, ok])
        result = crawl_in_process(tmp_path, sb.base_url, {"urls_file": str(seeds)})
        calls = sb.calls()
    assert result.returncode == 0, result.stderr[-3000:]
    converted_urls = Counter(c["params"].get("url") for c in calls if c["endpoint"] == contract.CONVERT_PATH)
    assert converted_urls == {ok: 1, denied: 1}
    assert len(result.products) == 25
    converted = {p["search_image_url"] for p in result.products}
    assert len(converted) == 1 and converted.pop().startswith("/search/")
    assert {p["query_image_url"] for p in result.products} == {ok}
    [failure] = result.failures
    assert failure["query_image_url"] == denied and failure["stage"] == "convert"
    assert failure["status"] == 422 and "denied" in failure["message"]


def test_repeated_items_across_pages_are_kept_once(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(repeat_rate=0.3)) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": ali("repeat", 100)})
    assert result.returncode == 0
    ids = [p["item_id"] for p in result.products]
    assert len(ids) == len(set(ids)) and 0 < len(ids) < 100
    assert result.stats["tmapi/items_duplicate"] > 0


@pytest.mark.parametrize("stop_on_short_page", [False, True])
def test_overstated_total_ends_at_the_empty_page_or_the_short_one(tmp_path: Path, stop_on_short_page: bool) -> None:
    with SandboxThread(SandboxConfig(overstate=0.5)) as sb:
        result = crawl_in_process(
            tmp_path,
            sb.base_url,
            {"urls": ali("overstate", 30)},
            settings={"TMAPI_STOP_ON_SHORT_PAGE": stop_on_short_page},
        )
        pages = sb.stats()["pages"][ali("overstate", 30)]
    assert result.returncode == 0
    assert len(result.products) == 30
    summary = json.loads((tmp_path / "products.summary.json").read_text())
    (image,) = summary["images"]
    # total_count says 45 (3 pages); page 2 holds the last 10. By default the short page does
    # not prove the end (an item may have been filtered out of it): page 3 comes back empty.
    # TMAPI_STOP_ON_SHORT_PAGE saves that call.
    if stop_on_short_page:
        assert pages == {"1": 1, "2": 1} and image["ended"] == "short_page"
    else:
        assert pages == {"1": 1, "2": 1, "3": 1} and image["ended"] == "empty_page"
    assert result.stats["tmapi/images_below_total"] == 1


@pytest.mark.parametrize("kind", ["417", "499", "500", "503", "drop", "truncated", "html", "code", "nodata"])
def test_transient_faults_are_retried_until_given_up(tmp_path: Path, kind: str) -> None:
    with SandboxThread(SandboxConfig(fault_rate=1.0, fault_kinds=(kind,))) as sb:
        url = ali(f"fault-{kind}", 5)
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url}, settings={"RETRY_TIMES": 2})
        calls = sb.stats()["total_calls"]
    assert result.returncode == outcome.OK, result.stderr[-3000:]
    assert calls == 3  # the first call and two retries
    assert result.products == []
    [failure] = result.failures
    assert failure["stage"] == "search" and failure["pages_ok"] == 0 and failure["failed_page"] == 1
    assert "Traceback" not in result.stderr


def test_transient_faults_lose_nothing(tmp_path: Path) -> None:
    urls = [ali(f"mixed-{i}", 20 + 7 * i) for i in range(6)]
    seeds = write_list(tmp_path, urls)
    with SandboxThread(SandboxConfig()) as clean:
        expected = crawl_in_process(tmp_path / "clean", clean.base_url, {"urls_file": str(seeds)})
    with SandboxThread(SandboxConfig(fault_rate=0.3, seed=7)) as sb:
        result = crawl_in_process(
            tmp_path / "faulty", sb.base_url, {"urls_file": str(seeds)}, settings={"RETRY_TIMES": 8}
        )
        faults = sum(sb.stats()["faults"].values())
    assert result.returncode == 0, result.stderr[-3000:]
    assert faults > 0
    key = lambda p: (p["query_image_url"], p["item_id"], p["rank"])  # noqa: E731
    assert sorted(map(key, result.products)) == sorted(map(key, expected.products))
    assert result.failures == []


@pytest.mark.parametrize(
    ("config", "token", "message"),
    [
        (SandboxConfig(broke_tokens=("broke",)), "broke", "insufficient balance"),
        (SandboxConfig(), "wrong-token", "Invalid authentication credentials"),
    ],
)
def test_fatal_answers_stop_the_crawl(tmp_path: Path, config: SandboxConfig, token: str, message: str) -> None:
    urls = [ali(f"fatal-{i}", 60) for i in range(30)]
    seeds = write_list(tmp_path, urls)
    with SandboxThread(config) as sb:
        result = crawl(tmp_path, sb.base_url, {"urls_file": str(seeds)}, token=token)
        calls = sb.stats()["total_calls"]
    assert result.returncode == outcome.API_REFUSED
    assert calls <= 16  # the first wave at most: nothing is sent after the refusal
    errors = [line for line in result.stderr.splitlines() if "] ERROR:" in line]
    assert len(errors) == 1 and message.lower() in errors[0].lower()
    assert "Traceback" not in result.stderr
    # The images the refusal left unstarted are a seed list of their own, each listed once.
    totals = json.loads((tmp_path / "products.summary.json").read_text(encoding="utf-8"))["totals"]
    listed = (tmp_path / "products.not-started.txt").read_text(encoding="utf-8").splitlines()
    assert re.match(r"# not started \(tmapi_(no_balance|auth_failed)\)", listed[0]), listed[0]
    assert len(listed) - 1 == totals["images_not_started"] == len(set(listed[1:])) >= len(urls) - 16
    assert set(listed[1:]) <= set(urls)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"language": "xx"}, "language: 'xx' is not one of en, zh, ru"),
        ({"sort": "cheap"}, "sort: 'cheap' is not one of default, sales, price_up, price_down"),
        ({"page_size": "21"}, "page_size: 21 is out of range"),
        ({"page_size": "ten"}, "page_size: 'ten' is not an integer"),
        ({"max_pages": "0"}, "max_pages: 0 is out of range"),
        ({"free_shipping": "maybe"}, "free_shipping: 'maybe' is not a boolean"),
        ({"colour": "red"}, "unknown argument 'colour'"),
    ],
)
def test_bad_arguments_fail_before_any_call(
    tmp_path: Path, sandbox: SandboxThread, args: dict[str, str], expected: str
) -> None:
    result = crawl(tmp_path, sandbox.base_url, {"urls": ali("bad", 5), **args})
    assert result.returncode == outcome.BAD_INPUT
    assert expected in result.stderr
    assert result.stderr.strip().count("\n") == 0  # one line
    assert sandbox.stats()["total_calls"] == 0


def test_missing_token_and_bad_lists_fail_before_any_call(tmp_path: Path, sandbox: SandboxThread) -> None:
    cases = [
        ({"urls": ali("x", 1)}, None, "no API token"),
        ({"urls_file": str(tmp_path / "missing.txt")}, "sandbox", "cannot read urls_file"),
        ({"urls_file": str(write_list(tmp_path, ["# only a comment", ""], "empty.txt"))}, "sandbox", "no searchable"),
        ({"urls_file": str(write_list(tmp_path, ["ftp://x/y.jpg"], "bad.txt"))}, "sandbox", "1 bad lines"),
        ({}, "sandbox", "no seeds"),
    ]
    for args, token, expected in cases:
        result = crawl(tmp_path, sandbox.base_url, args, token=token)
        assert result.returncode == outcome.BAD_INPUT, (args, result.stderr[-2000:])
        assert expected in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert sandbox.stats()["total_calls"] == 0


def test_bad_seed_lines_are_reported_with_their_number(tmp_path: Path, sandbox: SandboxThread) -> None:
    good = ali("good", 3)
    lines = ["# header", good, "not a url", "ftp://files.example.com/a.jpg", "", good, "http://127.0.0.1/x.jpg"]
    seeds = write_list(tmp_path, lines)
    result = crawl(tmp_path, sandbox.base_url, {"urls_file": str(seeds)})
    assert result.returncode == 0
    assert len(result.products) == 3
    assert "line 3 skipped" in result.stderr and "line 4 skipped" in result.stderr
    assert "line 7 skipped: internal address" in result.stderr
    assert result.stats["tmapi/seeds_bad_line"] == 3
    assert sandbox.stats()["total_calls"] == 1  # the duplicate line is searched once


def test_csv_and_json_exports(tmp_path: Path, sandbox: SandboxThread) -> None:
    url = ali("csv", 25)
    result = crawl(tmp_path, sandbox.base_url, {"urls": url}, output="products.csv")
    assert result.returncode == 0
    with open(tmp_path / "products.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25
    assert {"price_info.wholesale_price", "shop_info.company_name", "sale_info.sale_quantity"} <= set(rows[0])
    assert " | " in rows[0]["category_path"] or rows[0]["category_path"].isdigit()
    result = crawl(tmp_path, sandbox.base_url, {"urls": url}, output="products.json")
    data = json.loads((tmp_path / "products.json").read_text(encoding="utf-8"))
    assert result.returncode == 0 and len(data) == 25


def test_default_feed_under_output_dir(tmp_path: Path, sandbox: SandboxThread) -> None:
    out = tmp_path / "out"
    proc = run_scrapy(
        [
            *SCRAPY_CRAWL,
            "-a",
            f"urls={ali('default', 4)}",
            "-s",
            f"TMAPI_OUTPUT_DIR={out}",
            "-s",
            f"TMAPI_BASE_URL={sandbox.base_url}",
            "-s",
            "TMAPI_API_TOKEN=sandbox",
        ],
        dict(os.environ),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    products = [p for p in out.iterdir() if p.name.startswith("image_search-") and p.name.count(".") == 1]
    assert len(products) == 1 and products[0].suffix == ".jsonl"
    assert len(products[0].read_text(encoding="utf-8").splitlines()) == 4


def test_token_never_written_anywhere(tmp_path: Path) -> None:
    token = "tok-SECRET-4f9a2c"
    config = SandboxConfig(tokens=(token,), fault_rate=0.3, seed=3, deny_patterns=("denied",))
    seeds = write_list(
        tmp_path, [ali("secret-a", 45), "https://x.example.com/denied.jpg", "https://x.example.com/b.jpg"]
    )
    with SandboxThread(config) as sb:
        result = crawl(tmp_path, sb.base_url, {"urls_file": str(seeds)}, token=token, settings={"LOG_LEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) > 45
    assert "Retrying" in result.stderr and "Crawled (200)" in result.stderr  # DEBUG lines were written
    assert token not in result.stdout and token not in result.stderr
    for path in result.files:
        assert token.encode() not in path.read_bytes(), path


def test_demo_command(tmp_path: Path) -> None:
    out = tmp_path / "products.jsonl"
    proc = run_scrapy(
        [*SCRAPY_CRAWL, "-a", "urls_file=examples/images.txt", "-s", "TMAPI_SANDBOX=true", "-O", str(out)],
        {k: v for k, v in os.environ.items() if not k.startswith("TMAPI_")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = out.read_text(encoding="utf-8").splitlines()
    products = [json.loads(line) for line in lines]
    assert len(products) > 100
    images = Counter(p["query_image_url"] for p in products)
    assert len(images) >= 5
    assert any(p["search_image_url"].startswith("/search/") for p in products)  # converted ones


def test_every_call_the_api_sees_is_counted(tmp_path: Path) -> None:
    """Dropped kept-alive connections are not re-sent behind Scrapy's back (download.py)."""
    urls = [ali(f"drops-{i}", 60) for i in range(8)]
    with SandboxThread(SandboxConfig(fault_rate=0.3, fault_kinds=("drop",), seed=11)) as sb:
        result = crawl_in_process(
            tmp_path, sb.base_url, {"urls_file": str(write_list(tmp_path, urls))}, settings={"RETRY_TIMES": 10}
        )
        stats = sb.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert stats["faults"].get("drop", 0) >= 3
    assert len(result.products) == 8 * 60
    assert result.stats["tmapi/paid_calls"] == stats["total_calls"]


def test_search_422_converts_the_image_once_then_gives_up(tmp_path: Path) -> None:
    """422 on a search: convert the image if not yet converted, else record the failure."""
    unreadable = ali("unreadable", 30)
    with SandboxThread(SandboxConfig(unrecognised_patterns=("unreadable",), deny_patterns=("denied",))) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": unreadable})
        calls = [(c["endpoint"], c["status"]) for c in sb.calls()]
    assert result.returncode == 0, result.stderr[-2000:]
    assert calls[:2] == [(contract.SEARCH_PATH, 422), (contract.CONVERT_PATH, 200)]
    assert calls[2:] == [(contract.SEARCH_PATH, 200)] * 2
    assert len(result.products) == 30 and result.failures == []
    assert {p["search_image_url"][:8] for p in result.products} == {"/search/"}

    denied = ali("unreadable-denied", 30)
    with SandboxThread(SandboxConfig(unrecognised_patterns=("unreadable",), deny_patterns=("denied",))) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": denied})
        calls = [(c["endpoint"], c["status"]) for c in sb.calls()]
    assert calls == [(contract.SEARCH_PATH, 422), (contract.CONVERT_PATH, 422)]
    [failure] = result.failures
    assert failure["stage"] == "convert" and "denied" in failure["message"]


def test_a_conversion_that_timed_out_is_tried_again(tmp_path: Path) -> None:
    """tmapi-notes: 422 "Image URL request timed out", then success on the next identical call."""
    url = "https://slow.example.com/photos/total-12.jpg"
    with SandboxThread(SandboxConfig(convert_timeout_patterns=("slow\\.example",))) as sb:
        result = crawl_in_process(tmp_path, sb.base_url, {"urls": url})
        calls = [(c["endpoint"], c["status"]) for c in sb.calls()]
    assert result.returncode == 0, result.stderr[-2000:]
    assert calls == [(contract.CONVERT_PATH, 422), (contract.CONVERT_PATH, 200), (contract.SEARCH_PATH, 200)]
    assert len(result.products) == 12 and result.failures == []


def test_the_sandbox_demo_ignores_a_real_token_in_the_environment(tmp_path: Path) -> None:
    result = crawl(
        tmp_path, None, {"urls": ali("demo-token", 5)}, token="a-real-token-0042", settings={"TMAPI_SANDBOX": "true"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 5


def test_the_sandbox_starts_on_a_port_given_with_s(tmp_path: Path) -> None:
    """TMAPI_SANDBOX_PORT given by the user: the sandbox starts there and is crawled (the
    add-on used to return early, leaving TMAPI_BASE_URL at the real API and the real token on)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nobody listens: a call there fails
    result = crawl(
        tmp_path,
        nowhere,
        {"urls": ali("fixed-port", 5)},
        token="a-real-token-0042",
        settings={"TMAPI_SANDBOX": "true", "TMAPI_SANDBOX_PORT": str(port)},
    )
    closed.close()
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"crawling the bundled sandbox at http://127.0.0.1:{port}" in result.stderr
    assert len(result.products) == 5


@pytest.mark.parametrize("where", ["closed port", "wrong path", "closed port, one image"])
def test_a_wrong_base_url_stops_the_crawl_at_once(tmp_path: Path, sandbox: SandboxThread, where: str) -> None:
    """One image's six refused tries are fewer than TMAPI_UNREACHABLE_AFTER: the list's end stops it the same way."""
    urls = [ali(f"nowhere-{i}", 40) for i in range(1 if where.endswith("one image") else 40)]
    if where.startswith("closed port"):
        import socket

        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    else:
        base = sandbox.base_url + "/v9"  # the gateway answers 404 {"message": "no Route matched ..."}
    result = crawl(tmp_path, base, {"urls_file": str(write_list(tmp_path, urls))}, settings={"RETRY_TIMES": 5})
    assert result.returncode == outcome.API_REFUSED, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "] ERROR:" in line]
    if where.endswith("one image"):  # its last try failed first: Scrapy's own line for that, then ours
        assert len(errors) == 2 and "[scrapy.downloadermiddlewares.retry] ERROR: Gave up retrying" in errors[0]
        errors = errors[1:]
    assert len(errors) == 1 and "TMAPI_BASE_URL" in errors[0], errors
    assert "Traceback" not in result.stderr
    if where == "wrong path":
        assert sandbox.stats()["total_calls"] <= 16  # the first wave at most
    else:
        # 40 images x 6 tries would be 240 attempts; it stops after TMAPI_UNREACHABLE_AFTER (10)
        attempts = result.stats["downloader/request_count"]
        assert attempts <= 30, attempts
        # none of them connected: nothing reached the API, nothing is counted as paid
        assert "tmapi/paid_calls" not in result.stats


def test_csv_rows_keep_fields_the_first_row_lacks() -> None:
    """Scrapy's CSV exporter takes its header from the first record: ours is fixed."""
    import io

    from tmapi_spiders.crawl.exporters import FlatCsvItemExporter

    out = io.BytesIO()
    exporter = FlatCsvItemExporter(out, fields_to_export=None, encoding="utf-8")
    exporter.start_exporting()
    exporter.export_item({"item_id": 1, "price_info": None, "filters": {}})
    exporter.export_item({"item_id": 2, "price_info": {"origin_price": "1.50"}, "brand": "b", "new": {"x": 1}})
    exporter.finish_exporting()
    first, second = csv.DictReader(io.StringIO(out.getvalue().decode("utf-8")))
    assert first["extra"] == '{"price_info": null}' and first["filters"] == "{}"
    assert second["price_info.origin_price"] == "1.50" and second["brand"] == "b"
    assert second["extra"] == '{"new.x": 1}'


DUMPS = ("Versions:", "Enabled addons:", "Enabled extensions:", "Overridden settings:", "Dumping Scrapy stats:")


def test_the_terminal_shows_the_run_and_the_summary_last_scrapys_dumps_at_debug(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    url = ali("quiet", 3)
    result = crawl(tmp_path, sandbox.base_url, {"urls": url}, {"LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [dump for dump in DUMPS if dump in result.stderr], result.stderr[:3000]
    lines = result.stderr.strip().splitlines()
    # The run summary's table, then where it was written and Scrapy's one closing line.
    closed = next(i for i, line in enumerate(lines) if "Spider closed (finished)" in line)
    assert "Run summary written to" in lines[closed - 1], lines[-12:]
    assert all("Stats written" in line or "stats" in line.lower() for line in lines[closed + 1 :]), lines[closed:]
    assert result.stats["item_scraped_count"] == 3  # the stats dump's content is in TMAPI_STATS_FILE
    debug = crawl(tmp_path / "debug", sandbox.base_url, {"urls": url}, {"LOG_LEVEL": "DEBUG"})
    assert debug.returncode == 0 and all(dump in debug.stderr for dump in DUMPS), debug.stderr[:3000]

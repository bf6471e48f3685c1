"""The HTML report without a browser: the builder's pure functions, `scrapy report`, and
TMAPI_REPORT=true in a real crawl. What the page does with the data is tests/e2e/test_report_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_helpers import crawl, run_scrapy
from tests.report_data import failure, record
from tmapi_spiders import report
from tmapi_spiders.report import model, offers
from tmapi_spiders.report import page as report_page
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

HOSTILE_TITLE = "<script>alert(1)</script>"
TOKEN = "tok-3f9a1c77e2b04d5e"

Q1 = "https://cbu01.alicdn.com/img/ibank/query-1.jpg"
Q2 = "https://cbu01.alicdn.com/img/ibank/query-2.jpg"
DENIED = "https://denied.example.net/photo.jpg"


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def embedded(page: str) -> dict[str, Any]:
    """The page's two data blocks, parsed as the browser's JSON.parse would, images as one list."""
    blocks = dict(re.findall(r'<script type="application/json" id="report-(data|rest)">(.*?)</script>', page, re.S))
    assert set(blocks) == {"data", "rest"}, "missing data block"
    data, rest = json.loads(blocks["data"]), json.loads(blocks["rest"])
    return {**data, "images": data["images"] + rest["images"]}


# --- the builder ------------------------------------------------------------------------------


def test_script_json_cannot_end_the_block_and_parses_back() -> None:
    data = {"t": "</script><!-- <script>x</script> & \u2028", "u": "</SCRIPT >"}
    out = report_page.script_json(data)
    assert "<" not in out and ">" not in out and "&" not in out
    assert json.loads(out) == data


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://detail.1688.com/offer/1.html", True),
        ("http://example.com/a.jpg", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:image/png;base64,AAAA", False),
        ("//evil.example.com/x", False),
        ("/relative/path", False),
        ("https://exa mple.com/", False),
        ('https://example.com/"onerror="x', False),
        ("https:///nohost", False),
        (None, False),
        (12, False),
    ],
)
def test_only_http_urls_with_a_host_are_kept(url: Any, kept: bool) -> None:
    assert (offers.safe_url(url) is not None) is kept


def test_offer_row_carries_what_a_card_shows() -> None:
    r = record(Q1, rank=3, price="13.40", sold=15496, factory=True, verified=True, dropship=True, new=True)
    r["quantity_prices"] = [
        {"begin_num": "2", "end_num": "19", "price": "13.40"},
        {"begin_num": "20", "end_num": "", "price": "12.73"},
    ]
    row = offers.offer_row(r)
    assert row[offers.O_URL] == 0  # the standard offer URL, rebuilt in the page from the id
    assert row[offers.O_TITLE] == r["title"] and row[offers.O_ORIGIN] == "可爱不锈钢手机壳 O563"
    assert (row[offers.O_PMIN], row[offers.O_PMAX]) == (12.73, 13.40)
    assert row[offers.O_TIERS] == [["2", "19", "13.40"], ["20", "", "12.73"]]
    assert (row[offers.O_MOQ], row[offers.O_SOLD], row[offers.O_ORDERS]) == (2, 15496, 4028)
    assert row[offers.O_REPURCHASE] == "30%"
    assert (row[offers.O_SUPPLIER], row[offers.O_YEARS]) == ("晋江鑫源贸易有限公司", 6)
    assert row[offers.O_LOCATION] == "Fujian, Jinjiang, Quanzhou"
    assert row[offers.O_BADGES] == offers.FACTORY | offers.VERIFIED | offers.DROPSHIP | offers.NEW_ARRIVAL
    assert row[offers.O_RANK] == 3


def test_offer_row_survives_missing_and_strange_fields() -> None:
    r = {
        "item_id": "x",
        "title": {"not": "text"},
        "price": "n/a",
        "quantity_prices": "nope",
        "product_url": "https://m.1688.com/offer/7.html",
        "img": "javascript:alert(1)",
        "shop_info": None,
        "item_repurchase_rate": "31.6%",
    }
    row = offers.offer_row(r)
    assert row[offers.O_URL] == "https://m.1688.com/offer/7.html"  # not the standard form: kept whole
    assert row[offers.O_IMG] is None and row[offers.O_TITLE] == ""
    assert (row[offers.O_PMIN], row[offers.O_PMAX], row[offers.O_TIERS]) == (None, None, [])
    assert row[offers.O_REPURCHASE] == "31.6%" and row[offers.O_BADGES] == 0


def test_images_keep_feed_order_offers_rank_order_and_counts() -> None:
    records = [record(Q2, rank=2), record(Q1, rank=2), record(Q1, rank=1), record(Q2, rank=1), record(Q1, rank=21)]
    records[1]["search_image_url"] = "https://cbu01.alicdn.com/img/ibank/converted.jpg"
    summary = {"images": [{"query_image_url": DENIED, "status": "failed", "pages": 0, "reason": "denied"}]}
    data = model.report_data(records, [failure(DENIED)], summary)
    images = data["images"]
    assert [i["u"] for i in images] == [Q2, Q1, DENIED]
    assert [o[offers.O_RANK] for o in images[1]["o"]] == [1, 2, 21]
    assert (images[1]["pages"], images[1]["calls"]) == (2, 3)  # pages 1 and 2, and the conversion
    assert (images[0]["pages"], images[0]["calls"]) == (1, 1)
    assert (images[2]["status"], images[2]["failures"], images[2]["calls"]) == ("failed", 1, 1)
    assert images[0]["status"] == images[1]["status"] == "unfinished"  # not in the summary: the run left them
    assert model.report_data(records)["images"][0]["status"] == ""  # no summary: nothing known
    assert images[2]["fm"] == ["convert 403: Access denied"] and images[2]["o"] == []
    assert data["failures"] == 1


def test_the_first_block_holds_the_first_screen_and_strings_are_shared() -> None:
    records = [record(f"https://cbu01.alicdn.com/img/ibank/q{i}.jpg", rank=r) for i in range(20) for r in (1, 2)]
    page = report_page.render(model.report_data(records))
    blocks = re.findall(r'id="report-(?:data|rest)">(.*?)</script>', page, re.S)
    first, rest = (json.loads(b) for b in blocks)
    assert (len(first["images"]), len(rest["images"])) == (report_page.HEAD_IMAGES, 20 - report_page.HEAD_IMAGES)
    assert first["strings"] == ["晋江鑫源贸易有限公司", "Fujian, Jinjiang, Quanzhou"] == rest["strings"]
    row = first["images"][0]["o"][0]
    assert (row[offers.O_SUPPLIER], row[offers.O_LOCATION]) == (0, 1)
    assert row[offers.O_IMG] == "^" + records[0]["img"].removeprefix(report_page.IMG_PREFIX)
    big = [record(f"https://cbu01.alicdn.com/img/ibank/b{i}.jpg", rank=r) for i in range(3) for r in range(1, 1201)]
    assert report_page.head_size(model.report_data(big)["images"]) == 2  # 2,400 offers: the first screen is full


def test_top_keeps_the_best_ranked_offers_and_says_how_many_there_were() -> None:
    records = [record(Q1, rank=r) for r in (5, 3, 1, 4, 2)]
    image = model.report_data(records, top=2)["images"][0]
    assert [o[offers.O_RANK] for o in image["o"]] == [1, 2] and image["found"] == 5


def test_hostile_text_stays_text_and_bad_urls_are_not_embedded() -> None:
    records = [
        record(Q1, rank=1, title=HOSTILE_TITLE, product_url="javascript:alert(1)", img="javascript:alert(2)"),
        record("javascript:alert(3)", rank=1, title="</script><script>alert(4)</script><!--"),
    ]
    page = report_page.render(model.report_data(records, source="<b>x</b>.jsonl"), title="<i>t</i>")
    assert page.count("<script") == 4 and page.count("</script>") == 4  # two data blocks, two scripts
    assert "<!--" not in page and "<i>t</i>" not in page
    images = embedded(page)["images"]
    assert images[0]["o"][0][offers.O_TITLE] == HOSTILE_TITLE  # the text itself, shown as text
    assert images[0]["o"][0][offers.O_URL] is None and images[0]["o"][0][offers.O_IMG] is None
    assert images[1]["safe"] is None  # shown as its URL text, never loaded or linked


def test_the_token_never_reaches_the_page() -> None:
    records = [record(Q1, title=f"leaked {TOKEN} here", img=f"https://cbu01.alicdn.com/x.jpg?token={TOKEN}")]
    failures = [failure(Q2, message=f"GET /search?apiToken={TOKEN.upper()} failed")]
    summary = {"spider": "image_search", "finish_reason": f"x{TOKEN}", "totals": {"images": 2}, "images": []}
    page = report_page.render(model.report_data(records, failures, summary, secrets=[TOKEN]))
    assert TOKEN.lower() not in page.lower()
    assert "[redacted]" in page


def test_a_token_in_the_file_name_is_not_in_the_title(tmp_path: Path) -> None:
    products = write_jsonl(tmp_path / f"run-{TOKEN}.jsonl", [record(Q1)])
    page = report.build(products, secrets=iter([TOKEN]))
    assert TOKEN not in page and "<title>1688 matches: run-[redacted].jsonl</title>" in page


def test_build_reads_failures_and_summary_from_beside_the_feed(tmp_path: Path) -> None:
    products = write_jsonl(tmp_path / "products.jsonl", [record(Q1)])
    write_jsonl(tmp_path / "products.failures.jsonl", [failure(DENIED)])
    (tmp_path / "products.summary.json").write_text(json.dumps({"finish_reason": "finished", "totals": {"x": 1}}))
    data = embedded(report.build(products))
    assert data["run"]["finish_reason"] == "finished" and data["failures"] == 1
    assert [i["u"] for i in data["images"]] == [Q1, DENIED]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"query_image_url": "a"}\n{"title": \n', "products.jsonl line 2: malformed JSON"),
        ("\n[1, 2]\n", "products.jsonl line 2: not a product record (a JSON list, not an object)"),
        ('{"title": "no image"}\n', "products.jsonl line 1: not a product record (no query_image_url)"),
    ],
)
def test_bad_feeds_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    products = tmp_path / "products.jsonl"
    products.write_text(content)
    with pytest.raises(report.ReportError) as caught:
        report.build(products)
    assert message in str(caught.value).replace(str(tmp_path) + "/", "")
    assert "\n" not in str(caught.value)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(report.ReportError, match=r"nope\.jsonl: no such file"):
        report.build(tmp_path / "nope.jsonl")
    products = write_jsonl(tmp_path / "p.jsonl", [record(Q1)])
    with pytest.raises(report.ReportError, match=r"s\.json: no such file"):
        report.build(products, summary=tmp_path / "s.json")
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(report.ReportError, match="not a run summary"):
        report.build(products, summary=tmp_path / "bad.json")


# --- the command ----------------------------------------------------------------------------


def scrapy_report(*args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "TMAPI_API_TOKEN": token}
    return run_scrapy(["report", *args], env, timeout=60)


def test_command_writes_the_report_beside_the_feed_or_where_asked(tmp_path: Path) -> None:
    products = write_jsonl(tmp_path / "run.jsonl", [record(Q1, rank=r, title=f"t {TOKEN}") for r in (1, 2, 3)])
    done = scrapy_report(str(products), "--top", "2", token=TOKEN)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "run.report.html").read_text()
    assert "report written to" in done.stdout and TOKEN not in page
    assert len(embedded(page)["images"][0]["o"]) == 2
    out = tmp_path / "sub" / "r.html"
    assert scrapy_report(str(products), "-o", str(out), "--best-by", "price", "--max-moq", "5").returncode == 0
    # The sourcing choice is the page's default view (docs/sourcing.md).
    assert embedded(out.read_text())["defaults"] == {"sort": "price_up", "badges": 0, "max": None, "moq": 5}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "error: missing.jsonl: no such file"),
        (["{dir}/bad.jsonl"], "error: {dir}/bad.jsonl line 1: malformed JSON"),
        (["{dir}/ok.jsonl", "--top", "0"], "error: --top must be at least 1 (got 0)"),
        (["{dir}/ok.jsonl", "--top", "ten"], "error: --top must be a whole number (got 'ten')"),
        (["{dir}/ok.jsonl", "--failures", "{dir}/none.jsonl"], "error: {dir}/none.jsonl: no such file"),
        (["{dir}/ok.jsonl", "--best-by", "cheapest"], "error: bad argument best_by: 'cheapest' is not one of"),
        (["{dir}/ok.jsonl", "--bogus"], "error: unknown option --bogus (-h lists the options)"),
        (
            ["{dir}/ok.jsonl", "-o", "{dir}/ok.jsonl/r.html"],
            "error: {dir}/ok.jsonl/r.html: cannot write the report"
            " (Not a directory: {dir}/ok.jsonl is a file, not a folder)",
        ),
    ],
)
def test_command_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    write_jsonl(tmp_path / "ok.jsonl", [record(Q1)])
    done = scrapy_report(*(a.format(dir=tmp_path) for a in args))
    assert done.returncode == 2
    assert done.stderr.startswith(message.format(dir=tmp_path)) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


# --- TMAPI_REPORT=true in a crawl -------------------------------------------------------------


def test_crawl_writes_the_report_beside_the_feed_when_asked(tmp_path: Path) -> None:
    urls = [Q1.replace("query-1", "total-25"), DENIED]
    report_file = tmp_path / "products.report.html"
    with SandboxThread(SandboxConfig(tokens=(TOKEN,), deny_patterns=(r"denied\.example\.net",))) as sb:
        result = crawl(tmp_path, sb.base_url, {"urls": ",".join(urls)}, {"TMAPI_REPORT": "true"}, token=TOKEN)
        assert result.returncode == 0, result.stderr[-3000:]
        page = report_file.read_text()
        plain = crawl(tmp_path / "off", sb.base_url, {"urls": urls[0]}, token=TOKEN)
        # Again without a summary: the first run's summary and failures beside the feed are not this run's.
        again = crawl(
            tmp_path, sb.base_url, {"urls": urls[0]}, {"TMAPI_REPORT": "true", "TMAPI_SUMMARY": "false"}, token=TOKEN
        )
        assert again.returncode == 0, again.stderr[-3000:]
    data = embedded(page)
    assert data["run"]["finish_reason"] == "finished" and data["run"]["totals"]["paid_calls"] == 3
    by_url = {i["u"]: i for i in data["images"]}
    assert len(by_url[urls[0]]["o"]) == 25 and by_url[urls[0]]["pages"] == 2
    assert by_url[DENIED]["failures"] == 1 and by_url[DENIED]["status"] == "failed"
    assert TOKEN not in page
    assert "HTML report written to" in result.stderr
    assert plain.returncode == 0 and not list((tmp_path / "off").glob("*.report.html"))
    second = embedded(report_file.read_text())
    assert "finish_reason" not in second["run"] and [i["u"] for i in second["images"]] == [urls[0]]
    assert second["run"]["totals"] == {"images": 1, "items": 25, "pages": 2} and second["failures"] == 0


def test_a_bad_report_setting_stops_the_crawl_with_one_line(tmp_path: Path) -> None:
    result = crawl(
        tmp_path, None, {"urls_file": "examples/images.txt"}, {"TMAPI_SANDBOX": "true", "TMAPI_REPORT": "maybe"}
    )
    assert result.returncode == 2
    assert result.stderr == "error: TMAPI_REPORT must be true or false, got 'maybe'\n"

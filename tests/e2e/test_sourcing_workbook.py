"""The sourcing workbook for real: `-O sourcing.xlsx` on a crawl of the sandbox, `scrapy sheet`
on a feed, bad input, and the file opened by a real spreadsheet program (LibreOffice)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.crawl_helpers import crawl, run_scrapy
from tests.report_data import failure
from tests.unit.test_sourcing import converted, small_case, with_input
from tmapi_spiders.commands.sheet import collect
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread
from tmapi_spiders.spreadsheets import sourcing, workbook

TOKEN = "tok-5c0e7b21d9aa40f3"
IMG = "https://cbu01.alicdn.com/img/ibank/"
DENIED = "https://denied.example.net/photo.jpg"


def sheets(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(path)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def test_crawl_writes_the_workbook_with_failures_and_no_matches(tmp_path: Path) -> None:
    urls = [IMG + "total-25.jpg", IMG + "total-3.jpg", DENIED, IMG + "total-0.jpg"]
    config = SandboxConfig(tokens=(TOKEN,), deny_patterns=(r"denied\.example\.net",))
    with SandboxThread(config) as sb:
        result = crawl(
            tmp_path,
            sb.base_url,
            {"urls": ",".join(urls), "best": "2", "best_by": "price", "max_moq": "1000"},
            output="sourcing.xlsx",
            token=TOKEN,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    path = tmp_path / "sourcing.xlsx"
    book = load_workbook(path)
    assert book.sheetnames == ["offers", "best", "suppliers", "about"]
    offers = book["offers"]
    assert offers.freeze_panes == "A2" and offers.auto_filter.ref == "A1:O29"
    rows = list(offers.iter_rows(min_row=2))
    assert len(rows) == 28 == result.stats["tmapi/items"]  # every offer paid for, filters or not
    link = rows[0][-1]
    assert link.value == "open" and re.fullmatch(r"https://detail\.1688\.com/offer/\d+\.html", link.hyperlink.target)
    best = {row[0]: row for row in sheets(path)["best"][1:]}
    assert best[urls[0]][1] == "ok" and best[urls[0]][3:5] == (25, 25)
    assert best[urls[0]][6] <= best[urls[0]][11]  # by price: the cheaper first
    denied = json.loads((tmp_path / "sourcing.failures.jsonl").read_text())
    assert best[DENIED][1:3] == ("failed", f"convert {denied['status']}: {denied['message']}")
    assert best[urls[3]][1:3] == ("no match", "the search found no offer")
    suppliers = sheets(path)["suppliers"]
    assert suppliers[0][:3] == ("supplier", "supplier id", "products matched") and len(suppliers) > 1
    # The failures feed is written beside the workbook as for any other format.
    assert denied["query_image_url"] == DENIED and TOKEN.encode() not in path.read_bytes()


def test_a_bad_choice_stops_the_crawl_before_any_call(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(tokens=(TOKEN,))) as sb:
        result = crawl(
            tmp_path, sb.base_url, {"urls": IMG + "total-3.jpg", "best_by": "cheapest"}, output="s.xlsx", token=TOKEN
        )
        calls = len(sb.calls())
    assert result.returncode == 2 and calls == 0
    assert result.stderr == "error: bad argument best_by: 'cheapest' is not one of rank, price, sales\n"


def sheet(*args: str) -> subprocess.CompletedProcess[str]:
    return run_scrapy(["sheet", *args], dict(os.environ), timeout=60)


def feed(tmp_path: Path) -> Path:
    """A products feed with spreadsheet rows and USD prices, a torn last line and a stranger."""
    rows = {"https://img.example/a.jpg": 2, "https://img.example/b.jpg": 3, "https://img.example/c.jpg": 4}
    records = [with_input(converted(r), rows[r["query_image_url"]], r["query_image_url"][-5]) for r in small_case()]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines += [json.dumps({"some": "other record"}), lines[0][:200]]
    path = tmp_path / "products.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "products.failures.jsonl").write_text(
        json.dumps(
            {
                **failure("https://img.example/d.jpg", "search", 500, "gateway error"),
                "input": {"sku": "d"},
                "input_row": 5,
            }
        )
        + "\n"
    )
    return path


def test_sheet_command_reads_a_feed_and_its_failures(tmp_path: Path) -> None:
    products = feed(tmp_path)
    done = sheet(str(products), "-o", str(tmp_path / "out.xlsx"), "--best", "1", "--max-price", "20")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"warning: {products}: 2 lines skipped (torn, or not product records)\n"
    assert done.stdout.startswith(f"workbook written to {tmp_path / 'out.xlsx'} (8 offers, 4 products")
    got = sheets(tmp_path / "out.xlsx")
    assert got["offers"][0][:4] == ("sheet row", "sku", "qty", "note") and len(got["offers"]) == 9
    best = {row[0]: row for row in got["best"][1:]}
    assert best[5][1] == "d" and best[5][5:7] == ("failed", "search 500: gateway error")
    # Product a by rank within 20 CNY: rank 1 (12.00); rank 3 (S2's 30.00) is above the limit.
    assert best[2][5] == "ok" and best[2][8:11] == (2, "Offer 1 for a.jpg", 12.0)
    # Within 20 CNY: S1 has a (10.00) and b (5.00); S3 and S4 have c; S2's are all above 20.
    assert [row[1] for row in got["suppliers"][1:]] == ["S1", "S4", "S3"]
    assert dict(row[:2] for row in got["about"])["currency rate"] == "1 CNY = 0.1385 USD (8 offers)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "error: missing.jsonl: no such file\n"),
        (
            ["{feed}", "--best-by", "cheapest"],
            "error: bad argument best_by: 'cheapest' is not one of rank, price, sales\n",
        ),
        (["{feed}", "-o", "{feed}.csv"], "error: {feed}.csv: the workbook is an .xlsx file: give -o NAME.xlsx\n"),
    ],
)
def test_sheet_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    products = feed(tmp_path)
    done = sheet(*(a.format(feed=products) for a in args))
    assert done.returncode == 2
    assert done.stderr.startswith(message.format(feed=products)) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "products.xlsx").exists() and not (tmp_path / "products.jsonl.csv").exists()


SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed: apt-get install libreoffice-calc")
def test_libreoffice_opens_the_workbook(tmp_path: Path) -> None:
    """What a real spreadsheet program reads: every sheet, a link, a converted price, the ranking."""
    products = feed(tmp_path)
    collection, _, _ = collect(products, tmp_path / "products.failures.jsonl", None)
    workbook.write(collection, sourcing.Choice(), str(tmp_path / "book.xlsx"), products.name)
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}"
    done = subprocess.run(
        [
            str(SOFFICE),
            profile,
            "--headless",
            "--convert-to",
            "html",
            "--outdir",
            str(tmp_path),
            str(tmp_path / "book.xlsx"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and (tmp_path / "book.html").is_file(), done.stderr
    page = (tmp_path / "book.html").read_text(encoding="utf-8", errors="replace")
    tables = re.findall(r"<table.*?</table>", page, re.S)
    assert len(tables) == 4  # offers, best, suppliers, about

    def cells(table: str) -> list[list[str]]:
        rows = re.findall(r"<tr.*?</tr>", table, re.S)
        return [
            [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td.*?</td>", r, re.S)]
            for r in rows
        ]

    offers = cells(tables[0])
    assert len([r for r in offers if r and r[0]]) == 1 + 8
    header = offers[0]
    first = dict(zip(header, offers[1], strict=False))
    assert first["price from (USD)"] == "1.662" and first["link"] == "open"
    assert 'href="https://detail.1688.com/offer/' in tables[0]
    suppliers = cells(tables[2])
    # By hand (tests/unit/test_sourcing.py, small_case): S2 has 3 products, S1 2, S4 and S3 one each.
    assert [r[1] for r in suppliers[1:5]] == ["S2", "S1", "S4", "S3"]

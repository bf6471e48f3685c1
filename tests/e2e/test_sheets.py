"""Seed lists as spreadsheets (CSV, XLSX): real crawls of the sandbox carry each row's other
columns into its records (`input`, `input_row`), prices are converted at the rate given,
and every unusable sheet or currency argument is one line, exit 2, nothing paid.

The crawls are small (a few images of a few items each) and the bad inputs run side by
side: what this module adds to the suite is a few seconds."""

from __future__ import annotations

import json
import subprocess
import zipfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SANDBOX_TOKEN
from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, scrapy
from tests.redis_server import RedisServer
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxThread

ALI = "https://cbu01.alicdn.com/img/ibank/sheet-{}/total-{}.jpg"
DENIED = "https://denied.example.com/sheet/refused.jpg"  # the session sandbox refuses to convert it

CSV_TEXT = (
    "sku,名称,my_price,Image_URL,note\n"
    f"A-17,手机壳 红色,12.5,{ALI.format('a', 3)},\n"
    f'A-18,Bottle,8,{DENIED},"said ""no"""\n'
    "A-19,No picture,1,,\n"
    f"A-20,Again,2,{ALI.format('a', 3)},the same image as row 2\n"
    f"A-21,Box,,{ALI.format('b', 2)},007\n"
)


def by_row(records: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    rows: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        rows.setdefault(record["input_row"], []).append(record)
    return rows


def by_hand(cny: str | None, rate: str) -> float | None:
    if not cny:
        return None  # a price the API left empty stays empty
    return float((Decimal(cny) * Decimal(rate)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def test_csv_rows_come_back_on_their_records_with_converted_prices(tmp_path: Path, sandbox: SandboxThread) -> None:
    sheet = tmp_path / "products.csv"
    sheet.write_text(CSV_TEXT, encoding="utf-8-sig")  # with a BOM, as Excel's "CSV UTF-8"
    args = {"urls_file": str(sheet), "currency": "usd", "rate": "0.1385"}
    result = crawl(tmp_path, sandbox.base_url, args, token=SANDBOX_TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]

    products = by_row(result.products)
    assert sorted(products) == [2, 6] and len(products[2]) == 3 and len(products[6]) == 2
    assert {json.dumps(p["input"], ensure_ascii=False) for p in products[2]} == {
        '{"sku": "A-17", "名称": "手机壳 红色", "my_price": 12.5, "note": null}'
    }
    assert products[6][0]["input"] == {"sku": "A-21", "名称": "Box", "my_price": None, "note": "007"}
    [failure] = result.failures
    assert failure["input_row"] == 3 and failure["stage"] == "convert"
    assert failure["input"] == {"sku": "A-18", "名称": "Bottle", "my_price": 8, "note": 'said "no"'}
    assert "urls_file" in result.stderr and "row 4 skipped: no image in column 'Image_URL'" in result.stderr
    assert result.stats["tmapi/seeds_bad_line"] == 1

    record = products[2][0]  # converted by hand from the record's own CNY strings
    converted = record["converted"]
    assert converted["currency"] == "USD" and converted["rate"] == 0.1385
    assert converted["price"] == by_hand(record["price"], "0.1385")
    for name, value in record["price_info"].items():
        assert converted["price_info"][name] == by_hand(value, "0.1385")
    assert [t["price"] for t in converted["quantity_prices"]] == [
        by_hand(t["price"], "0.1385") for t in record["quantity_prices"]
    ]
    assert isinstance(record["price"], str)  # the CNY fields as they came
    assert "converted" not in failure
    summary = json.loads((tmp_path / "products.summary.json").read_text(encoding="utf-8"))
    assert summary["currency"] == {"currency": "USD", "rate": 0.1385}
    assert "1 CNY = 0.1385 USD" in result.stderr


def test_xlsx_sheet_by_name_numbers_text_empty_and_formula_cells(tmp_path: Path, sandbox: SandboxThread) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.active.title = "Notes"
    workbook.active.append(["nothing to search here"])
    sheet = workbook.create_sheet("Products")
    sheet.append(["SKU", "Bild", "qty", "price", "备注", "total", "empty"])
    sheet.append(["X-1", ALI.format("x", 2), 3, 2.5, "手机壳", "=C2*D2", None])
    sheet.append([])
    sheet.append([None, "ftp://files.example.com/a.jpg"])
    sheet.append([7, DENIED, 1.0, None, "", "=C5*2"])
    path = tmp_path / "products.xlsx"
    workbook.save(path)
    args = {"urls_file": str(path), "sheet": "Products", "image_column": "bild"}
    result = crawl(tmp_path, sandbox.base_url, args, token=SANDBOX_TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]

    assert {p["input_row"] for p in result.products} == {2} and len(result.products) == 2
    assert result.products[0]["input"] == {
        "SKU": "X-1",
        "qty": 3,
        "price": 2.5,
        "备注": "手机壳",
        "total": "=C2*D2",  # openpyxl writes no cached value: the formula's text
        "empty": None,
    }
    assert "converted" not in result.products[0]
    [failure] = result.failures
    assert failure["input_row"] == 5
    assert failure["input"] == {"SKU": 7, "qty": 1, "price": None, "备注": None, "total": "=C5*2", "empty": None}
    assert "row 4 skipped: not an http(s) URL" in result.stderr


def _bad_sheets(tmp_path: Path) -> list[tuple[dict[str, str], str]]:
    """(spider arguments, what the one line says) for each kind of unusable sheet or argument
    (the other messages of each kind: tests/unit/test_sheets.py)."""
    openpyxl = pytest.importorskip("openpyxl")
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml")
    good = tmp_path / "good.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.title = "Sheet1"
    workbook.active.append(["sku", "image"])
    for n in range(200):
        workbook.active.append([f"S-{n}", ALI.format(n, 1)])
    workbook.save(good)

    locked = tmp_path / "locked.xlsx"  # a real password-protected workbook: an OLE2 file, not a zip
    with open(good, "rb") as source, open(locked, "wb") as target:
        ooxml.OOXMLFile(source).encrypt("pw", target)
    damaged = tmp_path / "damaged.xlsx"  # a sound zip whose sheet breaks off after row 100
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "xl/worksheets/sheet1.xml":
                data = data[: data.index(b'<row r="100"')] + b'<row r="100"><c r="A100" t="inlineStr"><is><t>'
            target.writestr(name, data)
    gbk = tmp_path / "gbk.csv"
    good_part = f"sku,image\nA,{ALI.format('g', 1)}\nB,".encode()
    gbk.write_bytes(good_part + "手机壳\n".encode("gbk"))
    columns = tmp_path / "columns.csv"
    columns.write_text(f"sku,picture link\nA,{ALI.format('c', 1)}\n", encoding="utf-8")
    return [
        ({"urls_file": str(columns)}, "has no image column: name one image, image_url"),
        ({"urls_file": str(locked)}, "is password-protected"),
        ({"urls_file": str(damaged)}, "is not a readable XLSX workbook ("),
        ({"urls_file": str(gbk)}, f"urls_file {str(gbk)!r} is not UTF-8 text: byte {len(good_part)} (line 3)"),
        ({"urls_file": str(good), "sheet": "Prices"}, "has no sheet 'Prices'; its sheets are 'Sheet1'"),
        ({"urls_file": str(good), "currency": "USD"}, "-a currency needs -a rate too"),
    ]


def test_bad_sheets_and_currency_arguments_are_one_line_exit_2_nothing_paid(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    cases = _bad_sheets(tmp_path)
    runs = []
    for n, (args, _) in enumerate(cases):  # side by side: each only starts and stops
        cmd = ["crawl", "image_search", "-O", str(tmp_path / f"out-{n}.jsonl")]
        cmd += [a for key, value in args.items() for a in ("-a", f"{key}={value}")]
        cmd += ["-s", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}"]
        runs.append(scrapy(cmd, sandbox.base_url, SANDBOX_TOKEN, stderr=subprocess.PIPE))
    for (args, expected), run in zip(cases, runs, strict=True):
        _, err = run.communicate(timeout=120)
        assert run.returncode == outcome.BAD_INPUT, (args, err[-2000:])
        assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, (args, err)
    assert sandbox.stats()["total_calls"] == 0
    assert not list(tmp_path.glob("out-*.jsonl"))


def test_scrapy_seed_from_a_csv_carries_input_to_the_worker(tmp_path: Path, sandbox: SandboxThread) -> None:
    sheet = tmp_path / "products.csv"
    sheet.write_text(CSV_TEXT, encoding="utf-8")
    job = "sheet-in"
    with RedisServer() as server:
        settings = ["-s", f"REDIS_URL={server.url}", "-s", f"TMAPI_JOB={job}"]
        seeded = scrapy(["seed", str(sheet), *settings], sandbox.base_url, SANDBOX_TOKEN, stderr=subprocess.PIPE)
        out, err = seeded.communicate(timeout=60)
        assert seeded.returncode == 0, err
        assert "3 seeds pushed, 0 already in the job, 1 bad lines skipped" in out
        assert "products.csv row 4 skipped: no image" in err
        pushed = [json.loads(s) for s in server.client().lrange(JobKeys.for_job(job).seeds, 0, -1)]
        assert {s["input_row"]: s["input"]["sku"] for s in pushed} == {2: "A-17", 3: "A-18", 6: "A-21"}

        worker = {**QUICK_WORKER_SETTINGS, "REDIS_URL": server.url, "TMAPI_JOB": job}
        result = crawl(tmp_path, sandbox.base_url, settings=worker, token=SANDBOX_TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]
    products = by_row(result.products)
    assert sorted(products) == [2, 6] and len(products[2]) == 3
    assert all(p["input"]["my_price"] == 12.5 for p in products[2])
    assert [(f["input_row"], f["input"]["sku"]) for f in result.failures] == [(3, "A-18")]


def test_a_csv_that_goes_bad_after_its_first_rows_stops_the_crawl_with_exit_2(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    """Read as the crawl goes, a list whose bytes stop being UTF-8 further down is found
    there: the rows before it are searched, then the crawl stops loudly, never exit 0."""
    sheet = tmp_path / "products.csv"
    # 3,000 rows of two images (far past what is decoded before the first call), then GBK.
    good = "".join(f"A-{i},{ALI.format(f'g{i % 2}', 2)}\n" for i in range(3000))
    sheet.write_bytes(("sku,image\n" + good).encode() + "A-9,手机壳\n".encode("gbk"))
    result = crawl(tmp_path, sandbox.base_url, {"urls_file": str(sheet)}, token=SANDBOX_TOKEN)
    assert result.returncode == outcome.BAD_INPUT, result.stderr[-2000:]
    [line] = [line for line in result.stderr.splitlines() if "Stopping:" in line]
    assert "is not UTF-8 text: byte" in line and "(2 images of the list were started before it)" in line, line
    assert result.stats["finish_reason"] == "tmapi_bad_seed_list"
    assert {p["input_row"] for p in result.products} == {2, 3}  # the two images before it, searched
    assert "Traceback" not in result.stderr

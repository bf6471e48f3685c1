"""Spreadsheet seed lists (sheets.py), the `input` they carry, and prices converted at a given rate.

Pure functions and small files written here; the crawls that carry `input` into feeds are
in tests/e2e/test_sheets.py."""

from __future__ import annotations

import csv
import datetime
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.seeds import seed_fingerprint, seed_json
from tmapi_spiders.api import contract
from tmapi_spiders.api.paging import ChainState, paginate
from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.config import ConfigError, check_seed_list, job_config
from tmapi_spiders.crawl.exporters import FlatCsvItemExporter
from tmapi_spiders.crawl.seeds import BadLine, Seed, SeedError
from tmapi_spiders.distributed.start import read_seed
from tmapi_spiders.spreadsheets.currency import convert_price, converted, currency_from, rate_decimal
from tmapi_spiders.spreadsheets.sheets import csv_value, find_columns, first_bad_byte, parse_sheet, xlsx_value

IMG = "https://cbu01.alicdn.com/img/ibank/{}.jpg"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def entries(path: Path, **options: Any) -> list[Seed | BadLine]:
    return list(parse_sheet(path, f"urls_file {path.name!r}", **options))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", None),
        ("12.5", 12.5),
        ("3", 3),
        ("-4", -4),
        ("12.0", 12),
        ("0.25", 0.25),
        ("007", "007"),  # a code keeps its zeros
        ("1e3", "1e3"),
        ("+5", "+5"),
        ("1,234", "1,234"),
        (" 5", " 5"),
        ("1234567890123456", "1234567890123456"),  # more digits than a spreadsheet keeps
        ("A-17", "A-17"),
        ("手机壳", "手机壳"),
    ],
)
def test_csv_cells_numbers_as_numbers_text_as_written(text: str, value: Any) -> None:
    assert csv_value(text) == value and type(csv_value(text)) is type(value)


def test_xlsx_cells() -> None:
    assert xlsx_value(None) is None and xlsx_value("") is None
    assert xlsx_value(3.0) == 3 and type(xlsx_value(3.0)) is int
    assert xlsx_value(2.5) == 2.5 and xlsx_value(True) is True and xlsx_value(7) == 7
    assert xlsx_value(datetime.datetime(2025, 1, 2)) == "2025-01-02"
    assert xlsx_value(datetime.datetime(2025, 1, 2, 8, 30)) == "2025-01-02T08:30:00"
    assert xlsx_value(datetime.time(8, 30)) == "08:30:00"


def test_image_column_by_name_in_order_of_preference_or_given() -> None:
    columns = find_columns(["URL", "SKU", "Image URL", "", "price"], None, "x")
    assert (columns.image, columns.image_name) == (2, "Image URL")  # image_url before url
    assert columns.carried == ((0, "URL"), (1, "SKU"), (4, "price"))  # unnamed columns are not carried
    assert find_columns(["sku", "Photo"], None, "x").image == 1
    assert find_columns(["sku", "pic"], "PIC", "x").image == 1
    with pytest.raises(SeedError, match=r"has no image column: .*its columns are 'sku', 'pic'"):
        find_columns(["sku", "pic", None], None, "x")
    with pytest.raises(SeedError, match=r"has no column 'foto' \(image_column\); its columns are 'sku', 'pic'"):
        find_columns(["sku", "pic"], "foto", "x")
    with pytest.raises(SeedError, match=r"two columns are named 'note' \(B and D\)"):
        find_columns(["url", "note", "x", "note"], None, "x")
    with pytest.raises(SeedError, match=r"two columns are named 'image' \(B and D\)"):
        find_columns(["sku", "image", "x", "image"], None, "x")
    with pytest.raises(SeedError, match=r"two columns are named 'pic' \(A and B\)"):
        find_columns(["pic", "pic"], "pic", "x")


def test_duplicate_columns_named_by_their_letters() -> None:
    header = [f"c{i}" for i in range(703)]
    header[0] = "url"
    header[702] = header[26]
    with pytest.raises(SeedError, match=r"two columns are named 'c26' \(AA and AAA\)"):
        find_columns(header, None, "x")


def test_csv_rows_numbered_as_a_spreadsheet_shows_them(tmp_path: Path) -> None:
    text = (
        "\ufeffsku;image;note\r\n"  # BOM, semicolons (a European Excel's CSV)
        f'A-1;{IMG.format(1)};"two\r\nlines"\r\n'  # a quoted line break: still one row (2)
        "\r\n"  # a blank row (3): skipped
        "A-2;;x\r\n"  # row 4: no image
        f"A-3;{IMG.format(1)};again\r\n"  # row 5: the same image: searched once, row 2's input
        "A-4;ftp://x/y.jpg\r\n"  # row 6
        f"A-5;{IMG.format(5)}\r\n"  # a short row: missing cells are null
    )
    got = entries(write(tmp_path, "p.csv", text))
    assert got == [
        Seed(IMG.format(1), 2, {"sku": "A-1", "note": "two\r\nlines"}),
        BadLine(4, "no image in column 'image'"),
        BadLine(6, "not an http(s) URL or a converted /search/ path (ftp)"),
        Seed(IMG.format(5), 7, {"sku": "A-5", "note": None}),
    ]


def test_csv_not_utf8_names_the_byte(tmp_path: Path) -> None:
    data = f"sku,image\nA-1,{IMG.format(1)}\n".encode() + "B-2,caf\u00e9\n".encode("cp1252")
    path = write(tmp_path, "p.csv", data)
    assert first_bad_byte(path) == (len(data) - 2, 3)
    with pytest.raises(SeedError, match=rf"urls_file 'p.csv' is not UTF-8 text: byte {len(data) - 2} \(line 3\)"):
        entries(path)


def test_a_cell_or_header_carrying_the_token_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", f"image,note\n{IMG.format(1)},key tok-SECRET\n{IMG.format(2)},ok\n")
    got = entries(path, redactor=Redactor(["tok-SECRET"]))
    assert got == [BadLine(2, "a cell carries the API token"), Seed(IMG.format(2), 3, {"note": "ok"})]
    path = write(tmp_path, "q.csv", f"image,tok-SECRET\n{IMG.format(1)},x\n")
    with pytest.raises(SeedError, match="header row carries the API token"):
        entries(path, redactor=Redactor(["tok-SECRET"]))


def test_empty_sheet_and_no_searchable_row(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="has no header row"):
        entries(write(tmp_path, "e.csv", "\n\n"))
    config = job_config({"urls_file": str(write(tmp_path, "b.csv", "image,sku\n,1\nftp://x/y,2\n"))})
    with pytest.raises(ConfigError, match=r"has no searchable image URL \(2 bad rows; row 2: no image"):
        check_seed_list(config)


def test_xlsx_formulas_cached_values_and_gaps(tmp_path: Path) -> None:
    """A formula with a cached value (as Excel saves it) gives the value; one without (as
    openpyxl writes it) gives its text. Empty rows keep the numbering of the rows below."""
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["sku", "picture", "qty", "price", "total", "later"])
    sheet.append(["A-1", IMG.format(1), 3, 2.5, "=C2*D2", "=C2+1"])
    sheet.append([])
    sheet.append(["A-2", IMG.format(2), None, "=1/0"])
    path = tmp_path / "p.xlsx"
    workbook.save(path)
    with zipfile.ZipFile(path) as source:  # what Excel writes: each formula with its last value
        parts = {name: source.read(name) for name in source.namelist()}
    sheet_xml = parts["xl/worksheets/sheet1.xml"].decode()
    assert "<f>C2*D2</f><v></v>" in sheet_xml
    sheet_xml = sheet_xml.replace("<f>C2*D2</f><v></v>", "<f>C2*D2</f><v>7.5</v>")
    sheet_xml = sheet_xml.replace('<c r="D4"><f>1/0</f><v></v>', '<c r="D4" t="e"><f>1/0</f><v>#DIV/0!</v>')
    parts["xl/worksheets/sheet1.xml"] = sheet_xml.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    assert entries(path) == [
        Seed(IMG.format(1), 2, {"sku": "A-1", "qty": 3, "price": 2.5, "total": 7.5, "later": "=C2+1"}),
        Seed(IMG.format(2), 4, {"sku": "A-2", "qty": None, "price": "#DIV/0!", "total": None, "later": None}),
    ]


def test_unreadable_workbooks(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.active.append(["image"])
    good = tmp_path / "good.xlsx"
    workbook.save(good)
    truncated = write(tmp_path, "truncated.xlsx", good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SeedError, match=r"urls_file 'truncated.xlsx' is not a readable XLSX workbook \(BadZipFile"):
        entries(truncated)
    csv_named_xlsx = write(tmp_path, "text.xlsx", f"image\n{IMG.format(1)}\n")
    with pytest.raises(SeedError, match="is not a readable XLSX workbook"):
        entries(csv_named_xlsx)
    with pytest.raises(SeedError, match="has no sheet 'Prices'; its sheets are 'Sheet'"):
        entries(good, sheet="Prices")
    assert entries(good) == []  # a header and no rows: nothing to search (preflight says so)
    with pytest.raises(SeedError, match="cannot read urls_file"):
        entries(tmp_path / "missing.xlsx")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"currency": "USD"}, "-a currency needs -a rate too"),
        ({"rate": "0.14"}, "-a rate needs -a currency too"),
        ({"currency": "US", "rate": "1"}, "'US' is not a 3-letter currency code"),
        ({"currency": "dollar", "rate": "1"}, "not a 3-letter currency code"),
        ({"currency": "U$D", "rate": "1"}, "not a 3-letter currency code"),
        ({"currency": "USD", "rate": "0"}, "'0' is not a positive number"),
        ({"currency": "USD", "rate": "-0.1"}, "not a positive number"),
        ({"currency": "USD", "rate": "nan"}, "not a positive number"),
        ({"currency": "USD", "rate": "inf"}, "not a positive number"),
        ({"currency": "USD", "rate": "0,14"}, "not a positive number"),
    ],
)
def test_bad_currency_arguments(args: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        job_config({"urls": IMG.format(1), **args})


def test_currency_code_upper_cased() -> None:
    given = currency_from({"currency": " usd", "rate": "0.1385"})
    assert given is not None and given.to_dict() == {"currency": "USD", "rate": 0.1385}
    assert currency_from({}) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"urls_file": "p.txt", "sheet": "A"}, "-a sheet is for a spreadsheet seed list"),
        ({"urls": IMG.format(1), "image_column": "A"}, "-a image_column is for a spreadsheet seed list"),
        ({"urls_file": "p.csv", "sheet": "A"}, "a CSV has one sheet"),
        ({"urls_file": "p.XLS"}, "an old Excel .xls workbook"),
    ],
)
def test_sheet_arguments_checked_against_the_list(args: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        job_config(args)


def test_converted_prices_by_hand() -> None:
    record = {
        "price": "19.00",
        "price_info": {"drop_ship_price": "17.10", "wholesale_price": "", "origin_price": None},
        "quantity_prices": [{"begin_num": "1", "end_num": "", "price": "19.00"}, "junk"],
    }
    assert converted(record, "USD", 0.1385) == {
        "currency": "USD",
        "rate": 0.1385,
        "price": 2.6315,  # 19.00 x 0.1385, exactly
        "price_info": {"drop_ship_price": 2.3684, "wholesale_price": None, "origin_price": None},  # 2.36835 up
        "quantity_prices": [{"begin_num": "1", "end_num": "", "price": 2.6315}],
    }
    assert converted({}, "EUR", 0.13) == {
        "currency": "EUR",
        "rate": 0.13,
        "price": None,
        "price_info": {"drop_ship_price": None, "wholesale_price": None, "origin_price": None},
        "quantity_prices": [],
    }
    rate = rate_decimal(0.1)
    assert [convert_price(v, rate) for v in ("abc", "NaN", True, 5, "1e2")] == [None, None, None, 0.5, 10.0]


def test_input_travels_with_the_chain_state_and_the_seed_json() -> None:
    query = contract.SearchQuery()
    state = ChainState(image=IMG.format(1), img=IMG.format(1), q=query.to_dict(), input={"sku": "A"}, input_row=7)
    meta = json.loads(json.dumps(state.to_meta()))  # what a Redis queue carries
    again = ChainState.from_meta(meta)
    assert (again.input, again.input_row) == ({"sku": "A"}, 7)
    data = {"total_count": 30, "items": [{"item_id": i} for i in range(20)]}
    step = paginate(again, data, 20, False)
    assert step.next is not None and (step.next.input, step.next.input_row) == ({"sku": "A"}, 7)
    plain = ChainState(image=IMG.format(1), img=IMG.format(1), q=query.to_dict())
    assert "input" not in plain.to_meta()  # a text list's requests are as they were
    row = seed_json(IMG.format(1), query, 0, Seed(IMG.format(1), 7, {"sku": "A", "n": 1.5}))
    assert row["input"] == {"sku": "A", "n": 1.5} and row["input_row"] == 7
    bare = seed_json(IMG.format(1), query, 0)
    assert "input" not in bare and seed_fingerprint(row) == seed_fingerprint(bare)  # input is not identity
    seed, _, _ = read_seed(json.dumps(row))
    assert seed == Seed(IMG.format(1), 7, {"sku": "A", "n": 1.5})
    with pytest.raises(ConfigError, match="input is not an object"):
        read_seed(json.dumps({**row, "input": [1]}))


def test_csv_feed_puts_input_into_extra(tmp_path: Path) -> None:
    """The CSV feed's columns are fixed before the first record: `input` goes, as JSON, into
    `extra` (with input_row and converted), under dotted names."""
    path = tmp_path / "out.csv"
    with open(path, "wb") as handle:
        exporter = FlatCsvItemExporter(handle)
        exporter.start_exporting()
        exporter.export_item({"item_id": 1, "input": {"sku": "A-1", "my price": 12.5, "note": None}, "input_row": 2})
        exporter.finish_exporting()
    with open(path, encoding="utf-8", newline="") as handle:
        row = next(csv.DictReader(handle))
    assert json.loads(row["extra"]) == {"input.sku": "A-1", "input.my price": 12.5, "input.note": None, "input_row": 2}

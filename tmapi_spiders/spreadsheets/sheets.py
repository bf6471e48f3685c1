"""Seed lists as spreadsheets: a CSV or XLSX with a header row, one image per row.

The image column is found by its name (IMAGE_COLUMNS) or named with `-a image_column=NAME`;
every other named column is carried into that row's records as `input`, with `input_row`,
the row's number as a spreadsheet program shows it. A row without a usable image is a bad
line, as in a text list. Both formats are read as streams (csv module, openpyxl read-only).
Anything wrong with the file as a whole is a SeedError: one line, before anything is paid.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.crawl.seed_reading import seed_digest, seed_key
from tmapi_spiders.crawl.seeds import TOKEN_REASON, BadLine, Seed, SeedError
from tmapi_spiders.registry import ConfigError
from tmapi_spiders.spreadsheets.xlsx_seeds import check_xlsx_parts, unreadable, xlsx_rows

# What a spreadsheet's image column may be called, in order of preference when several are there.
IMAGE_COLUMNS = ("image", "image_url", "img_url", "photo", "picture", "url")
SHEET_ARGS = ("sheet", "image_column")  # a spreadsheet seed list's sheet and image column
SHEET_KINDS = {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}
# Spreadsheets this reader cannot open, with what to do instead.
OTHER_SHEETS = {
    ".xls": "an old Excel .xls workbook: save it as .xlsx (Excel Workbook) or CSV UTF-8",
    ".ods": "an OpenDocument spreadsheet: save it as .xlsx or CSV UTF-8",
}
# A CSV cell read as a number: plain decimal notation. Leading zeros (a code such as 007), signs
# other than minus, exponents and more than 15 integer digits (what a spreadsheet keeps exactly)
# stay text, so a code is never changed by reading it.
_NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]+)?")
_DELIMITERS = (",", ";", "\t")


def sheet_kind(path: str | Path) -> str | None:
    """The kind of spreadsheet a seed list is, by its suffix: "csv", "xlsx", or None (a text list)."""
    return SHEET_KINDS.get(Path(path).suffix.lower())


def unreadable_kind(path: str | Path) -> str | None:
    """Why a file is a spreadsheet this reader cannot open (.xls, .ods), or None."""
    return OTHER_SHEETS.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class SheetList:
    """A spreadsheet seed list (`-a urls_file=` a .csv or .xlsx) with its `-a sheet` and `-a image_column`."""

    path: str
    sheet: str | None = None  # the worksheet of an XLSX list (else the first)
    image_column: str | None = None

    def entries(self, source: str, redactor: Redactor) -> Iterator[Seed | BadLine]:
        return parse_sheet(self.path, source, sheet=self.sheet, image_column=self.image_column, redactor=redactor)

    def check(self, source: str) -> None:
        """A workbook is checked whole, cheaply: one cut off after its first rows must cost nothing."""
        if sheet_kind(self.path) == "xlsx":
            check_xlsx_parts(self.path, source)


def sheet_list_from(args: Mapping[str, Any]) -> SheetList | None:
    """The spreadsheet seed list of a job's arguments (None: a text list, or none), its sheet and image
    column checked against it."""
    sheet, column = args.get("sheet") or None, args.get("image_column") or None
    path = args.get("urls_file") or ""
    kind = sheet_kind(path) if path else None
    if path and kind is None:
        other = unreadable_kind(path)
        if other:
            raise ConfigError(f"urls_file {path!r} is {other}")
    if (sheet or column) and kind is None:
        name = "sheet" if sheet else "image_column"
        raise ConfigError(f"-a {name} is for a spreadsheet seed list (urls_file ending .csv or .xlsx)")
    if sheet and kind == "csv":
        raise ConfigError("-a sheet is for an XLSX workbook: a CSV has one sheet")
    return SheetList(path, sheet, column) if kind else None


def _loose(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass(frozen=True)
class Columns:
    """Which column holds the image, and which named columns are carried (index, name)."""

    image: int
    image_name: str
    carried: tuple[tuple[int, str], ...]


def header_name(value: Any) -> str:
    """A header cell as a column name: text as written, a number as it reads (2024, not 2024.0)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def find_columns(header: Sequence[Any], image_column: str | None, source: str) -> Columns:
    """The image column (IMAGE_COLUMNS or `image_column`) and the named columns carried as
    `input`; two columns of the same name would be one key of `input`, so they are refused."""
    names = [header_name(value) for value in header]
    listed = ", ".join(repr(n) for n in names if n.strip()) or "none"
    if image_column:
        exact = [i for i, n in enumerate(names) if n == image_column]
        loose = [i for i, n in enumerate(names) if _loose(n) == _loose(image_column)]
        found = exact or loose
        if not found:
            raise SeedError(f"{source} has no column {image_column!r} (image_column); its columns are {listed}")
        image = found[0]
    else:
        by_name = {}
        for i, n in enumerate(names):
            by_name.setdefault(_loose(n), i)
        image = next((by_name[n] for n in IMAGE_COLUMNS if n in by_name), None)
        if image is None:
            raise SeedError(
                f"{source} has no image column: name one {', '.join(IMAGE_COLUMNS)} (any case),"
                f" or give -a image_column=NAME; its columns are {listed}"
            )
    carried: list[tuple[int, str]] = []
    where = {names[image]: image}  # a second column of the image column's name: which one is the image?
    for i, name in enumerate(names):
        if i == image or not name.strip():
            continue
        if name in where:
            from openpyxl.utils import get_column_letter as letter

            raise SeedError(
                f"{source}: two columns are named {name!r} ({letter(where[name] + 1)} and"
                f" {letter(i + 1)}): give them different names"
            )
        where[name] = i
        carried.append((i, name))
    return Columns(image, names[image], tuple(carried))


def csv_value(text: str) -> Any:
    """A CSV cell as `input` carries it: empty -> None, plain decimal numbers as numbers
    (int when whole), anything else the text as written."""
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        if "." not in text:
            return int(text)
        number = float(text)
        return int(number) if number.is_integer() else number
    return text


def xlsx_value(value: Any) -> Any:
    """An XLSX cell as `input` carries it: numbers (int when whole), booleans, text, dates
    and times as ISO 8601 text (a date alone when its time is midnight), empty -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()  # a date cell: spreadsheets store dates as midnight
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _blank(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


TOKEN_BLOCK = 512  # CSV rows looked at together for the token (_token_free)


def _token_free(rows: Iterator[tuple[int, list[str]]], token: Redactor) -> Iterator[tuple[int, list[str], bool]]:
    """CSV rows, each with True when it surely holds no token: TOKEN_BLOCK rows are searched
    at once as bytes, exact for ASCII text and secrets; other blocks are left to the caller."""
    ascii_secrets = all(secret.isascii() for secret in token.secrets)
    while True:
        block: list[tuple[int, list[str]]] = []
        broken: Exception | None = None
        try:
            block.extend(itertools.islice(rows, TOKEN_BLOCK))
        except Exception as exc:  # the file breaks here: its rows before still come first
            broken = exc
        text = "\n".join(cell for _, values in block for cell in values)
        clean = ascii_secrets and text.isascii() and not token.found_in_bytes(text.encode())
        for number, values in block:
            yield number, values, clean
        if broken is not None:
            raise broken
        if len(block) < TOKEN_BLOCK:
            return


def parse_sheet(
    path: str | Path,
    source: str,
    *,
    sheet: str | None = None,
    image_column: str | None = None,
    redactor: Redactor | None = None,
) -> Iterator[Seed | BadLine]:
    """Seeds and bad rows of a spreadsheet in row order; blank rows are skipped and a
    repeated image is yielded once, with its first row's `input`. SeedError (raised while
    iterating, at the header or where the file breaks) when the file cannot be used."""
    kind = sheet_kind(path)
    token = redactor if redactor and redactor.secrets else None
    rows: Iterator[tuple[int, Sequence[Any], bool]]
    if kind == "csv":
        rows = (
            _token_free(csv_rows(path, source), token) if token else ((n, v, True) for n, v in csv_rows(path, source))
        )
    else:
        rows = ((n, v, token is None) for n, v in xlsx_rows(path, source, sheet))
    convert = csv_value if kind == "csv" else xlsx_value
    columns = None
    seen: set[int] = set()  # digests of the keys (seed_reading.seed_digest): a million rows in a few MB
    for number, values, clean in rows:
        if columns is None:
            if _blank(values):
                continue
            if redactor and any(redactor.found_in(header_name(v)) for v in values):
                raise SeedError(f"{source}: the header row {TOKEN_REASON}")
            columns = find_columns(values, image_column, source)
            continue
        raw = values[columns.image] if columns.image < len(values) else None
        text = "" if raw is None else str(raw).strip()
        if not text:
            if not _blank(values):  # a blank row has no image either: skipped, not reported
                yield BadLine(number, f"no image in column {columns.image_name!r}")
            continue
        given = {name: convert(values[i]) if i < len(values) else None for i, name in columns.carried}
        # One search for the token over the image and the text cells; each is looked at alone only on a hit.
        suspect = (
            not clean
            and token is not None
            and token.found_in("\n".join([text, *(v for v in given.values() if isinstance(v, str))]))
        )
        key, reason = seed_key(text, redactor, suspect)  # as in a text list
        if key is None:
            yield BadLine(number, reason)
            continue
        if suspect and any(isinstance(v, str) and redactor.found_in(v) for v in given.values()):  # type: ignore[union-attr]
            yield BadLine(number, f"a cell {TOKEN_REASON}")
            continue
        digest = seed_digest(key)
        if digest in seen:
            continue
        seen.add(digest)
        yield Seed(key, number, given)
    if columns is None:
        raise SeedError(f"{source} has no header row (the sheet is empty)")


def csv_rows(path: str | Path, source: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of a UTF-8 CSV (a BOM is accepted), numbered as a spreadsheet
    program shows them: one row per record, a quoted line break inside a cell included.
    The delimiter is the one of `,` `;` and tab the first line holds most of."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise unreadable(path, exc) from None
    with handle, io.TextIOWrapper(handle, encoding="utf-8-sig", newline="") as text:
        try:
            first = text.readline()
            delimiter = max(_DELIMITERS, key=first.count) if first else ","
            reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
            yield from enumerate(reader, 1)
        except UnicodeDecodeError:
            offset, line = first_bad_byte(path)
            raise SeedError(
                f"{source} is not UTF-8 text: byte {offset} (line {line}) is not valid UTF-8;"
                " save the sheet as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            raise SeedError(f"{source} is not a readable CSV (row {reader.line_num}: {exc})") from None


def first_bad_byte(path: str | Path) -> tuple[int, int]:
    """(byte offset from 0, line number from 1) of the first byte that is not UTF-8 (a line
    break never falls inside a UTF-8 sequence, so each line decodes on its own)."""
    offset = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return offset + exc.start, number
            offset += len(line)
    return offset, 0

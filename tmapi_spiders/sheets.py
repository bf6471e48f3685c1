"""Seed lists as spreadsheets: a CSV or XLSX with a header row, one image per row.

The image column is found by its name (IMAGE_COLUMNS, any case, spaces or hyphens for
underscores) or named with `-a image_column=NAME`; every other named column is carried
into the records of that row as `input` (names as written, numbers as JSON numbers,
empty cells as null), with `input_row`, the row's number as a spreadsheet program shows
it. A row without a usable image is a bad line, reported with its row number, as a bad
line of a text list is.

Both formats are read as streams, never whole: a CSV through the csv module over a
UTF-8 text stream, an XLSX through openpyxl's read-only mode. Reading an XLSX keeps the
cached value of a formula cell; when a workbook holds a formula without one (a file
written by a program that does not calculate, such as openpyxl), the formula's text is
carried instead. openpyxl gives one or the other per reading, so the cached values are
read by a second read-only pass over the same sheet, opened at the first formula met
and moved on row by row with the first: a sheet without formulas is read once.

Anything wrong with the file as a whole (no image column, an unknown sheet, a corrupt
or password-protected workbook, a CSV not in UTF-8) is a SeedError: one line, before
anything is paid, because the list is read up to its first searchable row before the crawl
starts (seeds.first_seed); a CSV whose bytes go bad further down stops there, reported by
its byte offset.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tmapi_spiders.redact import Redactor
from tmapi_spiders.seeds import (
    TOKEN_REASON,
    BadLine,
    Seed,
    SeedError,
    seed_digest,
    seed_key,
)

# What a spreadsheet's image column may be called, in order of preference when several are there.
IMAGE_COLUMNS = ("image", "image_url", "img_url", "photo", "picture", "url")
SHEET_KINDS = {".csv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}
# Spreadsheets this reader cannot open, with what to do instead.
OTHER_SHEETS = {
    ".xls": "an old Excel .xls workbook: save it as .xlsx (Excel Workbook) or CSV UTF-8",
    ".ods": "an OpenDocument spreadsheet: save it as .xlsx or CSV UTF-8",
}
# An OLE2 (compound file) header: an encrypted XLSX is one, and so is an old .xls.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# What openpyxl and zipfile raise for a damaged workbook (ElementTree's ParseError is a SyntaxError).
_XLSX_ERRORS = (zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, EOFError, SyntaxError, IndexError)
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


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the column as a spreadsheet program labels it."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


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
    """The image column (IMAGE_COLUMNS or `image_column`) and the columns carried as `input`.

    Columns without a name are not carried (a spreadsheet program often reports a few empty
    ones past the last); two columns of the same name would be one key of `input`, so
    they are refused."""
    names = [header_name(value) for value in header]
    listed = ", ".join(repr(n) for n in names if n.strip()) or "none"
    image = None
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
    where: dict[str, int] = {}
    for i, name in enumerate(names):
        if i == image or not name.strip():
            continue
        if name in where:
            raise SeedError(
                f"{source}: two columns are named {name!r} ({column_letter(where[name])} and"
                f" {column_letter(i)}): give them different names"
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
    """CSV rows, each with True when it surely holds no token: read TOKEN_BLOCK rows at a
    time and search their cells once, as bytes (`found_in_bytes`: whole forms looked for in
    C). On ASCII text with ASCII secrets that search finds exactly what the text pattern
    finds (found_in), so a block it finds nothing in needs no search a row; a block it finds
    something in, or that is not ASCII, is searched a row at a time by the caller."""
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
        # A CSV cell is text, and stays the same text in `input` (csv_value): a block of rows
        # without the token anywhere is known clean at once (_token_free).
        rows = (
            _token_free(csv_rows(path, source), token) if token else ((n, v, True) for n, v in csv_rows(path, source))
        )
    else:
        rows = ((n, v, token is None) for n, v in xlsx_rows(path, source, sheet))
    convert = csv_value if kind == "csv" else xlsx_value
    columns = None
    seen: set[int] = set()  # digests of the keys (seeds.seed_digest): a million rows in a few MB
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
        # One search for the token over the image and the text cells (a line break between
        # them); where it finds it, each is looked at on its own below.
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


# CSV


def csv_rows(path: str | Path, source: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of a UTF-8 CSV (a BOM is accepted), numbered as a spreadsheet
    program shows them: one row per record, a quoted line break inside a cell included.
    The delimiter is the one of `,` `;` and tab the first line holds most of."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise SeedError(f"cannot read urls_file {str(path)!r}: {exc.strerror or exc}") from None
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
    """(byte offset from 0, line number from 1) of the first byte that is not UTF-8.

    Read again line by line only once a decode failed: a line break never falls inside a
    UTF-8 sequence, so each line decodes on its own."""
    offset = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return offset + exc.start, number
            offset += len(line)
    return offset, 0


# XLSX


def xlsx_rows(path: str | Path, source: str, sheet: str | None) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of a worksheet: the first one, or the one named `sheet`."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(OLE2_MAGIC))
    except OSError as exc:
        raise SeedError(f"cannot read urls_file {str(path)!r}: {exc.strerror or exc}") from None
    if magic == OLE2_MAGIC:
        raise SeedError(
            f"{source} is password-protected (or an old .xls saved as .xlsx): an encrypted workbook"
            " cannot be read; save it as .xlsx without a password"
        )
    workbook = _open_workbook(path, source, data_only=False)
    cached: _CachedValues | None = None
    try:
        title = _choose_sheet(workbook, source, sheet)
        cached = _CachedValues(path, source, title)
        for number, written in enumerate(_sheet_rows(workbook, title), 1):
            values = list(written)
            if any(isinstance(v, str) and v.startswith("=") for v in values):
                # A formula (or text that looks like one): its cached value where the file has one.
                stored = cached.row(number)
                for i, value in enumerate(values):
                    if isinstance(value, str) and value.startswith("=") and i < len(stored):
                        values[i] = value if stored[i] is None else stored[i]
            yield number, values
    except _XLSX_ERRORS as exc:
        raise SeedError(f"{source} is not a readable XLSX workbook ({_reason(exc)})") from None
    finally:
        workbook.close()
        if cached is not None:
            cached.close()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def check_xlsx_parts(path: str | Path, source: str) -> None:
    """SeedError when a part of the workbook is not well-formed XML (a sheet cut off inside
    a sound zip): checked whole before anything is paid, by expat at C speed, since
    openpyxl would only stumble on it when the crawl reaches that row."""
    import zipfile
    from xml.parsers import expat

    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".xml"):
                    continue
                parser = expat.ParserCreate()
                with archive.open(name) as part:
                    while chunk := part.read(1 << 20):
                        parser.Parse(chunk, False)
                parser.Parse(b"", True)
    except OSError as exc:
        raise SeedError(f"cannot read urls_file {str(path)!r}: {exc.strerror or exc}") from None
    except (zipfile.BadZipFile, expat.ExpatError, EOFError) as exc:
        where = f"{name}: " if "name" in locals() else ""
        raise SeedError(f"{source} is not a readable XLSX workbook ({where}{_reason(exc)})") from None


def _open_workbook(path: str | Path, source: str, data_only: bool) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl's notes on styles and extensions it skips
            return load_workbook(path, read_only=True, data_only=data_only)
    except OSError as exc:
        raise SeedError(f"cannot read urls_file {str(path)!r}: {exc.strerror or exc}") from None
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise SeedError(f"{source} is not a readable XLSX workbook ({_reason(exc)})") from None


def _choose_sheet(workbook: Any, source: str, sheet: str | None) -> str:
    titles = [ws.title for ws in workbook.worksheets]
    if sheet is None:
        if not titles:
            raise SeedError(f"{source} has no worksheet")
        return str(titles[0])
    if sheet not in titles:
        listed = ", ".join(repr(t) for t in titles) or "none"
        raise SeedError(f"{source} has no sheet {sheet!r}; its sheets are {listed}")
    return sheet


def _sheet_rows(workbook: Any, title: str) -> Iterator[tuple[Any, ...]]:
    worksheet = workbook[title]
    # The size a file states can be wrong (some writers say A1:A1): rows past it would be
    # dropped without a word, so every row the file holds is read.
    worksheet.reset_dimensions()
    return worksheet.iter_rows(min_row=1, values_only=True)  # type: ignore[no-any-return]


class _CachedValues:
    """The cached values of a sheet's rows, read by a second pass opened at the first
    formula and moved forward with the first pass (rows are asked for in order)."""

    def __init__(self, path: str | Path, source: str, title: str) -> None:
        self.path, self.source, self.title = path, source, title
        self.workbook: Any = None
        self.rows: Iterator[tuple[Any, ...]] = iter(())
        self.at = 0
        self.last: tuple[Any, ...] = ()

    def row(self, number: int) -> tuple[Any, ...]:
        if self.workbook is None:
            self.workbook = _open_workbook(self.path, self.source, data_only=True)
            self.rows = _sheet_rows(self.workbook, self.title)
        while self.at < number:
            self.last = next(self.rows, ())
            self.at += 1
        return self.last

    def close(self) -> None:
        if self.workbook is not None:
            self.workbook.close()

"""Reading an XLSX seed list: a worksheet's rows, and a check of the whole file before anything is paid.

A formula cell gives its cached value; where the file has none (a workbook written by a
program that does not calculate), the formula's text. openpyxl gives one or the other per
reading, so the cached values come from a second read-only pass, opened at the first formula.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

from tmapi_spiders.crawl.seeds import SeedError

# An OLE2 (compound file) header: an encrypted XLSX is one, and so is an old .xls.
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# What openpyxl and zipfile raise for a damaged workbook (ElementTree's ParseError is a SyntaxError).
_XLSX_ERRORS = (zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, EOFError, SyntaxError, IndexError)


def unreadable(path: str | Path, exc: OSError) -> SeedError:
    return SeedError(f"cannot read urls_file {str(path)!r}: {exc.strerror or exc}")


def _damaged(source: str, why: str) -> SeedError:
    return SeedError(f"{source} is not a readable XLSX workbook ({why})")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def xlsx_rows(path: str | Path, source: str, sheet: str | None) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of a worksheet: the first one, or the one named `sheet`."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(OLE2_MAGIC))
    except OSError as exc:
        raise unreadable(path, exc) from None
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
        raise _damaged(source, _reason(exc)) from None
    finally:
        workbook.close()
        if cached is not None:
            cached.close()


def check_xlsx_parts(path: str | Path, source: str) -> None:
    """SeedError when a part of the workbook is not well-formed XML (a sheet cut off inside a
    sound zip): openpyxl would only stumble on it when the crawl reaches that row."""
    name = ""
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
        raise unreadable(path, exc) from None
    except (zipfile.BadZipFile, expat.ExpatError, EOFError) as exc:
        raise _damaged(source, (f"{name}: " if name else "") + _reason(exc)) from None


def _open_workbook(path: str | Path, source: str, data_only: bool) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl's notes on styles and extensions it skips
            return load_workbook(path, read_only=True, data_only=data_only)
    except OSError as exc:
        raise unreadable(path, exc) from None
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise _damaged(source, _reason(exc)) from None


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
    # The size a file states can be wrong (some writers say A1:A1): every row the file holds is read.
    worksheet.reset_dimensions()
    return worksheet.iter_rows(min_row=1, values_only=True)  # type: ignore[no-any-return]


class _CachedValues:
    """The cached values of a sheet's rows: a second pass, opened at the first formula and
    moved forward with the first (rows are asked for in order)."""

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

"""CSV rows are searched for the token a block at a time (sheets._token_free): a row the
block search calls clean must hold the token in no cell, however the token is spelled."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.spreadsheets.sheets import _token_free

TOKEN = "tok/Secret+9"
SPELLINGS = [
    TOKEN,
    TOKEN.upper(),
    quote(TOKEN, safe=""),
    TOKEN.replace("/", "\\/"),
    "\\u0074ok/Secret+9",
    "to\u212a/Secret+9",
]
cells = st.one_of(
    st.text(max_size=12), st.sampled_from(SPELLINGS), st.sampled_from(["https://a.example.com/x.jpg", ""])
)
rows = st.lists(st.lists(cells, min_size=1, max_size=4), max_size=30)


@given(rows, st.integers(1, 7))
def test_a_row_called_clean_holds_no_token(table: list[list[str]], block: int) -> None:
    import tmapi_spiders.spreadsheets.sheets as sheets

    redactor = Redactor([TOKEN])
    old, sheets.TOKEN_BLOCK = sheets.TOKEN_BLOCK, block
    try:
        flagged = list(_token_free(iter(enumerate(table, 1)), redactor))
    finally:
        sheets.TOKEN_BLOCK = old
    assert [(n, v) for n, v, _ in flagged] == list(enumerate(table, 1))  # every row, in order
    for _, values, clean in flagged:
        if clean:
            assert not any(redactor.found_in(cell) for cell in values), values


def test_rows_before_a_broken_part_of_the_file_still_come_first() -> None:
    def broken():
        yield 1, ["a"]
        yield 2, ["b"]
        raise ValueError("row 3 is not UTF-8")

    got = []
    try:
        for number, _, _ in _token_free(broken(), Redactor([TOKEN])):
            got.append(number)
    except ValueError:
        got.append("error")
    assert got == [1, 2, "error"]

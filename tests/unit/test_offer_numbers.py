"""Prices, sales and percentages as the report and the sourcing workbook read them (`offers.number`):
the API's decimal strings and JSON numbers, nothing else, and never a value beyond a float."""

from __future__ import annotations

from typing import Any

import pytest

from tmapi_spiders.report.offers import count, number


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", 12.5),
        (" 7 ", 7.0),
        ("98%", 98.0),
        ("1.5e3", 1500.0),
        ("-3", -3.0),
        (".5", 0.5),
        (3, 3.0),
        (2.5, 2.5),
    ],
)
def test_decimal_strings_and_json_numbers_are_read(value: Any, expected: float) -> None:
    assert number(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "1e400",  # finite as a decimal, infinite as a float: it would rank above every real price
        10**400,  # float() of it raises OverflowError: the report would stop with a traceback
        float("inf"),
        "_6",  # float() and Decimal() take underscores and other scripts' digits; the API writes neither
        "1_000",
        "٣",
        "9٢_",
        "abc",
        "",
        True,
        None,
        [1],
    ],
)
def test_anything_else_is_no_number(value: Any) -> None:
    assert number(value) is None


def test_a_count_beyond_a_float_is_no_count() -> None:
    assert count(10**400) is None and count("1e400") is None

"""Pure paging and answer-classification rules, without Scrapy (the end-to-end versions
are in test_real_answers.py)."""

from __future__ import annotations

import json

import pytest

from tmapi_spiders import contract
from tmapi_spiders.spiders.image_search import end_of_search, page_size_of


@pytest.mark.parametrize(
    ("args", "end"),
    [
        # page, last, max_pages, items, new, size, has_next_page, stop_on_short_page
        ((1, 7, 0, 20, 20, 20, None, False), None),
        ((1, 7, 0, 19, 19, 20, None, False), None),  # short page: not the end by default
        ((1, 7, 0, 19, 19, 20, None, True), "short_page"),  # ...unless asked to save the call
        ((7, 7, 0, 17, 17, 20, None, False), "last_page"),
        ((2, 7, 2, 20, 20, 20, None, False), "max_pages"),
        ((3, 7, 0, 0, 0, 20, None, False), "empty_page"),
        ((3, 10**11, 0, 20, 0, 20, None, False), "no_new_items"),
        ((3, 7, 0, 20, 20, 20, False, False), "has_next_page_false"),
        ((3, 7, 0, 20, 20, 20, True, False), None),
        ((1, 0, 0, 0, 0, 20, None, False), "empty_page"),  # nothing found
    ],
)
def test_end_of_search(args: tuple, end: str | None) -> None:
    assert end_of_search(*args) == end


def test_page_size_of_follows_a_smaller_reported_size_only() -> None:
    assert page_size_of({"page_size": 10}, 20) == 10
    assert page_size_of({"page_size": 2}, 20) == 2
    assert page_size_of({"page_size": 40}, 20) == 20  # never more than asked
    for bad in (None, "10", 0, -1, True, 10.0):
        assert page_size_of({"page_size": bad}, 20) == 20


@pytest.mark.parametrize(
    ("http", "message", "status", "fatal"),
    [
        (401, contract.MSG_NO_KEY, 401, True),
        (401, contract.MSG_BAD_KEY, 401, True),
        (200, contract.MSG_BAD_KEY, 401, True),
        (403, "Forbidden", 403, True),
        (200, contract.MSG_NO_BALANCE, 439, True),
        (404, contract.MSG_NO_ROUTE, 404, True),
        (200, "An unexpected error occurred", 500, False),  # unknown on 200: a failed call, retried
        (429, "API rate limit exceeded", 429, False),
        (502, "An invalid response was received from the upstream server", 502, False),
        (504, "The upstream server is timing out", 504, False),
    ],
)
def test_bare_gateway_messages(http: int, message: str, status: int, fatal: bool) -> None:
    envelope = contract.read_envelope(http, json.dumps({"message": message}).encode())
    assert (envelope.status, envelope.fatal, envelope.ok) == (status, fatal, False)
    assert envelope.transient is not fatal


def test_a_page_with_more_items_than_asked_is_malformed() -> None:
    body = b'{"code":200,"msg":"success","data":{"total_count":3,"items":[{},{},{}]}}'
    envelope = contract.read_envelope(200, body)
    assert contract.check_page(envelope, 3) is envelope
    bad = contract.check_page(envelope, 2)
    assert not bad.ok and bad.transient and bad.message == "malformed page: 3 items for page_size 2"

"""Pure paging and answer-classification rules, without Scrapy (the end-to-end versions
are in test_real_answers.py)."""

from __future__ import annotations

import json

import pytest

from tmapi_spiders.api import contract
from tmapi_spiders.api.envelope import check_page, read_envelope, redirect_envelope
from tmapi_spiders.api.paging import (
    EMPTY_PROMISED,
    NO_TOTAL,
    ChainState,
    empty_page_message,
    end_of_search,
    page_size_of,
    paginate,
    unusable_search,
)


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
    envelope = read_envelope(http, json.dumps({"message": message}).encode())
    assert (envelope.status, envelope.status in contract.FATAL_STATUSES, envelope.ok) == (status, fatal, False)
    assert (envelope.status in contract.TRANSIENT_STATUSES) is not fatal


def test_a_page_with_more_items_than_asked_is_malformed() -> None:
    body = b'{"code":200,"msg":"success","data":{"total_count":3,"items":[{},{},{}]}}'
    envelope = read_envelope(200, body)
    assert check_page(envelope, 3) is envelope
    bad = check_page(envelope, 2)
    assert not bad.ok and bad.status in contract.TRANSIENT_STATUSES
    assert bad.message == "malformed page: 3 items for page_size 2"


def state(page: int = 1, **kw: object) -> ChainState:
    url = "https://cbu01.alicdn.com/a.jpg"
    return ChainState(image=url, img=url, q={}, page=page, **kw)  # type: ignore[arg-type]


def items(*ids: int) -> list[dict[str, int]]:
    return [{"item_id": i} for i in ids]


def test_paginate_walks_pages_ranks_and_skips_repeats() -> None:
    first = paginate(state(), {"total_count": 5, "items": items(1, 2)}, 2, False)
    assert [rank for rank, _ in first.new_items] == [1, 2] and first.next is not None and first.end is None
    assert first.expected_pages == 3 and first.next.page == 2 and first.next.total == 5
    second = paginate(first.next, {"total_count": 5, "items": items(2, 3)}, 2, False)
    assert [(rank, raw["item_id"]) for rank, raw in second.new_items] == [(4, 3)] and second.duplicates == 1
    third = paginate(second.next, {"total_count": 5, "items": items(4)}, 2, False)  # type: ignore[arg-type]
    assert third.end == "last_page" and third.next is None
    assert (third.state.items, third.state.dups, third.below_total) == (4, 1, 1)


def test_paginate_round_trips_through_meta() -> None:
    step = paginate(state(max_pages=3), {"total_count": 50, "items": items(1, 2, 3), "page_size": 3}, 20, False)
    assert step.next is not None
    assert ChainState.from_meta(step.next.to_meta()) == step.next
    assert step.new_items[-1][0] == 3 and step.next.page == 2 and step.expected_pages == 3


def test_paginate_refuses_an_answer_without_total_or_items_and_reads_null_as_nothing() -> None:
    bad: list[dict[str, object]] = [
        {"items": []},
        {"total_count": -1, "items": []},
        {"total_count": 3},
        {"total_count": True, "items": []},
    ]
    for data in bad:
        assert paginate(state(), data, 20, False).failure == NO_TOTAL
    empty = paginate(state(), {"total_count": 0, "items": None}, 20, False)
    assert empty.failure is None and empty.end == "empty_page" and empty.below_total == 0


@pytest.mark.parametrize(
    ("page", "prev_short", "total", "suspect"),
    [
        (1, False, 45, True),  # page 1 empty although 45 were promised: a hiccup
        (1, False, 0, False),  # nothing found
        (2, False, 45, True),  # after a full page
        (2, True, 45, False),  # after a short page: an overstated total, the end
        (3, False, 40, False),  # past the page total_count puts last
        (3, False, 41, True),
    ],
)
def test_an_empty_page_is_suspect_only_where_total_count_promised_items_and_the_pages_did_not_run_short(
    page: int, prev_short: bool, total: int, suspect: bool
) -> None:
    step = paginate(state(page, prev_short=prev_short), {"total_count": total, "items": []}, 20, False)
    assert step.promised_empty is suspect and step.end == "empty_page" and step.failure is None


def test_a_page_remembers_whether_it_ran_short_and_the_next_page_starts_with_no_empty_asks() -> None:
    full = paginate(state(1, empty_asks=1), {"total_count": 45, "items": items(*range(1, 21))}, 20, False)
    assert full.next is not None and full.next.prev_short is False and full.next.empty_asks == 0
    short = paginate(state(1), {"total_count": 45, "items": items(*range(1, 20))}, 20, False)
    assert short.next is not None and short.next.prev_short is True
    assert ChainState.from_meta(short.next.to_meta()) == short.next


@pytest.mark.parametrize(
    ("data", "page", "why"),
    [
        ({"total_count": 45, "items": []}, 1, EMPTY_PROMISED),
        ({"total_count": 45, "items": []}, 3, EMPTY_PROMISED),  # even after a short page: a re-run asks again
        ({"total_count": 45, "items": []}, 4, None),  # past the end: a true answer, kept
        ({"total_count": 45, "page_size": 10, "items": []}, 5, EMPTY_PROMISED),  # the API's own page size
        ({"total_count": 0, "items": []}, 1, None),
        ({"total_count": 0, "items": None}, 1, None),
        ({"total_count": 45}, 1, NO_TOTAL),
        ({"total_count": "45", "items": []}, 1, NO_TOTAL),
        ({"total_count": 45, "items": items(1)}, 1, None),
    ],
)
def test_an_answer_that_did_not_yield_its_records_is_not_kept(data: dict[str, object], page: int, why: str) -> None:
    assert unusable_search(data, page, 20) == why


def test_the_empty_page_message_says_which_page_how_often_and_what_was_kept() -> None:
    assert empty_page_message(1, 45, 2, 0) == "empty page: page 1 came back empty 2 times while total_count says 45"
    assert empty_page_message(3, 90, 1, 40).endswith(
        "empty once while total_count says 90; 40 items kept from pages 1-2"
    )


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ('"200"', "code is not a number: '200'"),
        ("200.0", "code is not an integer: 200.0"),
        ("true", "code is not a number: True"),
        ("null", "code is not a number: None"),
    ],
)
def test_a_code_that_is_not_the_documented_number_is_named_not_its_msg(code: str, message: str) -> None:
    envelope = read_envelope(200, f'{{"code": {code}, "msg": "success", "data": {{"items": []}}}}'.encode())
    assert not envelope.ok and envelope.status in contract.TRANSIENT_STATUSES and envelope.message == message
    assert read_envelope(200, b'{"msg": "success", "data": {}}').message == "response has no code"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("https://login.example/x?apiToken=SECRET", "redirected to login.example (HTTP 302)"),
        ("https://user:SECRET@login.example:8443/", "redirected to login.example:8443 (HTTP 302)"),
        ("/elsewhere?apiToken=SECRET", "redirected to api.example (HTTP 302)"),  # relative: the same host
        ("http://[::1", "redirected, an unreadable Location (HTTP 302)"),
        (None, "redirected, no Location (HTTP 302)"),
    ],
)
def test_a_redirect_names_the_host_only(location: str | None, message: str) -> None:
    envelope = redirect_envelope(302, location, "https://api.example/1688/global/search/image?img_url=x")
    assert envelope.status == 302 and not envelope.ok and envelope.status not in contract.TRANSIENT_STATUSES
    assert envelope.message == message
    assert "SECRET" not in envelope.message

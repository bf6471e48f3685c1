"""Retry-After in both of RFC 9110's forms, and the AIMD step a 429 takes (pure functions)."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest
from scrapy import Request

from tmapi_spiders import limits
from tmapi_spiders.api.requests import META_KEY
from tmapi_spiders.crawl.middlewares import TmapiBackoffMiddleware, retry_after_seconds

NOW = 1_800_000_000.0  # a fixed wall-clock time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("6", 6.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (formatdate(NOW + 6, usegmt=True), 6.0),  # "Fri, 15 Jan 2027 08:00:06 GMT"
        (formatdate(NOW - 3600, usegmt=True), 0.0),  # a date already past: at once
        (formatdate(NOW + 6, localtime=False), 6.0),  # "-0000" instead of "GMT"
        ("Wed, 21 Oct 2026 07:28:00 GMT", 0.0),  # the RFC's example, past by NOW
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # delay-seconds are whole, non-negative numbers
        ("\xb2", None),  # the byte 0xB2 read as latin-1: "²", a digit to str.isdigit, not to float()
        ("1\u0663", None),  # an Arabic-Indic three: delay-seconds are ASCII digits
        ("", None),
        (None, None),
        ("Wed, 99 Foo 2026 77:28:00 GMT", None),
    ],
)
def test_retry_after_reads_both_forms_and_refuses_garbage(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == expected


def _retry(retry_after: str | None, tries: int = 1) -> Request:
    meta = {"retry_times": tries, META_KEY: {}}
    if retry_after is not None:
        meta["tmapi_retry_after"] = retry_after
    return Request("http://api.test/1688/global/search/image?img_url=x", meta=meta)


def test_the_backoff_waits_for_retry_after_bounded_and_falls_back_on_garbage() -> None:
    backoff = TmapiBackoffMiddleware(base=0.5, cap=30.0)
    in_six = formatdate(time.time() + 6, usegmt=True)
    assert 4.5 <= backoff.delay_for(_retry(in_six)) <= 6.0
    assert backoff.delay_for(_retry("6")) == 6.0
    assert backoff.delay_for(_retry("100000")) == 120.0  # at most 4 x TMAPI_BACKOFF_MAX
    for value in ("later", formatdate(0, usegmt=True), None):  # garbage, the past, none: the usual backoff
        assert 0.25 <= backoff.delay_for(_retry(value)) <= 0.5


def test_without_a_qps_ceiling_a_429_takes_the_rate_the_gateway_let_through() -> None:
    aimd = limits.Aimd(0, 0.0)
    assert aimd.qps == 0  # no rate: nothing waits
    assert aimd.on_rate_limited(0, 100.0, accepted=5)
    assert aimd.qps == pytest.approx(5 * limits.CUT)
    assert not aimd.on_rate_limited(0, 100.1, accepted=5)  # a call of the old epoch: no second cut
    for _ in range(100):
        aimd.on_success(101.0)
    assert aimd.qps == 5  # creeps back, never past the refused rate within the probe time
    aimd.on_success(100.0 + limits.PROBE + 1)
    assert aimd.qps > 5  # then on, until the gateway refuses again
    assert aimd.on_rate_limited(1, 200.0, accepted=0)
    assert aimd.qps == limits.RATE_FLOOR  # a 429 with nothing let through: the floor


def test_with_a_qps_ceiling_a_429_cuts_as_a_503_does() -> None:
    by_429, by_503 = limits.Aimd(8, 10.0), limits.Aimd(8, 10.0)
    by_429.on_rate_limited(0, 1.0, accepted=3)
    by_503.on_overload(0, 1.0)
    assert (by_429.limit, by_429.qps, by_429.epoch) == (by_503.limit, by_503.qps, by_503.epoch)


def test_a_429_counts_the_calls_let_through_before_it_whose_answers_come_after_it() -> None:
    # A burst of 8 with no rate yet: the gateway lets 5 through and refuses the 6th, whose 429 comes
    # back at once, before the answers of the 5 (the API takes its time with them).
    async def scenario() -> None:
        backend = limits.LocalBackend(0, 0.0)
        burst = [await backend.acquire() for _ in range(8)]
        assert await backend.release(burst[5], overloaded=False, rate_limited=True)
        assert backend.effective()[1] == limits.RATE_FLOOR  # nothing answered yet
        for slot in burst[6:]:
            assert not await backend.release(slot, overloaded=False, rate_limited=True)  # the same burst: no new cut
        for slot in burst[:5]:
            assert not await backend.release(slot, overloaded=False)
        assert 5 * limits.CUT <= backend.effective()[1] <= 5  # the 5 let through (and creeping), not the floor
        assert backend.policy.found == 5
        later = await backend.acquire()
        assert not await backend.release(later, overloaded=False)  # left after the 429: not of its second
        assert backend.policy.found == 5 and backend.effective()[1] <= 5  # under the refused rate for PROBE

    asyncio.run(scenario())


def test_once_it_paces_a_process_has_room_only_for_the_call_that_leaves_next() -> None:
    # A worker of a shared job pops a request only when the limiter has room, so requests its rate
    # cannot send soon stay in the job's queue for the other workers.
    async def scenario() -> None:
        backend = limits.LocalBackend(0, 0.0)
        assert backend.has_room()  # no rate yet: nothing waits
        refused = await backend.acquire()
        await backend.release(refused, overloaded=False, rate_limited=True)
        woken: list[float] = []
        backend.on_room = lambda: woken.append(time.monotonic())
        backend.policy.qps = 20.0  # a found rate, fast enough for a unit test
        backend.next_start = time.monotonic()  # past the second the 429 waits out
        interval = backend.interval()
        first = await backend.acquire()  # leaves at once: the next one is booked an interval later
        assert backend.has_room()
        second = asyncio.ensure_future(backend.acquire())  # booked, waiting for its turn
        await asyncio.sleep(0)
        assert not backend.has_room()  # a third would wait more than an interval: not popped
        await second
        assert backend.has_room()  # the second left: room for the next
        assert len(woken) == 2 and woken[1] - woken[0] >= interval * 0.9  # each paced call rang as it left
        await backend.release(first, overloaded=False)
        await backend.release(second.result(), overloaded=False)

    asyncio.run(scenario())


def test_after_a_429_a_process_with_nothing_booked_is_woken_when_its_pause_lets_a_call_leave() -> None:
    # The pause after a 429 books no call, so no paced call's departure wakes the worker: a timer does.
    async def scenario() -> None:
        backend = limits.LocalBackend(0, 0.0)
        burst = [await backend.acquire() for _ in range(6)]
        for slot in burst[:5]:
            await backend.release(slot, overloaded=False)
        woken: list[float] = []
        backend.on_room = lambda: woken.append(time.monotonic())
        refused_at = time.monotonic()
        assert await backend.release(burst[5], overloaded=False, rate_limited=True)
        interval = backend.interval()  # 5 let through: about 0.23 s
        assert not backend.has_room()
        await asyncio.sleep(1.0 - interval + 0.2)
        assert len(woken) == 1 and woken[0] - refused_at >= 1.0 - interval - 0.05
        assert backend.has_room()

    asyncio.run(scenario())

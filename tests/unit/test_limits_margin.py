"""The rate schedule's margin: refusals (jitter between the limiter and the gateway's clock
ate it) widen it, answers narrow it back, slowly; a quiet run keeps QPS_MARGIN."""

from __future__ import annotations

import asyncio

from tmapi_spiders import limits


def test_refusals_widen_the_margin_up_to_its_cap_and_answers_narrow_it_slowly() -> None:
    margin = limits.Margin()
    for _ in range(1000):
        margin.update(refused=False)
    assert margin.value == limits.QPS_MARGIN  # never under the plan's own margin
    margin.update(refused=True)
    assert abs(margin.value - (limits.QPS_MARGIN + limits.MARGIN_STEP)) < 1e-9
    for _ in range(20):
        margin.update(refused=True)
    assert margin.value == limits.QPS_MARGIN_MAX
    for _ in range(limits.MARGIN_DECAY):
        margin.update(refused=False)
    assert abs(margin.value - (limits.QPS_MARGIN_MAX - limits.MARGIN_STEP)) < 1e-9  # one step in MARGIN_DECAY answers


def test_a_refused_call_spaces_the_next_calls_further_apart() -> None:
    # 5 calls/s: a loop that wakes late by less than the step (0.2 s) leaves the schedule as it is
    async def spacing(refused: bool) -> float:
        backend = limits.LocalBackend(0, 5.0)
        await backend.release(await backend.acquire(), overloaded=refused)
        backend.policy.qps = 5.0  # the AIMD cut of a 503 aside: the margin alone is measured
        await backend.acquire()
        before = backend.next_start
        await backend.acquire()
        return backend.next_start - before  # the schedule's step: (1 + margin) / qps

    assert abs(asyncio.run(spacing(False)) - (1 + limits.QPS_MARGIN) / 5) < 1e-9
    assert abs(asyncio.run(spacing(True)) - (1 + limits.QPS_MARGIN + limits.MARGIN_STEP) / 5) < 1e-9

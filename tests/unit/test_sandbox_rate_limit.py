"""The sandbox's gateway rate limit (HTTP 429) and the Retry-After its refusals carry, in
both forms RFC 9110 allows: what a test of the crawler's backoff and slowdown relies on."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.conftest import SandboxClient
from tmapi_spiders.sandbox import SandboxConfig
from tmapi_spiders.sandbox.faults import QpsWindow

IMG = "https://cbu01.alicdn.com/img/rate/total-20.jpg"


def test_calls_beyond_the_rate_limit_answer_429_with_the_gateways_message(make_sandbox: Any) -> None:
    api = make_sandbox(rate_limit=3)
    client = SandboxClient(api)
    answers = [client.search(IMG) for _ in range(5)]
    assert [a.status for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json() == {"message": "API rate limit exceeded"}
    assert "Retry-After" not in answers[3].headers  # only when asked for
    stats = api.stats()
    assert stats["limited"] == {"rate": 2}
    assert stats["statuses"] == {"200": 3, "429": 2}
    assert stats["pages"] == {IMG: {"1": 3}}  # a refused call is not a billed page


def test_retry_after_in_seconds_is_the_time_until_the_window_has_room(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(rate_limit=1, retry_after="seconds"))
    assert client.search(IMG).status == 200
    refused = client.search(IMG)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"


def test_retry_after_as_an_http_date_is_the_distance_asked_for(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(rate_limit=1, retry_after="date", retry_after_seconds=6))
    client.search(IMG)
    refused = client.search(IMG)
    assert refused.status == 429
    when = parsedate_to_datetime(refused.headers["Retry-After"])
    assert refused.headers["Retry-After"].endswith(" GMT")
    assert 6 <= when.timestamp() - time.time() <= 7.5


def test_503_limit_answers_carry_retry_after_too(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(max_qps=1, retry_after="seconds", retry_after_seconds=4))
    client.search(IMG)
    refused = client.search(IMG)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "4"


def test_the_window_says_when_it_admits_again() -> None:
    window = QpsWindow(2)
    assert window.admit(10.0) and window.admit(10.4)
    assert not window.admit(10.5)
    assert window.retry_in(10.5) == pytest.approx(0.5)
    assert window.retry_in(10.9) == pytest.approx(0.1)
    assert window.retry_in(11.0) == 0.0
    assert window.admit(11.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("rate_limit", -1, "rate_limit: must be 0 or more"), ("retry_after", "later", "retry_after: must be one of")],
)
def test_bad_options_name_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxConfig(**{field: value})

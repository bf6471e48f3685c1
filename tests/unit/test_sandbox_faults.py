"""Sandbox faults, limits, accounting endpoints, data options and the command line."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import SANDBOX_TOKEN, SandboxClient
from tmapi_spiders.api import contract
from tmapi_spiders.api.envelope import read_envelope
from tmapi_spiders.sandbox import FAULT_KINDS, SandboxConfig

IMG = "https://cbu01.alicdn.com/img/ibank/faults_total-60.jpg"


def fault_client(make_sandbox: Any, kind: str, **options: Any) -> SandboxClient:
    return SandboxClient(make_sandbox(fault_rate=1.0, fault_kinds=(kind,), **options))


# -- each fault kind, forced -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["417", "499", "500", "503"])
def test_status_faults(make_sandbox: Any, kind: str) -> None:
    client = fault_client(make_sandbox, kind)
    for answer in (client.search(IMG), client.convert("https://example.com/a.jpg")):
        code = int(kind)
        assert answer.status == code
        assert answer.json() == {"code": code, "msg": contract.STATUS_MEANINGS[code], "data": None}
    assert client.sandbox.stats()["faults"] == {kind: 2}


def test_drop_fault_closes_the_connection(make_sandbox: Any) -> None:
    client = fault_client(make_sandbox, "drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        client.search(IMG)
    stats = client.sandbox.stats()
    assert stats["faults"] == {"drop": 1} and stats["statuses"] == {"dropped": 1}
    assert client.sandbox.calls()[0]["status"] is None


def test_truncated_fault_is_200_with_half_the_json(make_sandbox: Any, sandbox_client: SandboxClient) -> None:
    client = fault_client(make_sandbox, "truncated")
    answer = client.search(IMG)
    good = sandbox_client.search(IMG).body
    assert answer.status == 200 and answer.body == good[: len(good) // 2]
    with pytest.raises(ValueError):
        json.loads(answer.body)


def test_html_fault_is_500_html(make_sandbox: Any) -> None:
    answer = fault_client(make_sandbox, "html").search(IMG)
    assert answer.status == 500 and answer.headers["Content-Type"].startswith("text/html")
    assert answer.body.startswith(b"<!DOCTYPE html>")


def test_code_fault_is_200_with_code_500(make_sandbox: Any) -> None:
    answer = fault_client(make_sandbox, "code").search(IMG)
    assert answer.status == 200 and answer.json() == {"code": 500, "msg": "unexpected error", "data": None}
    assert not read_envelope(answer.status, answer.body).ok


def test_nodata_fault_is_200_without_data(make_sandbox: Any) -> None:
    answer = fault_client(make_sandbox, "nodata").search(IMG)
    assert answer.status == 200 and answer.json() == {"code": 200, "msg": "success"}
    assert not read_envelope(answer.status, answer.body).ok


def test_slow_fault_outlasts_a_client_timeout_then_answers(make_sandbox: Any, sandbox_client: SandboxClient) -> None:
    client = fault_client(make_sandbox, "slow", slow_seconds=1.0)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        client.request("GET", contract.SEARCH_PATH, {"apiToken": SANDBOX_TOKEN, "img_url": IMG}, timeout=0.3)
    started = time.monotonic()
    answer = client.search(IMG)
    assert time.monotonic() - started >= 0.9
    assert answer.status == 200 and answer.body == sandbox_client.search(IMG).body


def test_faults_spare_the_sandbox_endpoints(make_sandbox: Any) -> None:
    client = fault_client(make_sandbox, "drop")
    assert client.sandbox.stats()["total_calls"] == 0
    client.sandbox.reset()
    assert client.sandbox.calls() == []


# -- reproducibility -------------------------------------------------------------------------
def fates(client: SandboxClient, pages: list[int]) -> list[tuple[int, str | None]]:
    out = []
    for page in pages:
        try:
            answer = client.search(IMG, page=page)
            out.append((page, str(answer.status) + (":" + answer.body[:20].decode(errors="replace"))))
        except (ConnectionError, urllib.error.URLError, http.client.HTTPException):
            out.append((page, "dropped"))
    return out


def test_fault_sequence_is_reproducible_whatever_the_order(make_sandbox: Any) -> None:
    options = {"fault_rate": 0.5, "seed": 7}
    pages = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]
    first = fates(SandboxClient(make_sandbox(**options)), pages)
    again = fates(SandboxClient(make_sandbox(**options)), pages)
    assert first == again
    # Another order of calls: each (page, attempt number) still meets the same fate.
    shuffled = [3, 3, 1, 2, 1, 3, 2, 2, 1, 3, 1, 2]
    other = fates(SandboxClient(make_sandbox(**options)), shuffled)

    def by_attempt(results: list[tuple[int, str | None]]) -> dict[tuple[int, int], str | None]:
        seen: dict[int, int] = {}
        keyed = {}
        for page, fate in results:
            keyed[(page, seen.get(page, 0))] = fate
            seen[page] = seen.get(page, 0) + 1
        return keyed

    assert by_attempt(first) == by_attempt(other)
    outcomes = [fate for _, fate in first]
    assert any(f.startswith('200:{"code":200') for f in outcomes if f) and len(set(outcomes)) > 2
    different_seed = fates(SandboxClient(make_sandbox(fault_rate=0.5, seed=8)), pages)
    assert different_seed != first


def test_retries_eventually_succeed_and_reset_replays(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(fault_rate=0.6, fault_kinds=("500", "417"), seed=3))
    statuses = [client.search(IMG, page=2).status for _ in range(30)]
    assert 200 in statuses and {500, 417} & set(statuses) and set(statuses) <= {200, 500, 417}
    client.sandbox.reset()
    assert [client.search(IMG, page=2).status for _ in range(30)] == statuses
    faults = client.sandbox.stats()["faults"]
    assert sum(faults.values()) == statuses.count(500) + statuses.count(417)


def test_fault_rate_is_roughly_honoured(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(fault_rate=0.3, fault_kinds=("503",), seed=1))
    statuses = [client.search(f"https://cbu01.alicdn.com/img/r{i}.jpg", page_size=1).status for i in range(200)]
    assert 40 <= statuses.count(503) <= 80


# -- latency and limits ----------------------------------------------------------------------
def concurrently(client: SandboxClient, count: int) -> list[int]:
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(client.search, f"https://cbu01.alicdn.com/img/c{i}.jpg") for i in range(count)]
        return [f.result().status for f in futures]


def test_latency_and_jitter(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(latency=0.2, jitter=0.2))
    times = []
    for i in range(5):
        started = time.monotonic()
        assert client.search(IMG, page=i + 1).status == 200
        times.append(time.monotonic() - started)
    assert all(0.2 <= t < 1.0 for t in times)
    assert max(times) - min(times) > 0.01


def test_max_concurrency_turns_away_exactly_the_excess(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(latency=1.0, max_concurrency=5))
    statuses = concurrently(client, 20)
    assert statuses.count(200) == 5 and statuses.count(503) == 15
    stats = client.sandbox.stats()
    assert stats["peak_concurrency"] == 5 and stats["limited"] == {"concurrency": 15} and stats["in_flight"] == 0
    limited = [c for c in client.sandbox.calls() if c["status"] == 503]
    assert len(limited) == 15
    answer = client.search(IMG)  # nothing in flight now
    assert answer.status == 200


def test_concurrency_limit_body(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(latency=0.5, max_concurrency=1))
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(client.search, IMG)
        time.sleep(0.2)
        answer = client.search(IMG)
        assert slow.result().status == 200
    assert answer.status == 503
    assert answer.json() == {"code": 503, "msg": "API request concurrency limit exceeded", "data": None}


def test_max_qps(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(max_qps=5))
    statuses = [client.search(IMG, page=p).status for p in range(1, 9)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [503] * 3
    assert client.sandbox.stats()["limited"] == {"qps": 3}
    time.sleep(1.05)
    assert client.search(IMG).status == 200


def test_many_concurrent_slow_calls_without_threads(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(latency=1.0))
    started = time.monotonic()
    statuses = concurrently(client, 60)
    assert statuses == [200] * 60 and time.monotonic() - started < 3.0
    assert client.sandbox.stats()["peak_concurrency"] >= 50


# -- data options ----------------------------------------------------------------------------
def test_overstate_reports_more_than_pages_hold(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(overstate=0.5))
    url = "https://cbu01.alicdn.com/img/total-40.jpg"
    assert client.search(url).json()["data"]["total_count"] == 60
    assert len(client.search(url, page=2).json()["data"]["items"]) == 20
    data = client.search(url, page=3).json()["data"]
    assert data["items"] == [] and data["total_count"] == 60


def test_repeat_rate_repeats_items_from_the_previous_page(make_sandbox: Any, sandbox_client: SandboxClient) -> None:
    client = SandboxClient(make_sandbox(repeat_rate=0.25))
    url = "https://cbu01.alicdn.com/img/total-60.jpg"
    pages = [[i["item_id"] for i in client.search(url, page=p).json()["data"]["items"]] for p in (1, 2, 3)]
    plain = [[i["item_id"] for i in sandbox_client.search(url, page=p).json()["data"]["items"]] for p in (1, 2, 3)]
    assert pages[0] == plain[0]
    for p in (1, 2):
        repeated = set(pages[p]) & set(pages[p - 1])
        assert len(repeated) == 5 and len(pages[p]) == 20
        assert repeated <= set(plain[p - 1])
    assert pages == [[i["item_id"] for i in client.search(url, page=p).json()["data"]["items"]] for p in (1, 2, 3)]


# -- accounting endpoints --------------------------------------------------------------------
def test_stats_calls_and_reset(sandbox_client: SandboxClient) -> None:
    sb = sandbox_client.sandbox
    sandbox_client.search(IMG, page=1)
    sandbox_client.search(IMG, page=2)
    sandbox_client.search(IMG, page=2)
    sandbox_client.search(IMG, page=0)  # 422: counted as a call, not as a page
    sandbox_client.search(IMG, token=None)  # 401
    sandbox_client.convert("https://example.com/s.jpg")
    sandbox_client.request("GET", "/nope")
    stats = sb.stats()
    assert stats["total_calls"] == 7
    assert stats["endpoints"] == {contract.SEARCH_PATH: 5, contract.CONVERT_PATH: 1, "unmatched": 1}
    assert stats["statuses"] == {"200": 4, "422": 1, "401": 1, "404": 1}
    assert stats["by_endpoint"][contract.SEARCH_PATH] == {"200": 3, "422": 1, "401": 1}
    assert stats["pages"] == {IMG: {"1": 1, "2": 2}} and stats["pages_ok"] == {IMG: {"1": 1, "2": 2}}
    assert stats["conversions"] == {"https://example.com/s.jpg": 1}
    assert stats["conversions_ok"] == {"https://example.com/s.jpg": 1}
    assert stats["faults"] == {} and stats["limited"] == {}
    assert stats["peak_concurrency"] == 1 and stats["in_flight"] == 0
    calls = sb.calls()
    assert [c["seq"] for c in calls] == list(range(1, 8))
    assert calls[0]["endpoint"] == contract.SEARCH_PATH and calls[0]["status"] == 200 and calls[0]["fault"] is None
    assert calls[0]["params"] == {"img_url": IMG, "page": "1"}
    assert calls[5]["params"] == {"url": "https://example.com/s.jpg", "search_api_endpoint": "/search/image"}
    assert [c["seq"] for c in sb.calls(since=5)] == [6, 7]
    limited = json.loads(urllib.request.urlopen(sb.base_url + "/_sandbox/calls?since=1&limit=2", timeout=5).read())
    assert [c["seq"] for c in limited["calls"]] == [2, 3] and limited["total_calls"] == 7
    sb.reset()
    assert sb.stats()["total_calls"] == 0 and sb.calls() == [] and sb.stats()["pages"] == {}


def test_token_never_recorded(sandbox_client: SandboxClient, sandbox: Any) -> None:
    sandbox_client.search(IMG)
    sandbox_client.search(IMG, token="a-wrong-secret")
    sandbox_client.convert("https://example.com/t.jpg")
    sandbox_client.request("GET", contract.SEARCH_PATH, {"img_url": IMG}, headers={"apikey": SANDBOX_TOKEN})
    raw = urllib.request.urlopen(sandbox.base_url + "/_sandbox/calls", timeout=5).read()
    raw += urllib.request.urlopen(sandbox.base_url + "/_sandbox/stats", timeout=5).read()
    assert b"calls" in raw and IMG.encode() in raw
    assert SANDBOX_TOKEN.encode() not in raw and b"a-wrong-secret" not in raw and b"apiToken" not in raw


def test_reset_is_post_only(sandbox_client: SandboxClient) -> None:
    sandbox_client.search(IMG)
    assert sandbox_client.request("GET", "/_sandbox/reset").status == 404
    assert sandbox_client.sandbox.stats()["total_calls"] == 2  # the search and the unmatched GET


# -- answers that do not yield their records (empty_patterns, string_code_patterns, redirect_patterns)
def test_the_first_asks_of_the_chosen_page_answer_empty_with_the_real_total(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(empty_patterns=("hiccup",), empty_page=2, empty_times=2))
    url = "https://cbu01.alicdn.com/img/hiccup_total-45.jpg"
    assert len(client.search(url, page=1).json()["data"]["items"]) == 20  # another page: untouched
    answers = [client.search(url, page=2).json()["data"] for _ in range(3)]
    assert [(len(a["items"]), a["total_count"]) for a in answers] == [(0, 45), (0, 45), (20, 45)]
    assert len(client.search(url, page=2, sort="sales").json()["data"]["items"]) == 0  # another search: its own count
    stats = client.sandbox.stats()
    assert stats["faults"] == {"empty": 3} and stats["pages"][url] == {"1": 1, "2": 4}
    client.sandbox.reset()
    assert client.search(url, page=2).json()["data"]["items"] == []  # reset starts the count again


def test_a_string_code_carries_the_whole_page(make_sandbox: Any) -> None:
    client = SandboxClient(make_sandbox(string_code_patterns=("strcode",)))
    body = client.search("https://cbu01.alicdn.com/img/strcode_total-5.jpg").json()
    assert body["code"] == "200" and len(body["data"]["items"]) == 5
    assert client.search(IMG).json()["code"] == 200


@pytest.mark.parametrize("way", ["query", "header"])
def test_a_redirect_quotes_the_call_and_its_token_in_the_location(make_sandbox: Any, way: str) -> None:
    sandbox = make_sandbox(tokens=("SECRET-1",), redirect_patterns=("moved",))
    host, port = sandbox.base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    query = "img_url=https%3A%2F%2Fcbu01.alicdn.com%2Fmoved.jpg"
    if way == "query":
        conn.request("GET", f"{contract.SEARCH_PATH}?apiToken=SECRET-1&{query}")
    else:
        conn.request("GET", f"{contract.SEARCH_PATH}?{query}", headers={"apikey": "SECRET-1"})
    response = conn.getresponse()
    location = response.getheader("Location") or ""
    conn.close()
    assert response.status == 302
    assert location.startswith("https://moved.sandbox.invalid/1688/global/search/image?") and "SECRET-1" in location
    assert sandbox.stats()["faults"] == {"redirect": 1}


# -- configuration and command line ----------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"fault_rate": 1.5}, "fault_rate"),
        ({"fault_kinds": ("boom",)}, "fault_kinds"),
        ({"latency": -1}, "latency"),
        ({"max_concurrency": -2}, "max_concurrency"),
        ({"deny_patterns": ("(",)}, "deny_patterns"),
        ({"repeat_rate": 2}, "repeat_rate"),
        ({"empty_page": 0}, "empty_page"),
        ({"empty_times": -1}, "empty_times"),
        ({"empty_patterns": ("(",)}, "empty_patterns"),
        ({"redirect_patterns": ("[",)}, "redirect_patterns"),
    ],
)
def test_config_rejects_bad_values(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxConfig(**options)


def test_config_defaults_are_fault_free() -> None:
    config = SandboxConfig()
    assert config.tokens == ("sandbox",) and config.fault_rate == 0 and config.latency == 0
    assert config.max_concurrency == 0 and config.max_qps == 0 and set(config.fault_kinds) < set(FAULT_KINDS)


def test_command_line_serves_and_stops() -> None:
    cmd = [
        sys.executable, "-m", "tmapi_spiders.sandbox", "--port", "0", "--token", "cli-token",
        "--broke-token", "cli-broke", "--fault-kind", "500,503", "--fault-rate", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        url = f"{base_url}{contract.SEARCH_PATH}?apiToken=cli-token&img_url=https://cbu01.alicdn.com/img/total-3.jpg"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.loads(response.read())["data"]["total_count"] == 3
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url.replace("cli-token", "cli-broke"), timeout=10)
        assert err.value.code == 439
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        out, errors = proc.communicate()
        assert "cli-token" not in out + errors  # no access log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_command_line_rejects_bad_option() -> None:
    cmd = [sys.executable, "-m", "tmapi_spiders.sandbox", "--port", "0", "--fault-kind", "boom"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "fault_kinds" in result.stderr


def test_echo_escapes_keep_the_json_valid_and_the_text_as_sent() -> None:
    """`echo_escape`: the text decodes back to itself (bar `%XX` in `mixed`), written as named."""
    import json

    from tmapi_spiders.sandbox.gateway import json_string

    text = 'a/b+c "q" \\ é \U0001f600'
    assert json.loads(json_string(text, "slash")) == text and "\\/" in json_string(text, "slash")
    assert json.loads(json_string(text, "unicode")) == text and "a" not in json_string(text, "unicode")
    assert json.loads(json_string(text, "none")) == text
    mixed = json_string("abcd/", "mixed")
    assert mixed == '"a\\u0062\\u0063%64\\/"'

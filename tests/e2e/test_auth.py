"""TMAPI_AUTH: the token as the `apikey` header, the documented `apiToken` query parameter,
or `auto` (the header, then the parameter once if the gateway refuses it), each against a
sandbox that accepts only one way, or both."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.crawl_helpers import QUICK_WORKER_SETTINGS, crawl, run_scrapy, scrapy, scrapy_env
from tests.probes import with_probe
from tests.redis_server import RedisServer
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

TOKEN = "tok-Auth-9Vq2-mode"
URLS = [f"https://cbu01.alicdn.com/img/ibank/auth-{i}/total-45.jpg" for i in range(4)]
URLS.append("https://images.example-shop.com/auth.jpg?total=25")  # converted first: a POST


@pytest.mark.parametrize(
    ("mode", "server", "refused_calls"),
    [
        ("auto", "both", 0),
        ("auto", "header", 0),
        ("auto", "query", 1),  # the header once, then the query parameter for the whole job
        ("header", "header", 0),
        ("header", "both", 0),
        ("query", "query", 0),
        ("query", "both", 0),
    ],
)
def test_every_record_in_each_mode_the_server_accepts(
    tmp_path: Path, mode: str, server: str, refused_calls: int
) -> None:
    config = SandboxConfig(tokens=(TOKEN,), auth=server)
    with SandboxThread(config) as sb:
        result = crawl(
            tmp_path,
            sb.base_url,
            {"urls": ",".join(URLS)},
            {"TMAPI_AUTH": mode, "CONCURRENT_REQUESTS": 8, "EXTENSIONS": with_probe("tests.probes.ResponseProbe")},
            token=TOKEN,
        )
        stats = sb.stats()
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.products) == 4 * 45 + 25 and not result.failures
    # what the spider is handed, whichever way the token went: text answers, under the URL asked for
    answers = result.stats["probe/api_responses"]
    assert answers == stats["total_calls"] - refused_calls
    assert result.stats.get("probe/api_responses_text") == answers
    assert "probe/api_responses_token_in_url" not in result.stats
    assert stats["statuses"].get("401", 0) == refused_calls
    assert result.stats.get("tmapi/auth/header_refused", 0) == refused_calls
    # paid calls: one per page and the conversion; the refused probe is not one
    assert result.stats["tmapi/paid_calls"] == stats["total_calls"] - refused_calls == 4 * 3 + 1 + 2
    if mode == "auto":
        named = "`apiToken` query parameter" if server == "query" else "`apikey` header"
        assert f"TMAPI_AUTH=auto: the gateway takes the token as the {named}" in result.stderr
    assert TOKEN not in result.stderr


@pytest.mark.parametrize(("mode", "server"), [("header", "query"), ("query", "header")])
def test_a_fixed_mode_the_server_does_not_take_stops_the_crawl(tmp_path: Path, mode: str, server: str) -> None:
    with SandboxThread(SandboxConfig(tokens=(TOKEN,), auth=server)) as sb:
        result = crawl(tmp_path, sb.base_url, {"urls": ",".join(URLS)}, {"TMAPI_AUTH": mode}, token=TOKEN)
        calls = sb.stats()["total_calls"]
    assert result.returncode == outcome.API_REFUSED, result.stderr[-2000:]
    assert "No API key found in request" in result.stderr
    assert calls <= 16  # the first wave at most


def test_auto_with_a_token_refused_both_ways_spends_two_calls_then_stops(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(tokens=("another-token",))) as sb:
        result = crawl(tmp_path, sb.base_url, {"urls": ",".join(URLS)}, token=TOKEN)
        calls = sb.stats()["total_calls"]
    assert result.returncode == outcome.API_REFUSED, result.stderr[-2000:]
    assert "Invalid authentication credentials" in result.stderr
    assert calls == 2  # the header, then the query parameter; the other calls never went out
    assert TOKEN not in result.stderr


def test_bad_tmapi_auth_is_one_line_and_no_call(tmp_path: Path) -> None:
    result = crawl(tmp_path, "http://127.0.0.1:9", {"urls": URLS[0]}, {"TMAPI_AUTH": "cookie"}, token=TOKEN)
    assert result.returncode == outcome.BAD_INPUT
    assert "TMAPI_AUTH must be one of auto, header, query, got 'cookie'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("mode", ["header", "query"])
def test_scrapy_fetch_never_prints_a_token_the_answer_quotes(tmp_path: Path, mode: str) -> None:
    """`scrapy fetch` shows an answer whole: an error text and a Location (`--headers`) that quote the
    signed request come out redacted, as a crawl's would (`--no-redirect`: a 3xx is shown, not dropped)."""
    config = SandboxConfig(tokens=(TOKEN,), auth=mode, echo_errors=True, redirect_patterns=("moved",))
    with SandboxThread(config) as sb:
        env = scrapy_env(sb.base_url, TOKEN)
        search = f"{sb.base_url}/1688/global/search/image?img_url="
        echoed = run_scrapy(["fetch", "--nolog", "-s", f"TMAPI_AUTH={mode}", f"{search}{URLS[0]}&page=0"], env)
        moved = run_scrapy(
            [
                "fetch",
                "--nolog",
                "--headers",
                "--no-redirect",
                "-s",
                f"TMAPI_AUTH={mode}",
                f"{search}{URLS[0]}/moved&page=1",
            ],
            env,
        )
    assert echoed.returncode == 0 and moved.returncode == 0, echoed.stderr[-2000:] + moved.stderr[-2000:]
    assert "request headers were" in echoed.stdout and "[redacted]" in echoed.stdout  # the 422 quoted the request
    assert "< Location: https://moved.sandbox.invalid/" in moved.stdout and "[redacted]" in moved.stdout
    shown = [proc.stdout + proc.stderr for proc in (echoed, moved)]
    assert [text for text in shown if TOKEN in text or quote(TOKEN, safe="") in text] == []


@pytest.mark.parametrize("mode", ["header", "query"])
def test_scrapy_fetch_sends_the_token_and_never_prints_it(tmp_path: Path, mode: str) -> None:
    with SandboxThread(SandboxConfig(tokens=(TOKEN,), auth=mode)) as sb:
        url = f"{sb.base_url}/1688/global/search/image?img_url={URLS[0]}&page=1"
        env = scrapy_env(sb.base_url, TOKEN)
        proc = run_scrapy(["fetch", "--nolog", "-s", f"TMAPI_AUTH={mode}", url], env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"total_count":45' in proc.stdout
    assert TOKEN not in proc.stdout + proc.stderr


def test_distributed_workers_learn_the_way_from_redis_without_the_token(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n".join(URLS) + "\n")
    with SandboxThread(SandboxConfig(tokens=(TOKEN,), auth="query")) as sb, RedisServer() as redis_server:
        common = ["-s", f"REDIS_URL={redis_server.url}", "-s", "TMAPI_JOB=auth"]
        common += [arg for k, v in QUICK_WORKER_SETTINGS.items() for arg in ("-s", f"{k}={v}")]
        seeded = scrapy(["seed", str(seeds), *common], sb.base_url, TOKEN, stderr=subprocess.PIPE)
        assert seeded.wait(60) == 0
        first = scrapy(
            ["crawl", "image_search", "-o", str(tmp_path / "w1.jsonl"), *common],
            sb.base_url,
            TOKEN,
            stderr=subprocess.PIPE,
        )
        _, err1 = first.communicate(timeout=120)
        assert first.returncode == 0, err1[-2000:]
        assert redis_server.client().get(JobKeys.for_job("auth").auth) == "query"
        refused_after_first = sb.stats()["statuses"].get("401", 0)
        # a second worker of the same job (more seeds): it asks the gateway nothing to learn the way
        more = tmp_path / "more.txt"
        more.write_text("https://cbu01.alicdn.com/img/ibank/auth-more/total-25.jpg\n")
        assert scrapy(["seed", str(more), *common], sb.base_url, TOKEN).wait(60) == 0
        second = scrapy(
            ["crawl", "image_search", "-o", str(tmp_path / "w2.jsonl"), *common],
            sb.base_url,
            TOKEN,
            stderr=subprocess.PIPE,
        )
        _, err2 = second.communicate(timeout=120)
        stats = sb.stats()
        dump = repr({k: redis_server.client().dump(k) for k in redis_server.client().scan_iter("*")})
    assert second.returncode == 0, err2[-2000:]
    assert refused_after_first == 1 and stats["statuses"].get("401", 0) == 1
    assert "learned by another worker" in err2
    assert len((tmp_path / "w2.jsonl").read_text().splitlines()) == 25
    assert TOKEN not in dump and TOKEN not in err1 + err2

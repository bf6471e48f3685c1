"""Hostile input: seed lists and spider arguments/settings.

Each case gets a clear one-line message and a defined outcome: nothing is searched that
should not be, and nothing valid is skipped (checked against the sandbox's call log).
"""

from __future__ import annotations

from pathlib import Path
from subprocess import PIPE

import pytest
from scrapy.settings import Settings

from tests.crawl_helpers import crawl, scrapy
from tmapi_spiders.crawl.config import ConfigError, check_seed_list, check_settings, job_config
from tmapi_spiders.crawl.seed_reading import LINE_LIMIT, LineReader, parse_lines
from tmapi_spiders.crawl.seeds import BadLine, Seed, check_image_url
from tmapi_spiders.sandbox import SandboxThread

SANDBOX_TOKEN = "test-token"

BAD_URLS = {
    "ftp://cbu01.alicdn.com/a.jpg": "not an http(s) URL",
    "file:///etc/passwd": "not an http(s) URL",
    "javascript:alert(1)": "not an http(s) URL",
    "data:image/png;base64,AAAA": "not an http(s) URL",
    "cbu01.alicdn.com/a.jpg": "not an http(s) URL",
    "http://127.0.0.1/a.jpg": "internal address",
    "http://localhost:8000/a.jpg": "internal address",
    "http://10.0.0.7/a.jpg": "internal address",
    "http://192.168.1.1/a.jpg": "internal address",
    "http://169.254.169.254/latest/meta-data": "internal address",
    "http://[::1]/a.jpg": "internal address",
    "http://[::ffff:127.0.0.1]/a.jpg": "internal address",
    "http://127.1/a.jpg": "internal address",
    "http://0177.0.0.1/a.jpg": "internal address",
    "http://0x7f.1/a.jpg": "internal address",
    "http://2130706433/a.jpg": "internal address",
    "http://cbu01.alicdn.com@127.0.0.1/a.jpg": "internal address",
    "http://printer.local/a.jpg": "internal address",
    "http://localhost.localdomain/a.jpg": "internal address",
    "http://intranet/a.jpg": "internal address",
    "http://db.internal/a.jpg": "internal address",
    "http:///a.jpg": "no host",
    "http://[zz]/a.jpg": "not a valid URL",
    "https://cbu01.alicdn.com/a b.jpg": "contains spaces",
    "https://cbu01.alicdn.com/a\x00.jpg": "control characters",
    "https://cbu01.alicdn.com/" + "a" * 5000: "longer than",
    "/search/": "empty converted path",
}
GOOD_URLS = [
    "https://cbu01.alicdn.com/img/ibank/O1CN01Lnbnos2LkORtHhOVp_!!3367999730-0-cib.jpg",
    "HTTPS://IMG.ALICDN.COM/imgextra/i4/2207/A.jpg",
    "https://images.example-shop.com/p/phone%20case.jpg?size=800&v=2",
    "https://例子.example/图片.jpg",
    "http://8.8.8.8/a.jpg",
    "/search/imgextra/1692942898123_q7ftzxs9.jpg",
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS.items())
def test_bad_url_is_refused_with_its_reason(url: str, reason: str) -> None:
    message = check_image_url(url)
    assert message is not None and reason in message


@pytest.mark.parametrize(("url", "reason"), BAD_URLS.items())
def test_bad_url_in_a_list_is_refused_with_its_reason(url: str, reason: str) -> None:
    (entry,) = parse_lines([url.encode()])  # a list's fast path refuses what the full check refuses
    assert isinstance(entry, BadLine) and reason in entry.reason


@pytest.mark.parametrize("url", GOOD_URLS)
def test_good_url_is_accepted(url: str) -> None:
    assert check_image_url(url) is None


def test_line_rules_bom_crlf_blank_comment_duplicates_binary_and_length() -> None:
    lines = [
        b"\xef\xbb\xbfhttps://cbu01.alicdn.com/1.jpg\r\n",  # BOM + CRLF: accepted
        b"\r\n",  # blank
        b"  # a comment\r\n",
        b"https://cbu01.alicdn.com/1.jpg\r\n",  # duplicate: once
        b"\x00\x01\xff\xfe\x89PNG\r\n",  # binary junk
        b"https://cbu01.alicdn.com/\xff.jpg\n",  # undecodable byte
        b"https://cbu01.alicdn.com/" + b"x" * 100_000 + b"\n",  # very long line
        b"  https://cbu01.alicdn.com/2.jpg  \t\n",  # surrounding space: trimmed
        b"https://cbu01.alicdn.com/3.jpg",  # no final newline
    ]
    entries = list(parse_lines(lines))
    seeds = [e for e in entries if isinstance(e, Seed)]
    bad = [e for e in entries if isinstance(e, BadLine)]
    assert [(s.url, s.line) for s in seeds] == [
        ("https://cbu01.alicdn.com/1.jpg", 1),
        ("https://cbu01.alicdn.com/2.jpg", 8),
        ("https://cbu01.alicdn.com/3.jpg", 9),
    ]
    assert [(b.line, b.reason.split(" ")[0]) for b in bad] == [(5, "contains"), (6, "contains"), (7, "longer")]


def test_a_line_without_end_is_read_in_pieces_never_whole(tmp_path: Path) -> None:
    """A list's line over the limit is a bad line from its first bytes: the rest is read past, not
    held, so a big file without line ends (a binary given by mistake) costs no memory."""
    path = tmp_path / "list.txt"
    path.write_bytes(b"\0" * 3_000_000 + b"\nhttps://cbu01.alicdn.com/1.jpg\n" + b"x" * LINE_LIMIT)
    reader = LineReader(str(path))
    raws = list(reader)
    assert [len(raw) for raw in raws] == [LINE_LIMIT, 31, LINE_LIMIT]
    assert reader.read == path.stat().st_size
    bad, seed, tail = parse_lines(raws)
    assert isinstance(bad, BadLine) and bad.reason == "longer than 4096 characters"
    assert isinstance(seed, Seed) and seed.line == 2 and isinstance(tail, BadLine)


@pytest.fixture
def sandbox() -> SandboxThread:
    with SandboxThread() as sb:
        yield sb  # type: ignore[misc]


def searched(sandbox: SandboxThread) -> set[str]:
    """Every image the sandbox was asked about: converted source URLs and searched img_urls."""
    out = set()
    for call in sandbox.calls():
        params = call["params"]
        if "url" in params:
            out.add(params["url"])
        elif "img_url" in params and not params["img_url"].startswith("/search/imgextra/"):
            out.add(params["img_url"])
    return out


def test_hostile_seed_file_searches_exactly_the_valid_lines(tmp_path: Path, sandbox: SandboxThread) -> None:
    good = [f"https://cbu01.alicdn.com/img/hostile-{i}.jpg?total=3" for i in range(5)]
    good += ["https://images.example-shop.com/hostile.jpg?total=3", "HTTPS://IMG.ALICDN.COM/Hostile.jpg?total=3"]
    body = b"\xef\xbb\xbf" + good[0].encode() + b"\r\n"
    body += b"\r\n".join(u.encode("utf-8", "surrogateescape") for u in BAD_URLS) + b"\r\n"
    body += b"\x00\xff\xfe junk \x89PNG\r\n" + b"A" * 1_000_000 + b"\r\n"
    for url in good:
        body += url.encode() + b"\r\n" + url.encode() + b"\n"  # every good line twice
    seeds = tmp_path / "seeds.txt"
    seeds.write_bytes(body)
    result = crawl(tmp_path, sandbox.base_url, {"urls_file": str(seeds)}, token="sandbox")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # Searched and recorded in one spelling: scheme and host lower-cased, the path as given.
    canonical = {u.replace("HTTPS://IMG.ALICDN.COM/", "https://img.alicdn.com/") for u in good}
    assert searched(sandbox) == canonical
    assert {p["query_image_url"] for p in result.products} == canonical
    assert len(result.products) == 3 * len(good)
    stats = result.stats
    assert stats["tmapi/seeds_bad_line"] == len(BAD_URLS) + 2
    assert stats["tmapi/images_seeded"] == len(good)
    # Each bad line is named with its number and reason, one line each.
    assert "line 2 skipped: not an http(s) URL" in result.stderr
    assert f"line {len(BAD_URLS) + 2} skipped: contains control characters" in result.stderr
    assert f"line {len(BAD_URLS) + 3} skipped: longer than" in result.stderr


@pytest.mark.slow
def test_100000_line_list_is_streamed_not_loaded_whole(tmp_path: Path, sandbox: SandboxThread) -> None:
    seeds = tmp_path / "big.txt"
    with seeds.open("w") as handle:
        for i in range(100_000):
            handle.write(f"https://cbu01.alicdn.com/big/{i}.jpg?total=0\n")
    result = crawl(
        tmp_path,
        sandbox.base_url,
        {"urls_file": str(seeds)},
        {"CLOSESPIDER_PAGECOUNT": 100, "CONCURRENT_REQUESTS": 8},
        token="sandbox",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = result.stats
    assert stats["tmapi/images_total"] == 100_000  # the whole list was checked first
    # ...but only a few requests ahead of the downloader were ever queued.
    assert stats["scheduler/enqueued"] <= stats["response_received_count"] + 2 * 8 + 8
    assert stats["tmapi/images_seeded"] < 1_000


@pytest.mark.slow
def test_100000_lines_of_mostly_junk_search_every_valid_line_once(tmp_path: Path, sandbox: SandboxThread) -> None:
    good = [f"https://cbu01.alicdn.com/mix/{i}.jpg?total=0" for i in range(300)]
    seeds = tmp_path / "mix.txt"
    with seeds.open("wb") as handle:
        for i in range(100_000):
            if i % 333 == 0 and i // 333 < len(good):
                handle.write(good[i // 333].encode() + b"\r\n")
            elif i % 3 == 0:
                handle.write(good[(i // 7) % len(good)].encode() + b"\n")  # duplicates
            elif i % 3 == 1:
                handle.write(b"file:///etc/passwd\n")
            else:
                handle.write(b"\x00\x01 junk\n")
    result = crawl(tmp_path, sandbox.base_url, {"urls_file": str(seeds)}, token="sandbox")
    assert result.returncode == 0, result.stderr[-2000:]
    assert searched(sandbox) == set(good)
    assert sandbox.stats()["total_calls"] == len(good)
    stats = result.stats
    assert stats["tmapi/images_searched"] == len(good)
    assert "more bad seed lines: counted in stats" in result.stderr
    assert result.stderr.count("skipped:") == 50  # logged up to a limit, counted beyond it


ONE = "https://cbu01.alicdn.com/a.jpg"
BAD_ARGS = [
    ({}, "no seeds: give -a urls_file=PATH"),
    ({"urls": ONE, "urls_file": "x.txt"}, "give either -a urls_file"),
    ({"urls_file": "/nonexistent/seeds.txt"}, "cannot read urls_file '/nonexistent/seeds.txt'"),
    ({"urls_file": "/tmp"}, "Is a directory"),
    ({"urls": "ftp://x/a.jpg,http://127.0.0.1/b.jpg"}, "has no searchable image URL (2 bad lines; line 1"),
    ({"urls": ONE, "colour": "red"}, "unknown argument 'colour'"),
    ({"urls": ONE, "language": "xx"}, "bad argument language"),
    ({"urls": ONE, "sort": "random"}, "bad argument sort"),
    ({"urls": ONE, "page_size": "21"}, "bad argument page_size"),
    ({"urls": ONE, "page_size": "ten"}, "bad argument page_size"),
    ({"urls": ONE, "max_pages": "-1"}, "bad argument max_pages"),
    ({"urls": ONE, "is_factory": "maybe"}, "bad argument is_factory"),
]
BAD_SETTINGS = [
    ({"DOWNLOAD_TIMEOUT": "soon"}, "DOWNLOAD_TIMEOUT must be a number"),
    ({"DOWNLOAD_TIMEOUT": "0"}, "DOWNLOAD_TIMEOUT must be above 0"),
    ({"TMAPI_SANDBOX": "maybe"}, "TMAPI_SANDBOX must be true or false"),
    ({"TMAPI_STOP_ON_SHORT_PAGE": "maybe"}, "TMAPI_STOP_ON_SHORT_PAGE must be true or false"),
    ({"TMAPI_SUMMARY": "maybe"}, "TMAPI_SUMMARY must be true or false"),
    ({"TMAPI_REDIS_SEED_BATCH": "abc"}, "TMAPI_REDIS_SEED_BATCH must be a whole number of seeds, 1 or more"),
    ({"TMAPI_REDIS_HEARTBEAT": "-1"}, "TMAPI_REDIS_HEARTBEAT must be a number of seconds, 0 or more"),
    ({"TMAPI_REDIS_KEEP_STATS": "abc"}, "TMAPI_REDIS_KEEP_STATS must be a number"),
    ({"TMAPI_BACKOFF_BASE": "5", "TMAPI_BACKOFF_MAX": "1"}, "TMAPI_BACKOFF_MAX (1.0) must not be below"),
    ({"TMAPI_BACKOFF_BASE": "-1"}, "TMAPI_BACKOFF_BASE must be a number of seconds, 0 or more"),
    ({"TMAPI_BASE_URL": "ftp://x"}, "TMAPI_BASE_URL must be an http(s) URL"),
    ({"RETRY_TIMES": "many"}, "RETRY_TIMES must be an integer"),
    ({"CONCURRENT_REQUESTS": "0"}, "CONCURRENT_REQUESTS must be 1 or more"),
    ({"DOWNLOAD_MAXSIZE": "2MB"}, "DOWNLOAD_MAXSIZE must be an integer, got '2MB'"),
    ({"DOWNLOAD_WARNSIZE": "-1"}, "DOWNLOAD_WARNSIZE must be 0 or more, got -1"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS)
def test_bad_argument_is_a_config_error_naming_it(args: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_seed_list(job_config(args))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("values", "message"), BAD_SETTINGS)
def test_bad_setting_is_a_config_error_naming_it(values: dict[str, str], message: str) -> None:
    settings = Settings({"TMAPI_API_TOKEN": "t", "TMAPI_BASE_URL": "http://127.0.0.1:9"})
    settings.setmodule("tmapi_spiders.settings", priority="default")
    settings.setdict({"TMAPI_API_TOKEN": "t", "TMAPI_BASE_URL": "http://127.0.0.1:9", **values}, priority="cmdline")
    with pytest.raises(ConfigError) as info:
        check_settings(settings)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        ({}, {}, "error: no seeds: give -a urls_file=PATH"),
        ({"urls_file": "/tmp"}, {}, "error: cannot read urls_file '/tmp': Is a directory"),
        ({"urls": "ftp://x/a.jpg"}, {}, "error: urls argument has no searchable image URL (1 bad lines; line 1"),
        ({"urls": ONE, "page_size": "ten"}, {}, "error: bad argument page_size"),
        ({"urls": ONE}, {"RETRY_TIMES": "many"}, "error: RETRY_TIMES must be an integer"),
        ({"urls": ONE}, {"LOG_LEVEL": "LOUD"}, "error: LOG_LEVEL must be one of"),
    ],
)
def test_bad_input_on_the_command_line_is_one_line_exit_2_and_no_call(
    tmp_path: Path, sandbox: SandboxThread, args: dict[str, str], settings: dict[str, str], message: str
) -> None:
    result = crawl(tmp_path, sandbox.base_url, args, settings, token="sandbox", timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert sandbox.stats()["total_calls"] == 0


def test_missing_token_is_one_line_exit_2_and_no_call(tmp_path: Path, sandbox: SandboxThread) -> None:
    result = crawl(tmp_path, sandbox.base_url, {"urls": "https://cbu01.alicdn.com/a.jpg"}, token=None)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no API token: set TMAPI_API_TOKEN in the environment (or -s TMAPI_API_TOKEN=...),"
        " or run against the bundled sandbox with -s TMAPI_SANDBOX=true"
    ]
    assert sandbox.stats()["total_calls"] == 0


def test_scrapy_parse_of_an_api_page_is_one_line_exit_2_and_no_call(sandbox: SandboxThread) -> None:
    """Scrapy's parse would fetch the page (a paid call) and fail without the crawl's state."""
    page = f"{sandbox.base_url}/1688/global/search/image?img_url=https%3A%2F%2Fcbu01.alicdn.com%2Fa.jpg&page=1"
    proc = scrapy(["parse", "--spider", "image_search", "--pipelines", page], sandbox.base_url, "sandbox", stderr=PIPE)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err[-2000:]
    assert err.strip().splitlines() == [
        "error: scrapy parse cannot run image_search: its pages need the state a crawl carries from page to page;"
        " for one image's results run: scrapy crawl image_search -a urls=IMAGE_URL -O results.jsonl"
    ]
    assert not out and sandbox.stats()["total_calls"] == 0

"""Live progress and the run summary: exact numbers for a known list, crawled for real."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from scrapy.settings import Settings

from tests.crawl_helpers import crawl
from tests.scrapy_server import start_scrapy
from tmapi_spiders.api import contract
from tmapi_spiders.crawl.config import ConfigError, check_settings
from tmapi_spiders.crawl.outputs import summary_path
from tmapi_spiders.extensions.progress import Progress, want_bar
from tmapi_spiders.extensions.summary import table, totals_of
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

# name -> forced total_count (the sandbox reads `total-N` in the image path)
TOTALS = {"a": 0, "b": 19, "c": 20, "d": 41, "e": 95}
DENIED = "https://denied.example.net/photo-1.jpg"
CONVERTED = "https://shop.example.com/photos/total-33.jpg"


def ali(name: str, total: int) -> str:
    return f"https://cbu01.alicdn.com/img/ibank/ps-{name}/total-{total}.jpg"


def known_list() -> tuple[list[str], dict[str, dict[str, object]], int]:
    """The seeds, what the summary must say about each, and the paid calls they need."""
    urls = [ali(name, total) for name, total in TOTALS.items()] + [CONVERTED, DENIED]
    expected: dict[str, dict[str, object]] = {}
    calls = 0
    for url, total in [(ali(n, t), t) for n, t in TOTALS.items()] + [(CONVERTED, 33)]:
        pages = max(1, contract.last_page(total, 20))
        expected[url] = {"status": "done", "total_count": total, "pages": pages, "items": total, "duplicates": 0}
        calls += pages
    calls += 1  # the conversion of CONVERTED
    expected[DENIED] = {"status": "failed", "total_count": None, "pages": 0, "items": 0, "duplicates": 0}
    calls += 1  # the refused conversion is paid too
    return urls, expected, calls


@pytest.fixture
def sandbox() -> SandboxThread:
    with SandboxThread(SandboxConfig(deny_patterns=(r"denied\.example\.net",), latency=0.02)) as sb:
        yield sb


def progress_lines(stderr: str) -> list[str]:
    return [line.split("INFO: ", 1)[1] for line in stderr.splitlines() if "INFO: progress: " in line]


LINE_RE = re.compile(
    r"progress: images (\d+)/~?(\d+) done, pages (\d+)/(\d+) expected so far, items (\d+), failures (\d+),"
    r" paid calls (\d+) \(([\d.]+)/s\), ETA (\S+)"
)


def test_progress_line_and_summary_carry_the_right_numbers(tmp_path: Path, sandbox: SandboxThread) -> None:
    urls, expected, calls = known_list()
    result = crawl(
        tmp_path,
        sandbox.base_url,
        {"urls": ",".join(urls)},
        {"TMAPI_PROGRESS_INTERVAL": "0.1", "CONCURRENT_REQUESTS": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sandbox.stats()["total_calls"] == calls

    lines = progress_lines(result.stderr)
    assert len(lines) >= 3, result.stderr[-3000:]  # periodic lines, then the final one
    readings = [LINE_RE.match(line) for line in lines]
    assert all(readings), lines
    numbers = [tuple(int(g) for g in m.groups()[:7]) for m in readings if m]
    for earlier, later in itertools.pairwise(numbers):
        assert all(b >= a for a, b in zip(earlier[:1] + earlier[2:], later[:1] + later[2:], strict=True))
    total_pages = sum(int(e["pages"]) for e in expected.values())  # type: ignore[call-overload]
    total_items = sum(TOTALS.values()) + 33
    assert numbers[-1] == (len(urls), len(urls), total_pages, total_pages, total_items, 1, calls)
    assert lines[-1].endswith("ETA 0:00:00 (finish reason: finished)")
    assert all(m and re.fullmatch(r"\?|\d+:\d\d:\d\d", m.group(9)) for m in readings), lines

    summary_file = tmp_path / "products.summary.json"
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert summary["finish_reason"] == "finished"
    by_url = {image["query_image_url"]: image for image in summary["images"]}
    assert set(by_url) == set(urls)
    for url, want in expected.items():
        got = {key: by_url[url][key] for key in want}
        assert got == want, url
    assert by_url[DENIED]["reason"] and "denied" in by_url[DENIED]["reason"].lower()
    assert all(by_url[url]["reason"] == "" for url in urls if url != DENIED)
    assert summary["totals"] == {
        "images": len(urls),
        "images_done": len(urls) - 1,
        "images_failed": 1,
        "images_unfinished": 0,
        "pages": total_pages,
        "items": total_items,
        "duplicates": 0,
        "paid_calls": calls,
        "pages_fetched": total_pages,
        "items_written": total_items,
        "cached_answers": 0,
    }
    assert len(result.products) == total_items
    # the table in the log
    assert "Run summary (finish reason: finished):" in result.stderr
    assert f"totals: {len(urls)} images: {len(urls) - 1} done, 1 failed, 0 unfinished;" in result.stderr
    assert f"{total_pages} pages, {total_items} items, 0 duplicates; {calls} paid calls" in result.stderr
    assert f"Run summary written to {summary_file}" in result.stderr


def test_summary_counts_duplicates_and_follows_the_summary_setting(tmp_path: Path) -> None:
    with SandboxThread(SandboxConfig(repeat_rate=0.3)) as sb:
        out = tmp_path / "elsewhere" / "run.json"
        result = crawl(tmp_path, sb.base_url, {"urls": ali("dups", 100)}, {"TMAPI_SUMMARY_FILE": str(out)})
    assert result.returncode == 0, result.stderr[-3000:]
    [image] = json.loads(out.read_text(encoding="utf-8"))["images"]
    assert image["duplicates"] > 0
    assert image["items"] == len(result.products) == 100 - image["duplicates"]
    assert not (tmp_path / "products.summary.json").exists()


def test_progress_and_summary_can_be_switched_off(tmp_path: Path, sandbox: SandboxThread) -> None:
    result = crawl(
        tmp_path, sandbox.base_url, {"urls": ali("off", 5)}, {"TMAPI_PROGRESS_INTERVAL": "0", "TMAPI_SUMMARY": "false"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert progress_lines(result.stderr) == []
    assert not list(tmp_path.rglob("*.summary.json"))


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("TMAPI_PROGRESS_INTERVAL", "soon", "TMAPI_PROGRESS_INTERVAL must be a number of seconds, 0 or more (0: off)"),
        ("TMAPI_PROGRESS_INTERVAL", "-1", "TMAPI_PROGRESS_INTERVAL must be a number of seconds, 0 or more (0: off)"),
        ("TMAPI_PROGRESS_BAR", "sometimes", "TMAPI_PROGRESS_BAR must be one of auto, true, false"),
    ],
)
def test_bad_progress_settings_are_named(setting: str, value: str, message: str) -> None:
    """What `scrapy crawl` checks before any call (the one-line form is run for real below)."""
    settings = Settings({"TMAPI_API_TOKEN": "test-token", "TMAPI_BASE_URL": "http://127.0.0.1:9", setting: value})
    with pytest.raises(ConfigError) as raised:
        check_settings(settings)
    assert str(raised.value).startswith(message) and repr(value) in str(raised.value)


def test_bad_progress_setting_fails_in_one_line(tmp_path: Path) -> None:
    result = crawl(tmp_path, "http://127.0.0.1:9", {"urls": ali("x", 1)}, {"TMAPI_PROGRESS_INTERVAL": "soon"})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line == "error: TMAPI_PROGRESS_INTERVAL must be a number of seconds, 0 or more (0: off), got 'soon'"


def test_progress_bar_on_a_terminal(tmp_path: Path, sandbox: SandboxThread) -> None:
    """stderr a terminal: a tqdm bar instead of the periodic lines; log records still get through."""
    urls, _, calls = known_list()
    cmd = ["crawl", "image_search", "-O", str(tmp_path / "products.jsonl")]
    cmd += ["-a", "urls=" + ",".join(urls), "-s", "TMAPI_PROGRESS_INTERVAL=0.1", "-s", "CONCURRENT_REQUESTS=2"]
    cmd += ["-s", f"TMAPI_OUTPUT_DIR={tmp_path / 'output'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMAPI_")}
    env.update(TMAPI_API_TOKEN="sandbox", TMAPI_BASE_URL=sandbox.base_url)
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 40 rows, 160 columns
    proc = start_scrapy(cmd, env, stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary)
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the terminal closed: the crawl is over
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-3000:]
    assert "\r" in text and "images: 100%|" in text, text[-3000:]
    assert f"calls {calls} " in text
    # the bar replaces the periodic lines; the final line is still logged
    lines = [line for line in text.replace("\r", "\n").splitlines() if "INFO: progress: " in line]
    assert len(lines) == 1 and "(finish reason: finished)" in lines[0]
    assert "Run summary written to" in text


# pure functions


def test_eta_from_expected_pages_and_rate() -> None:
    base = dict(images_failed=0, items=0, paid_calls=0, calls_per_s=0.0)
    # 2 of 4 images known, expecting 10 pages between them, 4 fetched; 2 unknown at 5 each
    p = Progress(images_total=4, images_done=1, images_known=2, images_settled=2, pages=4, pages_expected=10,
                 pages_per_s=2.0, **base)  # fmt: skip
    assert p.eta() == "0:00:08"  # 6 + 2 * 5 = 16 pages at 2 a second
    assert Progress(images_total=4, images_done=0, images_known=0, images_settled=0, pages=0, pages_expected=0,
                    pages_per_s=0.0, **base).eta() == "?"  # fmt: skip
    done = Progress(images_total=3, images_done=3, images_known=2, images_settled=3, pages=9, pages_expected=9,
                    pages_per_s=0.0, **base)  # fmt: skip
    assert done.eta() == "0:00:00"
    slow = Progress(images_total=1, images_done=0, images_known=1, images_settled=1, pages=0, pages_expected=7201,
                    pages_per_s=1.0, **base)  # fmt: skip
    assert slow.eta() == "2:00:01"


def test_want_bar() -> None:
    assert want_bar("true") is True and want_bar("false") is False and want_bar("0") is False
    assert want_bar("auto") is sys.stderr.isatty()
    with pytest.raises(ValueError, match="not a boolean"):  # the registry refuses it first
        want_bar("maybe")


def test_summary_path_sits_beside_the_products_feed() -> None:
    assert summary_path("/x/products.jsonl", "out", "s", "T") == "/x/products.summary.json"
    assert summary_path("file:///x/a%20b.csv", "out", "s", "T") == "/x/a b.summary.json"
    assert summary_path("/x/noext", "out", "s", "T") == "/x/noext.summary.json"
    assert summary_path("stdout:", "out", "s", "T") == os.path.join("out", "s-T.summary.json")
    assert summary_path("s3://bucket/k.jsonl", "out", "s", "T") == os.path.join("out", "s-T.summary.json")
    assert summary_path(None, "out", "s", "T") == os.path.join("out", "s-T.summary.json")


def test_totals_and_table() -> None:
    images = [
        {"query_image_url": "u1", "status": "done", "total_count": 5, "pages": 1, "items": 5, "duplicates": 0,
         "reason": ""},
        {"query_image_url": "u2", "status": "failed", "total_count": None, "pages": 0, "items": 0, "duplicates": 0,
         "reason": "TMAPI_MAX_CALLS=3 reached"},
    ]  # fmt: skip
    totals = totals_of(images, images_total=3)
    assert totals == {"images": 3, "images_done": 1, "images_failed": 1, "images_unfinished": 1, "pages": 1,
                      "items": 5, "duplicates": 0}  # fmt: skip
    text = table(images, {**totals, "paid_calls": 3}, rows=1)
    lines = text.splitlines()
    assert lines[0].split() == ["image", "status", "total", "pages", "items", "dups", "reason"]
    assert lines[1].split()[:2] == ["u2", "failed"]  # failures first
    assert lines[2] == "... and 1 more images (see the summary file)"
    assert lines[3].endswith("1 pages, 5 items, 0 duplicates; 3 paid calls")

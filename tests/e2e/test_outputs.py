"""Outputs that cannot be written, and two runs writing the same files: refused before the first paid call.

Real `scrapy crawl` subprocesses against a sandbox: a file used as a folder, /dev/full, a
read-only tmpfs mount, an immutable (chattr +i) folder, and two real processes started on the
same command. The sandbox's own call counter says what was paid (tmapi_spiders/crawl/outputs.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawl_helpers import read_stats, scrapy_env
from tests.scrapy_server import ScrapyProcess, start_scrapy
from tmapi_spiders.jobs import outcome
from tmapi_spiders.sandbox import SandboxThread

TOKEN = "tok-OUTPUTS-7"
# This module's `sandbox` (tests/conftest.py). 0.1 s a call, 2 at a time: a crawl of the 8 images
# takes about 2 s, time for a second run to start.
SANDBOX_OPTIONS = {"tokens": (TOKEN,), "latency": 0.1}
IMAGE = "https://cbu01.alicdn.com/img/outputs-{}.jpg?total=100"  # 5 pages each
IMAGES = [IMAGE.format(i) for i in range(8)]
CALLS = 8 * 5
SETTINGS = {
    "CONCURRENT_REQUESTS": "2",
    "AUTOTHROTTLE_ENABLED": "false",
    "TMAPI_BACKOFF_BASE": "0.05",
    "TMAPI_PROGRESS_INTERVAL": "0",
}


def command(tmp: Path, feed: list[str], stats: Path, **settings: str) -> list[str]:
    seeds = tmp / "seeds.txt"
    seeds.write_text("\n".join(IMAGES) + "\n", encoding="utf-8")
    merged = {**SETTINGS, "TMAPI_CACHE_DIR": str(tmp / "store"), "TMAPI_OUTPUT_DIR": str(tmp / "output")}
    merged.update(settings, TMAPI_STATS_FILE=str(stats))
    cmd = ["crawl", "image_search", "-a", f"urls_file={seeds}", *feed]
    return cmd + [arg for key, value in merged.items() for arg in ("-s", f"{key}={value}")]


def start(
    tmp: Path, base_url: str, feed: list[str], name: str, **settings: str
) -> ScrapyProcess | subprocess.Popen[str]:
    args = command(tmp, feed, tmp / f"{name}.stats.json", **settings)
    return start_scrapy(args, scrapy_env(base_url, TOKEN), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(tmp: Path, base_url: str, feed: list[str], name: str = "run", **settings: str) -> tuple[int, str, dict]:
    proc = start(tmp, base_url, feed, name, **settings)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err, read_stats(tmp / f"{name}.stats.json")


def assert_refused(result: tuple[int, str, dict], sandbox: SandboxThread, *words: str) -> str:
    """Exit 2, one `error:` line holding every word, nothing paid, no stats written."""
    returncode, err, stats = result
    assert returncode == outcome.BAD_INPUT, err[-3000:]
    [line] = err.strip().splitlines()
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, line
    assert sandbox.stats()["total_calls"] == 0 and stats == {}
    return line


def read_only_mount(path: Path) -> Iterator[Path]:
    path.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from read_only_mount(tmp_path / "ro")


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "immutable"
    folder.mkdir()
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot make a folder immutable here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


# -- an output that cannot be written ---------------------------------------------------------------


@pytest.mark.parametrize("option", ["-O", "-o"])
def test_a_feed_under_dev_full_is_refused_before_any_call(tmp_path: Path, sandbox: SandboxThread, option: str) -> None:
    result = run(tmp_path, sandbox.base_url, [option, "/dev/full/x.jsonl"])
    line = assert_refused(result, sandbox, "/dev/full/x.jsonl", "Not a directory", "/dev/full is a file")
    assert line.startswith("error: the products feed /dev/full/x.jsonl cannot be written")


def test_a_file_used_as_a_folder_is_refused_and_nothing_is_left(tmp_path: Path, sandbox: SandboxThread) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file\n")
    feed = tmp_path / "new" / "deeper" / "products.jsonl"
    # the products feed can be written, its summary beside it too; the failures feed cannot
    result = run(tmp_path, sandbox.base_url, ["-O", str(feed)], TMAPI_FAILURES_FEED=str(blocker / "f.jsonl"))
    assert_refused(result, sandbox, f"the failures feed {blocker / 'f.jsonl'}", "Not a directory")
    assert not (tmp_path / "new").exists()  # the folders the check made are gone with it


def test_a_feeds_entry_in_a_read_only_folder(tmp_path: Path, sandbox: SandboxThread, read_only: Path) -> None:
    feeds = json.dumps({f"file://{read_only}/products.jsonl": {"format": "jsonlines"}})
    result = run(tmp_path, sandbox.base_url, [], FEEDS=feeds)
    assert_refused(result, sandbox, f"{read_only}/products.jsonl", "Read-only file system")


def test_a_parent_that_cannot_be_created_is_refused(tmp_path: Path, sandbox: SandboxThread, read_only: Path) -> None:
    result = run(tmp_path, sandbox.base_url, ["-O", str(read_only / "a" / "b" / "products.jsonl")])
    assert_refused(result, sandbox, str(read_only / "a" / "b" / "products.jsonl"), "Read-only file system")


def test_an_immutable_folder_is_refused(tmp_path: Path, sandbox: SandboxThread, immutable: Path) -> None:
    result = run(tmp_path, sandbox.base_url, ["-o", str(immutable / "products.jsonl")])
    assert_refused(result, sandbox, str(immutable / "products.jsonl"), "Operation not permitted")


def test_a_summary_that_cannot_be_written_is_refused(tmp_path: Path, sandbox: SandboxThread, immutable: Path) -> None:
    out = tmp_path / "out" / "products.jsonl"
    result = run(tmp_path, sandbox.base_url, ["-O", str(out)], TMAPI_SUMMARY_FILE=str(immutable / "summary.json"))
    assert_refused(result, sandbox, f"the run summary {immutable / 'summary.json'}", "Operation not permitted")
    assert not out.parent.exists()


def test_a_read_only_answer_store_is_refused(tmp_path: Path, sandbox: SandboxThread, read_only: Path) -> None:
    result = run(tmp_path, sandbox.base_url, ["-O", str(tmp_path / "p.jsonl")], TMAPI_CACHE_DIR=str(read_only))
    line = assert_refused(result, sandbox, f"TMAPI_CACHE_DIR {read_only}", "(Read-only file system)")
    assert "free some space" not in line


def test_a_directory_where_the_store_file_should_be_is_named(tmp_path: Path, sandbox: SandboxThread) -> None:
    (tmp_path / "store" / "answers.sqlite3").mkdir(parents=True)
    result = run(tmp_path, sandbox.base_url, ["-O", str(tmp_path / "p.jsonl")])
    line = assert_refused(result, sandbox, f"{tmp_path / 'store' / 'answers.sqlite3'} is a directory")
    assert "free some space" not in line


def test_stdout_is_left_alone(tmp_path: Path, sandbox: SandboxThread) -> None:
    returncode, err, stats = run(tmp_path, sandbox.base_url, ["-O", "-:jsonlines"])
    assert returncode == outcome.OK, err[-3000:]
    assert stats["tmapi/paid_calls"] == CALLS


# -- two runs in one directory ----------------------------------------------------------------------


def wait_until_paying(sandbox: SandboxThread, proc: subprocess.Popen[str], lock: Path) -> None:
    deadline = time.monotonic() + 60
    while not (lock.exists() and sandbox.stats()["total_calls"] > 0):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first run never started paying"
        time.sleep(0.02)


def records(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        json.loads(line)  # no torn line
    return lines


@pytest.mark.parametrize("second_feed", ["same", "other"])
def test_a_second_run_is_refused_while_the_first_runs(tmp_path: Path, sandbox: SandboxThread, second_feed: str) -> None:
    out = tmp_path / "out" / "products.jsonl"
    # One call at a time, 0.1 s apart: the first run still pays while the second starts up.
    slow = {"CONCURRENT_REQUESTS": "1", "DOWNLOAD_DELAY": "0.1"}
    first = start(tmp_path, sandbox.base_url, ["-O", str(out)], "first", **slow)
    try:
        wait_until_paying(sandbox, first, Path(f"{out}.lock"))
        other = out if second_feed == "same" else tmp_path / "out2" / "products.jsonl"
        result = run(tmp_path, sandbox.base_url, ["-O", str(other)], "second")
        # same feed: the feed's lock; another feed, same answer store: the store's
        what = f"the products feed {out}" if second_feed == "same" else "the answer store"
        assert_refused_while_running(result, first.pid, what)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == outcome.OK, err[-3000:]
    assert read_stats(tmp_path / "first.stats.json")["tmapi/paid_calls"] == CALLS == sandbox.stats()["total_calls"]
    lines = records(out)
    assert len(lines) == len(set(lines)) == 8 * 100
    assert not list(tmp_path.rglob("*.lock"))  # removed at a clean exit


def assert_refused_while_running(result: tuple[int, str, dict], pid: int, what: str) -> None:
    returncode, err, stats = result
    assert returncode == outcome.BAD_INPUT, err[-3000:]
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: another run (pid {pid}) is writing {what}"), line
    assert stats == {}


def test_a_killed_runs_lock_does_not_block_the_next(tmp_path: Path, sandbox: SandboxThread) -> None:
    out = tmp_path / "out" / "products.jsonl"
    first = start(tmp_path, sandbox.base_url, ["-O", str(out)], "first")
    try:
        wait_until_paying(sandbox, first, Path(f"{out}.lock"))
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    assert Path(f"{out}.lock").read_text().strip() == str(first.pid)  # left behind, no longer held
    returncode, err, _ = run(tmp_path, sandbox.base_url, ["-O", str(out)])
    assert returncode == outcome.OK, err[-3000:]
    lines = records(out)
    assert len(lines) == len(set(lines)) == 8 * 100
    assert not Path(f"{out}.lock").exists()

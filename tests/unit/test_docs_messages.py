"""Every `error: ...` line (and run summary `totals: ...` line) README.md and docs/ quote is
one the code really prints.

The quotes are found in the docs (inline code, and fenced lines starting `error:`); each must
match one of the messages below, made by the code that prints it with the doc's example
inputs (commands print `error: ` and the exception's text). In a quote `...` (and the spaces
around it) stands for any text. A quote no message matches fails, so a new quote needs its
message here; a message no doc quotes fails too."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scrapy.settings import Settings

from tests.crawl_helpers import REPO
from tests.redis_server import RedisServer, TlsRedisServer, free_port, tls_supported
from tmapi_spiders import registry, report
from tmapi_spiders.commands import report as report_command
from tmapi_spiders.commands import sheet
from tmapi_spiders.crawl import config, outputs
from tmapi_spiders.distributed import connection
from tmapi_spiders.distributed.keys import JobKeys, legacy_message
from tmapi_spiders.extensions.summary import table
from tmapi_spiders.jobs import cache
from tmapi_spiders.watch import history

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
INLINE = re.compile(r"`((?:error|totals): [^`]+)`")
FENCED = re.compile(r"^(?:# )?(error: .+)$", re.M)


def doc_quotes() -> list[tuple[str, str]]:
    """(where, quote) of every quoted line that says more than `error: ...`."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for pattern in (INLINE, FENCED):
            for match in pattern.finditer(text):
                quote = " ".join(match.group(1).split())
                if len(quote.replace("...", "").strip()) > len("error:"):
                    line = text.count("\n", 0, match.start()) + 1
                    found.append((f"{doc.relative_to(REPO)}:{line}", quote))
    return found


def matches(quote: str, message: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in re.split(r"\s*\.\.\.\s*", quote))
    return re.fullmatch(pattern, message, re.S) is not None


def error(call: Callable[[], object], *expected: type[BaseException]) -> str:
    """`error: <text>`, as the commands print it, of what `call` raises."""
    with pytest.raises(expected or (Exception,)) as raised:
        call()
    return f"error: {raised.value}"


def lock_held_twice(path: str, what: str) -> str:
    first = outputs.Lock(path, what)
    first.acquire()
    try:
        return error(outputs.Lock(path, what).acquire, outputs.OutputError)
    finally:
        first.release()


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[RedisServer]:
    with RedisServer(password="right-password") as server:
        yield server


def real_messages(redis_server: RedisServer) -> Iterator[str]:
    """The messages, made by the code that prints them, with each doc's example inputs (file
    names relative to the working directory, as the docs give them)."""
    yield error(lambda: registry.check_names(["TMAPI_MAX_CALL"]), config.ConfigError)
    counts = dict.fromkeys(("images", "images_done", "images_failed", "images_unfinished", "pages", "items"), 1)
    resumed = {**counts, "duplicates": 0, "paid_calls": 312, "cached_answers": 2480}
    yield table([], resumed).splitlines()[-1]
    yield error(lambda: config.query_from_args({"page_size": "50"}), config.ConfigError)
    yield error(lambda: registry.check(Settings({"TMAPI_MAX_CALLS": "-1"})), config.ConfigError)
    yield error(lambda: config.job_config({"best_by": "cheapest"}, need_seeds=False), config.ConfigError)
    resumable = {"TMAPI_CACHE": False, "JOBDIR": "job", "FEEDS": {"p.jsonl": {"overwrite": True}}}
    yield error(lambda: cache.check(Settings(resumable)), ValueError)

    feed = Path("products.jsonl")
    yield error(lambda: report.build(feed), report.ReportError)
    yield error(lambda: list(sheet.records(feed, "query_image_url", [0])), report.ReportError)
    feed.write_text('{"offer_id": 1}\n')
    yield error(lambda: report.build(feed), report.ReportError)
    torn = '{"query_image_url": "https://img/1.jpg"'  # the last line, cut short
    feed.write_text('{"query_image_url": "u"}\n' * 11 + torn)
    yield error(lambda: report.build(feed), report.ReportError)
    yield error(lambda: report_command.top_of("0"), report.ReportError)

    Path("out").mkdir()
    yield lock_held_twice("out/products.jsonl", "the products feed").replace(f"pid {os.getpid()}", "pid 4242")
    feed = outputs.Output("the products feed", "/dev/full/x.jsonl", lock=True)
    yield error(lambda: outputs.prepare([feed]), outputs.OutputError)
    yield error(lambda: cache.check_writable("/dev/full/x"), ValueError)
    Path("DIR").mkdir()
    plan = history.prepare(Path("DIR"), 1, [])
    try:
        yield error(lambda: history.prepare(Path("DIR"), 1, []), history.HistoryError)
    finally:
        history.release(plan)

    ca_file = {"REDIS_TLS_CA_FILE": "/etc/redis/ca.pem"}
    yield error(lambda: connection.client(Settings({"REDIS_URL": "rediss://h:6380/0", **ca_file})))
    yield error(lambda: connection.client(Settings({"REDIS_URL": "redis://h:6379/0", **ca_file})))
    yield error(lambda: connection.client(Settings({"REDIS_SENTINELS": "h:26379"})))
    keys = JobKeys.from_settings(Settings({"SCHEDULER_QUEUE_KEY": "jobs:requests"}), "image_search")
    yield error(keys.check_one_slot, ValueError)
    yield f"error: {legacy_message(JobKeys.from_settings(Settings(), 'image_search'), ['image_search:start_urls'])}"
    down = f"redis://127.0.0.1:{free_port()}/0"
    yield f"error: {connection.check_reachable(Settings({'REDIS_URL': down}))}".replace(down, "redis://host:6379/0")
    wrong = f"redis://:wrong@127.0.0.1:{redis_server.port}/0"
    yield f"error: {connection.check_reachable(Settings({'REDIS_URL': wrong}))}"
    if not tls_supported():
        with TlsRedisServer() as server:
            untrusted = {k: v for k, v in server.settings().items() if k != "REDIS_TLS_CA_FILE"}
            problem = connection.check_reachable(Settings(untrusted))
            yield f"error: {problem}".replace(untrusted["REDIS_URL"], "rediss://127.0.0.1:6380/0")


def test_the_docs_quote_error_lines(tmp_path: Path, locked_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    messages = list(real_messages(locked_redis))
    quotes = doc_quotes()
    if tls_supported():  # no TLS redis-server here: the one quote that needs it is left out
        quotes = [(where, quote) for where, quote in quotes if "certificate verify failed" not in quote]
    assert len(quotes) >= 20  # the finder sees the docs' quotes
    unmatched = [f"{where}: {quote}" for where, quote in quotes if not any(matches(quote, m) for m in messages)]
    assert not unmatched, "quoted, but no message is:\n" + "\n".join(unmatched) + "\nreal:\n" + "\n".join(messages)
    unquoted = [m for m in messages if not any(matches(q, m) for _, q in quotes)]
    assert not unquoted, f"made here, quoted nowhere: {unquoted}"


def test_a_quote_matches_only_its_message() -> None:
    assert matches("error: a ... c", "error: a b c") and not matches("error: a ... c", "error: a b d")
    assert not matches("error: page_size: 50", "error: bad argument page_size: 50")

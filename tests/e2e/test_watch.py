"""Watching a list over time, end to end: real crawls of the sandbox on day 0 and day 1
(`SandboxConfig.day`, tmapi_spiders/sandbox/days.py plants the moves), `scrapy diff` in
its three formats, a history directory with an interrupted run, the answer store's
per-run reuse, alerts and their webhook (a real local HTTP server), and bad inputs.
Expected changes are computed from the day-0 feed and `days.kind_of`, not from the diff."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SANDBOX_TOKEN
from tests.crawl_helpers import crawl, read_jsonl, run_scrapy, scrapy_env
from tmapi_spiders.sandbox import days
from tmapi_spiders.watch import history as watch_history

SEEDS = [
    "https://cbu01.alicdn.com/img/ibank/watch-lamp.jpg",
    "https://cbu01.alicdn.com/img/ibank/watch-bottle.jpg",
    "https://cbu01.alicdn.com/img/ibank/watch-case.jpg",
]
QUICK = {"TMAPI_BACKOFF_BASE": "0.05", "AUTOTHROTTLE_ENABLED": "false"}
ARGS = {"max_pages": "2"}


def seeds(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.txt"
    path.write_text("\n".join(SEEDS) + "\n", encoding="utf-8")
    return path


def planted(day0: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Day 1's moves of the day-0 offers, by kind (days.kind_of), independent of the diff."""
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in days.KINDS}
    for record in day0:
        kind = days.kind_of(int(record["item_id"]), 1)
        if kind:
            by_kind[kind].append(record)
    return by_kind


def scrapy_command(args: list[str], base_url: str = "http://127.0.0.1:9", env: dict[str, str] | None = None):
    full = scrapy_env(base_url, SANDBOX_TOKEN)
    full.update(env or {})
    return run_scrapy(args, full)


def test_two_days_apart_give_exactly_the_planted_changes_in_jsonl_html_and_xlsx(
    tmp_path: Path, make_sandbox: Any
) -> None:
    seed_file = seeds(tmp_path)
    runs = []
    for day in (0, 1):
        sb = make_sandbox(day=day)
        result = crawl(
            tmp_path, sb.base_url, {"urls_file": str(seed_file), **ARGS}, {**QUICK, "TMAPI_CACHE": "false"},
            output=f"day{day}.jsonl", token=SANDBOX_TOKEN,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        runs.append(result.products)
    day0, day1 = runs
    assert len(day0) == len(day1) > 60
    total = len(day0)
    moves = planted(day0)
    assert all(moves[kind] for kind in days.KINDS), {k: len(v) for k, v in moves.items()}  # every kind is planted
    outs = [tmp_path / f"changes{ext}" for ext in (".jsonl", ".html", ".xlsx")]
    proc = scrapy_command(
        ["diff", str(tmp_path / "day0.jsonl"), str(tmp_path / "day1.jsonl"), "--alert", "price_drop>=10%,new_offer"]
        + [arg for out in outs for arg in ("-o", str(out))]
    )
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(outs[0])
    summary, records = lines[0], lines[1:]
    offers = [r for r in records if r["type"] == "offer"]
    changed_kinds = ("price_drop", "price_rise", "moq", "badge", "sales")
    replaced = len(moves["replaced"])
    assert summary["products"] == 3
    assert summary["offers"] == {
        "new": replaced,
        "gone": replaced,
        "changed": sum(len(moves[k]) for k in changed_kinds),
        "unchanged": total - replaced - sum(len(moves[k]) for k in changed_kinds),
    }
    assert summary["price_drops"] == len(moves["price_drop"]) and summary["price_rises"] == len(moves["price_rise"])
    by_id = {(r["item_id"], r["change"]): r for r in offers}
    for record in moves["price_drop"] + moves["price_rise"]:
        change = by_id[(str(record["item_id"]), "changed")]["changes"]
        percent = -days.DROP_PERCENT if record in moves["price_drop"] else days.RISE_PERCENT
        assert change["price"]["old_text"] == record["price"]
        assert change["price"]["new_text"] == days.scaled(record["price"], percent)
        assert abs(change["price"]["pct"] - percent) < 0.7  # whole cents, rounded down
        assert len(change.get("tiers", [])) == len(record["quantity_prices"])  # each tier moved
    for record in moves["moq"]:
        moq = by_id[(str(record["item_id"]), "changed")]["changes"]["moq"]
        assert (moq["old"], moq["new"]) == (record["quantity_begin"], record["quantity_begin"] + 1)
    for record in moves["badge"]:
        badge = by_id[(str(record["item_id"]), "changed")]["changes"]["badges"]["tp_member"]
        assert badge == {"old": record["shop_info"]["tp_member"], "new": not record["shop_info"]["tp_member"]}
    for record in moves["sales"]:
        sales = by_id[(str(record["item_id"]), "changed")]["changes"]["sales"]["sale_quantity"]
        assert sales["delta"] == days.SALES_STEP
    gone = {r["item_id"] for r in offers if r["change"] == "gone"}
    assert gone == {str(r["item_id"]) for r in moves["replaced"]}
    assert {r["item_id"] for r in offers if r["change"] == "new"} == {
        str(days.replacement(int(r["item_id"]), 1)) for r in moves["replaced"]
    }
    # the biggest drops first, then the rises
    assert [r["changes"]["price"]["pct"] < 0 for r in offers[: len(moves["price_drop"])]] == [True] * len(
        moves["price_drop"]
    )
    # alerts: exactly the planted drops and the new offers
    matched = {(m["rule"], m["item_id"]) for m in summary["alerts"]["matches"]}
    assert matched == {("price_drop>=10%", str(r["item_id"])) for r in moves["price_drop"]} | {
        ("new_offer", str(days.replacement(int(r["item_id"]), 1))) for r in moves["replaced"]
    }
    assert f"{replaced} new, {replaced} gone" in proc.stdout
    # the HTML and the workbook hold the same rows
    page = outs[1].read_text(encoding="utf-8")
    data = json.loads(page.split('id="changes-data">', 1)[1].split("</script>", 1)[0])
    assert [(r["item_id"], r["change"]) for r in data["rows"]] == [(r["item_id"], r["change"]) for r in offers]
    openpyxl = pytest.importorskip("openpyxl")
    sheet = openpyxl.load_workbook(outs[2], read_only=True)["Changes"]
    rows = list(sheet.iter_rows(values_only=True))
    assert [(r[3], r[0]) for r in rows[1:]] == [(r["item_id"], r["change"]) for r in offers]
    drops = [r for r in rows[1:] if r[0] == "changed" and r[8] is not None and r[8] < 0]
    assert len(drops) == len(moves["price_drop"])


def calls_of(sandbox: Any) -> int:
    return int(sandbox.stats()["total_calls"])


def history_run(tmp_path: Path, sandbox: Any, history: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    args = ["crawl", "image_search", "-a", f"urls_file={seeds(tmp_path)}", "-a", "max_pages=2"]
    args += ["-a", f"history={history}", "-a", "keep=3"]
    for key, value in {**QUICK, "CONCURRENT_REQUESTS": "2", **settings}.items():
        args += ["-s", f"{key}={value}"]
    return scrapy_command(args, sandbox.base_url)


def test_history_interrupted_run_is_no_baseline_and_its_resumption_pays_nothing_twice(
    tmp_path: Path, sandbox: Any
) -> None:
    history = tmp_path / "history"
    first = history_run(tmp_path, sandbox, history)
    assert first.returncode == 0, first.stderr[-2000:]
    full = calls_of(sandbox)
    assert full >= 5  # 3 images, up to 2 pages each
    offers = len(read_jsonl(next(history.glob("*Z.jsonl"))))
    sandbox.reset()
    cut = history_run(tmp_path, sandbox, history, TMAPI_MAX_CALLS="2")
    assert cut.returncode == 5 and "did not complete" in cut.stdout
    assert calls_of(sandbox) == 2
    sandbox.reset()
    resumed = history_run(tmp_path, sandbox, history)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert calls_of(sandbox) == full - 2  # the interrupted run's answers reused, nothing paid twice
    stamps = sorted(p.name[: -len(".run.json")] for p in history.glob("*.run.json"))
    assert len(stamps) == 3
    changes = read_jsonl(history / f"{stamps[2]}.changes.jsonl")
    assert changes[0]["old"] == str(history / f"{stamps[0]}.jsonl")  # the last complete run, not the cut one
    assert changes[0]["offers"] == {"new": 0, "gone": 0, "changed": 0, "unchanged": offers}
    summary = json.loads((history / f"{stamps[2]}.summary.json").read_text(encoding="utf-8"))
    assert summary["watch"]["baseline"] == stamps[0] and summary["watch"]["resumed"] == stamps[1]
    assert summary["totals"]["cached_answers"] == 2
    assert not (history / ".store").exists() or not any((history / ".store").iterdir())
    sandbox.reset()
    fourth = history_run(tmp_path, sandbox, history)
    assert fourth.returncode == 0
    assert calls_of(sandbox) == full  # a new run reuses nothing from the complete run before it
    left = sorted(p.name[: -len(".run.json")] for p in history.glob("*.run.json"))
    assert left == [*stamps[1:], left[-1]] and len(left) == 3  # keep=3: the oldest pruned
    assert not list(history.glob(f"{stamps[0]}.*"))


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.path, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook/secret-path"
    server.shutdown()
    server.server_close()


def test_alerts_fire_on_the_planted_drops_and_reach_the_webhook_a_dead_one_is_a_warning(
    tmp_path: Path, make_sandbox: Any, webhook: str
) -> None:
    history = tmp_path / "history"
    token = "tok-watch-5ecret"
    day0, day1 = make_sandbox(day=0, tokens=(token,)), make_sandbox(day=1, tokens=(token,))
    base = ["crawl", "image_search", "-a", f"urls_file={seeds(tmp_path)}", "-a", "max_pages=2"]
    base += ["-a", f"history={history}", "-a", "alert=price_drop>=10%"]
    env = {"TMAPI_API_TOKEN": token, "TMAPI_ALERT_WEBHOOK": webhook}
    first = scrapy_command(base, day0.base_url, env)
    assert first.returncode == 0, first.stderr[-2000:]
    second = scrapy_command(base, day1.base_url, env)
    assert second.returncode == 0, second.stderr[-2000:]
    day0_records = read_jsonl(history / f"{watch_history.runs(history)[0]}.jsonl")
    drops = {str(r["item_id"]) for r in planted(day0_records)["price_drop"]}
    assert len(Hook.received) == 1
    path, body = Hook.received[0]
    assert path == "/hook/secret-path" and token.encode() not in body
    payload = json.loads(body)
    assert {m["item_id"] for m in payload["summary"]["alerts"]["matches"]} == drops
    assert second.stdout.count("alert price_drop>=10%") == len(drops)
    # back to day 0, the drops rise again; the webhook is down: one warning line, exit 0, said in the summary
    env["TMAPI_ALERT_WEBHOOK"] = "http://127.0.0.1:9/hook"
    third = scrapy_command([*base[:-1], "alert=price_rise>=5%"], day0.base_url, env)
    assert third.returncode == 0, third.stderr[-2000:]
    warnings = [line for line in third.stderr.splitlines() if line.startswith("warning: alert webhook")]
    assert len(warnings) == 1 and "127.0.0.1:9" in warnings[0] and "/hook" not in warnings[0]
    # The runs' own order: two runs in one second are `<time>Z` and `<time>Z-2`, which sort the other way as names.
    last = history / f"{watch_history.runs(history)[-1]}.summary.json"
    assert json.loads(last.read_text(encoding="utf-8"))["watch"]["webhook"]["sent"] is False


def test_bad_inputs_are_one_line_with_the_right_exit_code(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    record = {"query_image_url": SEEDS[0], "item_id": 1, "price": "2.00", "rank": 1}
    good.write_text(json.dumps(record) + "\n", encoding="utf-8")
    foreign = tmp_path / "other.jsonl"
    foreign.write_text('{"url": "https://example.com", "title": "a page"}\n', encoding="utf-8")
    missing = scrapy_command(["diff", str(tmp_path / "nope.jsonl"), str(good)])
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope.jsonl'}: no such file"
    ]
    other = scrapy_command(["diff", str(good), str(foreign)])
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "not a products feed" in other.stderr

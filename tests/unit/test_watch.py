"""The watch's pure parts: comparing offers, alert rules, reading torn and foreign lines,
the order of changes, history bookkeeping (baseline, store reuse, pruning), the sandbox's
days, and the webhook against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tmapi_spiders.sandbox import days
from tmapi_spiders.watch import alerts, feed, history, output
from tmapi_spiders.watch import diff as d

Q = "https://cbu01.alicdn.com/img/ibank/q.jpg"


def rec(item_id: int, price: str = "10.00", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "query_image_url": Q,
        "item_id": item_id,
        "title": f"offer {item_id}",
        "price": price,
        "quantity_begin": 2,
        "quantity_prices": [{"begin_num": "2", "end_num": "9", "price": price}, {"begin_num": "10", "price": "9.00"}],
        "sale_info": {"sale_quantity": 100, "orders_count": 5},
        "item_repurchase_rate": "0.3",
        "rank": item_id,
        "shop_info": {"member_id": "b2b-1", "company_name": "A", "is_gold_supplier": True, "tp_member": True},
    }
    record.update(extra)
    return record


def run_of(*records: dict[str, Any] | str) -> feed.Run:
    return feed.read_lines((r if isinstance(r, str) else json.dumps(r)).encode() for r in records)


def test_compare_names_every_move_with_absolute_and_percent() -> None:
    old = feed.offer_of(rec(1))
    new_record = rec(1, "9.50", quantity_begin=3, rank=4)
    new_record["quantity_prices"][1]["price"] = "8.10"
    new_record["sale_info"]["sale_quantity"] = 130
    new_record["shop_info"]["tp_member"] = False
    new_record["shop_info"]["member_id"] = "b2b-2"
    moved = d.compare(old, feed.offer_of(new_record))
    assert moved["price"] == {
        "old": 10.0,
        "new": 9.5,
        "delta": -0.5,
        "pct": -5.0,
        "old_text": "10.00",
        "new_text": "9.50",
    }
    assert moved["price_range"] == {"old": [9.0, 10.0], "new": [8.1, 9.5]}
    assert [t["begin_num"] for t in moved["tiers"]] == ["2", "10"] and moved["tiers"][1]["pct"] == -10.0
    assert moved["moq"]["new"] == 3 and moved["rank"] == {"old": 1, "new": 4, "delta": 3, "pct": 300.0}
    assert moved["sales"]["sale_quantity"]["delta"] == 30
    assert moved["badges"] == {"tp_member": {"old": True, "new": False}}
    assert moved["supplier"]["new"]["member_id"] == "b2b-2"
    assert d.compare(old, feed.offer_of(rec(1))) == {}


def test_alert_rules_parse_and_match() -> None:
    rules = d.parse_rules("price_drop>=5%, price_rise>=1; new_offer,gone")
    assert [(r.kind, r.threshold, r.percent) for r in rules] == [
        ("price_drop", 5.0, True),
        ("price_rise", 1.0, False),
        ("new_offer", 0.0, False),
        ("gone", 0.0, False),
    ]
    drop = {"change": "changed", "changes": {"price": {"delta": -0.5, "pct": -5.0}}}
    assert rules[0].matches(drop) and not rules[1].matches(drop)
    assert not rules[0].matches({"change": "changed", "changes": {"price": {"delta": -0.4, "pct": -4.0}}})
    assert rules[2].matches({"change": "new"}) and rules[3].matches({"change": "gone"})
    for bad in ("price_drop", "price_drop>=x%", "cheaper"):
        with pytest.raises(d.DiffError, match="not a rule"):
            d.parse_rules(bad)


def test_torn_and_foreign_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    run = run_of(rec(1), '{"query_image_url": "ht', {"url": "x"}, {"query_image_url": Q, "stage": "search"}, "")
    assert (run.torn, run.foreign, run.failures, run.offers) == (1, 1, 1, 1)
    other = tmp_path / "other.jsonl"
    other.write_text('{"url": "x"}\n', encoding="utf-8")
    with pytest.raises(d.DiffError, match="not a products feed"):
        output.read_run(other)
    with pytest.raises(d.DiffError, match="no such file"):
        output.read_run(tmp_path / "missing.jsonl")
    a, b = run_of(rec(1)), run_of({**rec(1), "query_image_url": "https://x/other.jpg"})
    with pytest.raises(d.DiffError, match="no query image in common"):
        output.check_same_job(a, b, Path("a"), Path("b"))


def test_diff_orders_drops_then_rises_and_lists_alert_matches() -> None:
    old = run_of(rec(1), rec(2), rec(3), rec(4), rec(5))
    new = run_of(rec(1, "9.00"), rec(2, "5.00"), rec(3, "12.00"), rec(5, "10.00", rank=9), rec(6))
    summary, records = d.diff(old, new, d.parse_rules("price_drop>=20%,gone"))
    offers = [r for r in records if r["type"] == "offer"]
    assert [(r["item_id"], r["change"]) for r in offers] == [
        ("2", "changed"),
        ("1", "changed"),
        ("3", "changed"),
        ("5", "changed"),
        ("6", "new"),
        ("4", "gone"),
    ]
    assert summary["offers"] == {"new": 1, "gone": 1, "changed": 4, "unchanged": 0}
    assert (summary["price_drops"], summary["price_rises"]) == (2, 1)
    assert [(m["rule"], m["item_id"]) for m in summary["alerts"]["matches"]] == [
        ("price_drop>=20%", "2"),
        ("gone", "4"),
    ]
    product = records[0]
    assert product["type"] == "product" and product["offers_before"] == 5 and product["gone"] == 1
    assert "4 changed (2 price drops, 1 rises)" in d.summary_line(summary)


def test_input_columns_are_carried_to_the_changes() -> None:
    row = {"sku": "A-1", "target": 9.5}
    old = run_of(rec(1, input=row, input_row=2))
    new = run_of(rec(1, "8.00", input=row, input_row=2))
    _, records = d.diff(old, new)
    assert all(r["input"] == row and r["input_row"] == 2 for r in records)


def test_history_baseline_skips_unfinished_runs_and_store_reuse_follows_only_them(tmp_path: Path) -> None:
    def run_file(stamp: str, **state: Any) -> None:
        (tmp_path / f"{stamp}.run.json").write_text(json.dumps({"run": stamp, **state}), encoding="utf-8")

    run_file("2026-01-01T00-00-00Z", complete=True, exit_code=0, finish_reason="finished")
    run_file("2026-01-02T00-00-00Z", complete=False, exit_code=5, finish_reason="tmapi_max_calls", store="s2")
    run_file("2026-01-03T00-00-00Z", complete=True, exit_code=0, finish_reason="shutdown")  # Ctrl-C: not complete
    assert history.baseline(tmp_path, "2026-01-04T00-00-00Z") == "2026-01-01T00-00-00Z"
    (tmp_path / ".store" / "2026-01-03T00-00-00Z").mkdir(parents=True)
    plan = history.prepare(tmp_path, 0, [])
    assert (plan.resumes, plan.store_id) == ("2026-01-03T00-00-00Z", "2026-01-03T00-00-00Z")
    with pytest.raises(history.HistoryError, match="another run"):
        history.prepare(tmp_path, 0, [])
    history.release(plan)
    run_file("2026-01-05T00-00-00Z", complete=True, exit_code=0, finish_reason="finished")
    plan = history.prepare(tmp_path, 0, [])
    assert plan.resumes is None and plan.store_id == plan.stamp  # after a complete run: a new store
    history.start(plan)
    assert not (tmp_path / ".store" / "2026-01-03T00-00-00Z").exists()
    history.release(plan)


def test_history_options_and_prune(tmp_path: Path) -> None:
    args = {"history": str(tmp_path), "keep": "3", "alert": "gone", "language": "en"}
    directory, keep, rules = history.options(args)
    assert (directory, keep, [r.kind for r in rules], args) == (tmp_path, 3, ["gone"], {"language": "en"})
    for bad, message in (({"history": "x", "keep": "1"}, "2 or more"), ({"keep": "3"}, "needs -a history")):
        with pytest.raises(history.HistoryError, match=message):
            history.options(bad)
    stamps = [f"2026-01-0{n}T00-00-00Z" for n in range(1, 6)]
    for n, stamp in enumerate(stamps):
        done = n == 1
        state = {"complete": done, "exit_code": 0 if done else 5, "finish_reason": "finished" if done else "x"}
        (tmp_path / f"{stamp}.run.json").write_text(json.dumps(state), encoding="utf-8")
        (tmp_path / f"{stamp}.jsonl").write_text("", encoding="utf-8")
    plan = history.Plan(tmp_path, stamps[-1], stamps[-1], None, 2, [])
    assert history.prune(plan) == [stamps[0], stamps[2]]  # the newest 2, and the last complete run
    assert history.runs(tmp_path) == [stamps[1], stamps[3], stamps[4]]


def test_sandbox_days_are_deterministic_and_cumulative() -> None:
    item = {"item_id": 0, "price": "10.00", "quantity_prices": [{"price": "10.00"}], "shop_info": {"tp_member": True}}
    ids = range(100_000_000_000, 100_000_002_000)
    kinds = [days.kind_of(i, 1) for i in ids]
    assert kinds == [days.kind_of(i, 1) for i in ids]
    assert all(kinds.count(k) > 50 for k in days.KINDS) and kinds.count(None) > 1000
    drop = next(i for i, k in zip(ids, kinds, strict=True) if k == "price_drop")
    moved = days.apply(json.loads(json.dumps({**item, "item_id": drop})), 1)
    assert moved["price"] == "8.80" and moved["quantity_prices"][0]["price"] == "8.80"
    assert days.apply(json.loads(json.dumps({**item, "item_id": drop})), 0)["price"] == "10.00"
    assert days.scaled("0.99", 8) == "1.06" and days.scaled("", 8) == ""


class Hook(BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    status = 204

    def do_POST(self) -> None:
        Hook.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_url() -> Iterator[str]:
    Hook.bodies, Hook.status = [], 204
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/x/secret"
    server.shutdown()
    server.server_close()


def test_webhook_post_and_its_failures_are_one_line(hook_url: str) -> None:
    assert alerts.post(hook_url, {"n": 1}) is None and json.loads(Hook.bodies[0]) == {"n": 1}
    Hook.status = 500
    problem = alerts.post(hook_url, {"n": 2})
    assert problem is not None and "HTTP 500" in problem and "secret" not in problem
    assert "could not be reached" in (alerts.post("http://127.0.0.1:9/x", {}, timeout=2) or "")
    with pytest.raises(ValueError, match="http"):
        alerts.check_url("ftp://host/x")

"""A history directory for scheduled runs (`scrapy crawl image_search -a history=DIR`, docs/watch.md).

Each run writes `DIR/<UTC time>.jsonl` and a run file `<UTC time>.run.json`; a run is complete
(a baseline) when that file says exit code 0 and finish reason `finished`, and is then compared
with the last complete run before it. A run reuses the answer store (`DIR/.store/<id>`) only of
the run just before it, when that one did not complete. `DIR/.lock` allows one run at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.clock import utc_now
from tmapi_spiders.jobs.backends import shared
from tmapi_spiders.watch import diff as d
from tmapi_spiders.watch.alerts import check_url

STORE_DIR = ".store"
LOCK_FILE = ".lock"
RUN_SUFFIX = ".run.json"
CHANGES_SUFFIXES = (".changes.jsonl", ".changes.html")
# Ten years: an interrupted run's answers stay reusable by its resumption however late it comes.
STORE_TTL = 10 * 365 * 86400
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(?:-\d+)?$")
# Arguments of `scrapy crawl` that belong to the history, not to the spider.
ARGS = ("history", "keep", "alert")


class HistoryError(Exception):
    """A bad history argument or a history that cannot be used now: one line."""


@dataclass
class Plan:
    """What a history run will write and reuse, decided before anything is paid."""

    directory: Path
    stamp: str
    store_id: str
    resumes: str | None  # the unfinished run whose answers this one reuses
    keep: int
    rules: list[d.Rule]
    lock: Any = field(default=None, repr=False)
    webhook: str = ""  # TMAPI_ALERT_WEBHOOK: where the alerts go

    @property
    def feed(self) -> Path:
        return self.directory / f"{self.stamp}.jsonl"

    @property
    def store(self) -> Path:
        return self.directory / STORE_DIR / self.store_id

    def path(self, suffix: str, stamp: str | None = None) -> Path:
        return self.directory / f"{stamp or self.stamp}{suffix}"


def options(args: dict[str, Any]) -> tuple[Path | None, int, list[d.Rule]]:
    """(history directory, keep, alert rules) from the crawl's -a arguments (removed from
    `args`: the spider never sees them). HistoryError names a bad one."""
    raw = args.pop("history", None)
    keep_raw = args.pop("keep", None)
    alert_raw = args.pop("alert", None)
    if raw is None:
        given = [name for name, value in (("keep", keep_raw), ("alert", alert_raw)) if value is not None]
        if given:
            raise HistoryError(f"-a {given[0]}=... needs -a history=DIR (docs/watch.md)")
        return None, 0, []
    if not str(raw).strip():
        raise HistoryError("-a history= must name a directory")
    keep = 0
    if keep_raw is not None:
        try:
            keep = int(keep_raw)
        except ValueError:
            raise HistoryError(f"-a keep must be a whole number of runs, 2 or more (got {keep_raw!r})") from None
        if keep < 2:
            raise HistoryError(f"-a keep must be 2 or more: a run needs the one before it (got {keep})")
    try:
        rules = d.parse_rules(alert_raw)
    except d.DiffError as exc:
        raise HistoryError(str(exc)) from None
    return Path(str(raw)).expanduser(), keep, rules


def read_run(directory: Path, stamp: str) -> dict[str, Any]:
    """A run file's contents ({} when unreadable: a run that never said it completed)."""
    try:
        value = json.loads((directory / f"{stamp}{RUN_SUFFIX}").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def runs(directory: Path) -> list[str]:
    """The stamps of every run the directory holds, oldest first."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.endswith(RUN_SUFFIX):
                stamp = entry.name[: -len(RUN_SUFFIX)]
                if _STAMP.match(stamp):
                    found.append(stamp)
    return sorted(found, key=_order)


def _order(stamp: str) -> tuple[str, int]:
    base, _, n = stamp.partition("Z-")
    return (base.rstrip("Z"), int(n or 0))


def complete(directory: Path, stamp: str) -> bool:
    """Whether a run finished its list: its run file says exit 0 and finish reason `finished`."""
    run = read_run(directory, stamp)
    return bool(run.get("complete")) and run.get("exit_code") == 0 and run.get("finish_reason") == "finished"


def baseline(directory: Path, before: str) -> str | None:
    """The last complete run before `before` (None: none yet)."""
    earlier = [s for s in runs(directory) if _order(s) < _order(before) and complete(directory, s)]
    return earlier[-1] if earlier else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def prepare(directory: Path, keep: int, rules: list[d.Rule]) -> Plan:
    """Lock the history, choose this run's time stamp and answer store. Nothing is written
    but the lock and the directory; `start` writes the run file once every check has passed."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / LOCK_FILE, "a+b")  # held until the run ends (Plan.release)
    except OSError as exc:
        raise HistoryError(f"history {directory}: cannot be written ({exc.strerror or exc})") from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise HistoryError(f"history {directory}: another run of this history is in progress") from None
    existing = runs(directory)
    stamp = utc_now().replace(":", "-")
    if existing and _order(stamp) <= _order(existing[-1]):
        # the same second as the last run (or a clock set back): after it, in name order too
        base, n = _order(existing[-1])
        stamp = f"{base}Z-{n + 1}"
    resumes = None
    store_id = stamp
    if existing and not complete(directory, existing[-1]):
        last = existing[-1]
        last_store = str(read_run(directory, last).get("store") or last)
        if (directory / STORE_DIR / last_store).is_dir():
            resumes, store_id = last, last_store
    return Plan(directory, stamp, store_id, resumes, keep, rules, lock)


def plan_for(settings: BaseSettings, args: dict[str, Any]) -> Plan | None:
    """`-a history=DIR` of `scrapy crawl`: check and lock it, and point the feed and the answer store
    at it (before the crawl's other checks, which then check those). None without it."""
    directory, keep, rules = options(args)
    if directory is None:
        return None
    if shared(settings):
        raise HistoryError("-a history=DIR runs in one process: not with REDIS_URL (a distributed worker)")
    if settings.getdict("FEEDS"):
        raise HistoryError("-a history=DIR writes its own feed (DIR/<UTC time>.jsonl): drop -o/-O")
    webhook = registry.read(settings, "TMAPI_ALERT_WEBHOOK").strip()
    if webhook:
        check_url(webhook)
    plan = prepare(directory, keep, rules)
    plan.webhook = webhook
    for name, value in settings_for(plan).items():
        settings.set(name, value, priority="cmdline")
    return plan


def start(plan: Plan) -> None:
    """Write the run file (the run exists from now on) and drop every store but this run's:
    only the unfinished run just before it could be reused, and only by this run. HistoryError
    when the history cannot be written."""
    try:
        _write_json(
            plan.path(RUN_SUFFIX),
            {
                "run": plan.stamp,
                "started_at": utc_now(),
                "store": plan.store_id,
                "resumes": plan.resumes,
                "complete": False,
            },
        )
        stores = plan.directory / STORE_DIR
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(stores):
                if entry.name != plan.store_id and entry.is_dir():
                    shutil.rmtree(entry.path, ignore_errors=True)
    except OSError as exc:
        raise HistoryError(f"history {plan.directory}: cannot be written ({exc.strerror or exc})") from None


def settings_for(plan: Plan) -> dict[str, Any]:
    """The crawl settings a history run sets: its feed, and its own answer store."""
    return {
        "FEEDS": {str(plan.feed): {"format": "jsonlines", "overwrite": True}},
        "TMAPI_CACHE": "true",
        "TMAPI_CACHE_DIR": str(plan.store),
        "TMAPI_CACHE_TTL": STORE_TTL,
    }


def release(plan: Plan) -> None:
    if plan.lock is not None:
        with contextlib.suppress(OSError):
            plan.lock.close()
        plan.lock = None


def finish(plan: Plan, exit_code: int, finish_reason: str | None) -> bool:
    """Record how the run ended; a complete run deletes its answer store. Returns completeness."""
    done = exit_code == 0 and finish_reason == "finished"
    run = read_run(plan.directory, plan.stamp)
    run.update(finished_at=utc_now(), exit_code=exit_code, finish_reason=finish_reason, complete=done)
    _write_json(plan.path(RUN_SUFFIX), run)
    if done:
        shutil.rmtree(plan.store, ignore_errors=True)
    return done


def prune(plan: Plan) -> list[str]:
    """Keep the newest `keep` runs (and always the last complete one, the next baseline);
    delete the other runs' files. Returns the stamps removed."""
    if not plan.keep:
        return []
    stamps = runs(plan.directory)
    keep = set(stamps[-plan.keep :])
    last_complete = [s for s in stamps if complete(plan.directory, s)]
    if last_complete:
        keep.add(last_complete[-1])
    removed = []
    for stamp in stamps:
        if stamp in keep:
            continue
        for path in plan.directory.glob(f"{glob.escape(stamp)}.*"):
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(stamp)
    return removed


def conclude(plan: Plan, exit_code: int, finish_reason: str | None) -> int:
    """After the crawl: record how it ended; for a complete run with a baseline, write the
    changes (`.changes.jsonl` and `.html`), add them to the run summary and send the alerts
    on; prune old runs. Shows what it did (errors and warnings on stderr) and returns the exit
    code: a changes file that cannot be written is exit 7 (tmapi_write_failed); a baseline that
    cannot be read, a warning."""
    code, lines = _concluded(plan, exit_code, finish_reason)
    for line in lines:
        print(line, file=sys.stderr if line.startswith(("error:", "warning:")) else sys.stdout, flush=True)
    return code


def _concluded(plan: Plan, exit_code: int, finish_reason: str | None) -> tuple[int, list[str]]:
    # Imported here: `scrapy crawl` imports this module at start; only a run with `-a history` gets here.
    from tmapi_spiders.jobs import outcome
    from tmapi_spiders.watch import alerts, output
    from tmapi_spiders.watch.compute import changes_of

    lines: list[str] = []
    try:
        done = finish(plan, exit_code, finish_reason)
    except OSError as exc:
        lines.append(
            f"error: history {plan.directory}: cannot record how run {plan.stamp} ended ({exc.strerror or exc})"
        )
        return exit_code or outcome.WRITE_FAILED, lines
    if not done:
        lines.append(
            f"history: run {plan.stamp} did not complete (exit code {exit_code}, finish reason {finish_reason}):"
            " it is no baseline and no changes are written; the next run reuses its answers"
        )
        return exit_code, lines
    base = baseline(plan.directory, plan.stamp)
    watch: dict[str, Any] = {
        "history": str(plan.directory),
        "run": plan.stamp,
        "baseline": base,
        "resumed": plan.resumes,
    }
    if base is None:
        lines.append(f"history: run {plan.stamp} is the first complete run of {plan.directory}: nothing to compare yet")
    else:
        try:
            summary, records = changes_of(plan.path(".jsonl", base), plan.feed, plan.rules)
        except d.DiffError as exc:
            lines.append(f"warning: history: no changes against {base}: {exc}")
            summary = None
        if summary is not None:
            try:
                for suffix in CHANGES_SUFFIXES:
                    output.write(plan.path(suffix), summary, records, title=f"What changed since {base}")
            except OSError as exc:
                lines.append(f"error: history: cannot write the changes of {plan.stamp} ({exc.strerror or exc})")
                return outcome.WRITE_FAILED, lines
            lines.append(f"changes since {base}: {d.summary_line(summary)}")
            lines.append(f"changes written to {plan.path(CHANGES_SUFFIXES[0])} and {plan.path(CHANGES_SUFFIXES[1])}")
            matches = summary["alerts"]["matches"]
            lines += [f"alert {m['rule']}: {m['query_image_url']} offer {m['item_id']} {m['change']}" for m in matches]
            watch["changes"] = {k: summary[k] for k in ("products", "offers", "price_drops", "price_rises", "skipped")}
            watch["alerts"] = summary["alerts"]
            if plan.webhook and matches:
                payload = {"history": str(plan.directory), "run": plan.stamp, "baseline": base, "summary": summary}
                problem = alerts.post(plan.webhook, payload)
                watch["webhook"] = {"sent": problem is None, "to": alerts.where(plan.webhook), "error": problem}
                if problem:
                    lines.append(f"warning: alert webhook not sent: {problem}")
                else:
                    lines.append(f"alerts sent to {alerts.where(plan.webhook)}")
    try:
        _add_to_summary(plan.path(".summary.json"), watch)
    except OSError as exc:
        lines.append(f"warning: history: the run summary could not be given its changes ({exc.strerror or exc})")
    removed = prune(plan)
    if removed:
        lines.append(f"history: pruned {len(removed)} old run(s) (-a keep={plan.keep})")
    return exit_code, lines


def _add_to_summary(path: Path, watch: dict[str, Any]) -> None:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return
    if isinstance(summary, dict):
        summary["watch"] = watch
        _write_json(path, summary)

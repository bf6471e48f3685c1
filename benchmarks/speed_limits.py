"""speed.py's rows for the plan's limits: Redis commands per page with TMAPI_MAX_CONCURRENCY
(1 to 20 workers on one job), and TMAPI_MAX_QPS against a sandbox that refuses the 11th
call in a second (benchmarks/speed.py says what each row means).

One Redis row alone, every command a page included, over a longer run than speed.py's (its
20-worker row runs 32 s, about 300 pages in the measured window):

    .venv/bin/python benchmarks/speed_limits.py --workers 20 --limit 8 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from speed_cpu import NO_THROTTLE
from throughput import (
    REPO,
    Sandbox,
    crawl_args,
    crawl_env,
    images,
    run,
    seed_job,
    steady_rate,
    worker_settings,
    write_seeds,
)

from tests.redis_server import RedisServer
from tmapi_spiders.api import contract

# Redis commands each of the limiter's script calls runs, EVALSHA included (limits.py): a slot
# taken (TIME, HMGET, ZCOUNT, ZADD), refused (TIME, HMGET, ZCOUNT, then the BLPOP it waits in),
# given back (ZREM, RPUSH, EXPIRE or LTRIM at times). A hand-over inside a worker runs none.
LIMITER_COMMANDS = {"acquired": 5, "refused": 5, "released": 4}


def commands(client: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()}


def redis_run(
    tmp: Path, sandbox: Sandbox, redis_url: str, job: str, workers: int, settings: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """`workers` worker processes on one job; commands and pages counted over the middle of the run."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    seeds = write_seeds(tmp, job, images(job, 400, 160))
    env = seed_job(sandbox, redis_url, job, seeds)
    common = worker_settings(redis_url, job, {"CLOSESPIDER_TIMEOUT": seconds, **settings})
    (tmp / job).mkdir(exist_ok=True)
    logs = [open(tmp / job / f"w{i}.log", "w", encoding="utf-8") for i in range(workers)]
    procs = [
        subprocess.Popen(
            crawl_args(
                None,
                tmp / job / f"products-w{i}.jsonl",
                {**common, "TMAPI_WORKER_ID": f"w{i}", "TMAPI_STATS_FILE": str(tmp / job / f"w{i}.stats.json")},
            ),
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=logs[i],
        )
        for i in range(workers)
    ]
    # Samples (time, commands so far, pages so far) every second while the workers run; the
    # window is the middle of the stretch in which pages were made (start-up and drain left out).
    usages: dict[int, Any] = {}

    def reap(proc: subprocess.Popen[bytes]) -> None:
        _, _status, usages[proc.pid] = os.wait4(proc.pid, 0)  # the worker's own CPU

    reapers = [threading.Thread(target=reap, args=(proc,)) for proc in procs]
    for reaper in reapers:
        reaper.start()
    samples: list[tuple[float, dict[str, int], int]] = []
    while any(reaper.is_alive() for reaper in reapers):
        pages_so_far = sandbox.get("/_sandbox/stats")["statuses"].get("200", 0)
        samples.append((time.monotonic(), commands(client), pages_so_far))
        time.sleep(1.0)
    making = [x for x in samples if 0 < x[2] < samples[-1][2]]
    if len(making) < 4:
        raise RuntimeError(f"{job}: too few samples with pages being made ({len(making)})")
    t0, t1 = making[0][0], making[-1][0]
    inside = [x for x in making if t0 + 0.3 * (t1 - t0) <= x[0] <= t0 + 0.9 * (t1 - t0)]
    (_, c0, p0), (_, c1, p1) = inside[0], inside[-1]
    pages = max(1, p1 - p0)
    per = {k: (c1.get(k, 0) - c0.get(k, 0)) / pages for k in c1}
    cpu = sum(usage.ru_utime + usage.ru_stime for usage in usages.values())
    for log in logs:
        log.close()
    calls = sandbox.calls()
    refused = sum(1 for c in calls if c["status"] == contract.CONCURRENCY_LIMIT)
    ok = max(1, sum(1 for c in calls if c["status"] == 200))
    # The limiter's own share, from its counters (exact script calls) and what each script runs; the
    # workers' final stats are in their TMAPI_STATS_FILE (the log has Scrapy's stats dump at DEBUG only).
    counts: dict[str, int] = {}
    for i in range(workers):
        stats = json.loads((tmp / job / f"w{i}.stats.json").read_text(encoding="utf-8"))
        for key, value in stats.items():
            if key.startswith("tmapi/limit/redis/"):
                name = key.removeprefix("tmapi/limit/redis/")
                counts[name] = counts.get(name, 0) + int(value)
    limiter = sum(counts.get(k, 0) * n for k, n in LIMITER_COMMANDS.items()) / ok
    return {
        "workers": workers,
        "limiter_commands_per_page": round(limiter, 1),
        "limiter_counts": counts,
        "pages_in_window": pages,
        "commands_per_page": round(sum(per.values()), 1),
        "top": {k: round(v, 1) for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:6]},
        "per_command": {k: round(v, 2) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v},
        "pages_per_s": round(steady_rate(calls), 2),
        "share_503": round(refused / max(1, len(calls)), 4),
        "worker_cpu_ms_per_page": round(cpu * 1000 / ok, 2),
    }


def redis_rows(tmp: Path, redis_url: str, quick: bool) -> list[dict[str, Any]]:
    rows = []
    cases = [
        (1, {"TMAPI_MAX_CONCURRENCY": 8}),
        (3, {"TMAPI_MAX_CONCURRENCY": 8}),
        (20, {"TMAPI_MAX_CONCURRENCY": 8}),
        (3, {"CONCURRENT_REQUESTS": 2}),  # no limiter (6 in flight): the scheduler's own traffic, for comparison
        (20, {"CONCURRENT_REQUESTS": 1, "CONCURRENT_REQUESTS_PER_DOMAIN": 1}),  # 20 in flight: 503s, retried
    ]
    with Sandbox("--latency", "0.5", "--max-concurrency", "8") as sandbox:
        for n, (workers, settings) in enumerate(cases):
            seconds = (12 if quick else 18) + (14 if workers > 10 else 0)
            row = redis_run(tmp, sandbox, redis_url, f"cmd{n}", workers, {**NO_THROTTLE, **settings}, seconds)
            row["limiter"] = "TMAPI_MAX_CONCURRENCY" in settings
            rows.append(row)
            print(f"  redis: {row}", file=sys.stderr, flush=True)
    return rows


def qps_row(tmp: Path, quick: bool) -> dict[str, Any]:
    seconds = 10 if quick else 20
    seeds = write_seeds(tmp, "qps", images("qps", 40, 400))
    with Sandbox("--latency", "0.05", "--max-qps", "10") as sandbox:
        sandbox.reset()
        proc = run(
            crawl_args(seeds, tmp / "qps.jsonl", {**NO_THROTTLE, "TMAPI_MAX_QPS": 10, "CLOSESPIDER_TIMEOUT": seconds}),
            crawl_env(sandbox.url),
            tmp / "qps.log",
        )
        calls = sandbox.calls()
    refused = sum(1 for c in calls if c["status"] == contract.CONCURRENCY_LIMIT)
    rate = steady_rate(calls, None)
    return {
        "rate": round(rate, 2),
        "share_of_plan": round(rate / 10, 4),
        "share_503": round(refused / max(1, len(calls)), 4),
        "calls": len(calls),
        "exit": proc.returncode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="One Redis row of speed.py, as JSON")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--limit", type=int, default=8, help="TMAPI_MAX_CONCURRENCY against a plan of 8")
    parser.add_argument("--seconds", type=float, default=60, help="CLOSESPIDER_TIMEOUT of each worker")
    opts = parser.parse_args()
    settings: dict[str, Any] = {**NO_THROTTLE, "TMAPI_MAX_CONCURRENCY": opts.limit}
    with (
        tempfile.TemporaryDirectory() as folder,
        RedisServer() as server,
        Sandbox("--latency", "0.5", "--max-concurrency", "8") as sandbox,
    ):
        row = redis_run(Path(folder), sandbox, server.url, "row", opts.workers, settings, opts.seconds)
    print(json.dumps(row))


if __name__ == "__main__":
    main()

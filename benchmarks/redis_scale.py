"""20 workers on one job, one Redis, one sandbox: throughput, Redis cost and fairness.

For each scenario this starts a private redis-server and one sandbox (latency 0.3 s), seeds
a job of --images images of 100 offers (5 pages each) through `Job.push_encoded`, starts W real
`scrapy crawl image_search` workers on it, and samples the job's counters every 0.5 s:

- pages/s: the job's `pages` counter between 20 % and 80 % of the pages (steady state),
  against the possible rate (calls in flight allowed / latency: the workers' CONCURRENT_REQUESTS
  summed without an API limit, the plan's 8 with one);
- Redis commands per page (INFO commandstats over the same window; the commands our Lua
  scripts run inside Redis count too) and EVALSHA calls per page (one round trip each);
- Redis CPU per page (INFO cpu, user + sys) over the same window;
- the spread of work: pages per worker (min / median / max, from each worker's final stats);
- a new worker's start: one more worker started at 25 % of the job; seconds until it is a
  live worker of the job (Python and Scrapy start-up), and until it holds its first lease.

Bounded: every scenario stops by itself (the job drains; workers are killed after --timeout).
The machine's cores are shared by the workers, the sandbox and Redis: with 2 cores the
workers' own CPU, not Redis, is the limit without an API limit. Usage:

    .venv/bin/python benchmarks/redis_scale.py [--images 600] [--scenarios 20:0,20:8,5:0]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.crawl_helpers import REPO, scrapy_env
from tests.redis_server import RedisServer
from tests.seeds import push_json, seed_json
from tmapi_spiders.api.contract import SearchQuery
from tmapi_spiders.distributed.job import Job
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.sandbox import SandboxConfig, SandboxThread

LATENCY = 0.3
PAGES_PER_IMAGE = 5
CONCURRENT_REQUESTS = 16  # the project's default, per worker
LATE_AT = 0.25  # share of the pages done when one more worker is started


@dataclass
class Result:
    workers: int
    plan_limit: int
    pages: int
    rate: float
    possible: float
    commands_per_page: float
    evalsha_per_page: float
    cpu_ms_per_page: float
    spread: tuple[int, int, int]
    joined_after: float
    first_lease_after: float
    late_pages: int
    codes: list[int]
    top: list[tuple[str, float]]


def redis_counters(client: Any) -> tuple[dict[str, int], float]:
    stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    cpu = client.info("cpu")
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def start_worker(tmp: Path, redis_url: str, base_url: str, name: str, limit: int) -> subprocess.Popen[str]:
    settings = {
        "REDIS_URL": redis_url,
        "TMAPI_JOB": "scale",
        "TMAPI_WORKER_ID": name,
        "TMAPI_REDIS_POLL_INTERVAL": "0.2",
        "MAX_IDLE_TIME_BEFORE_CLOSE": "2",
        "TMAPI_OUTPUT_DIR": str(tmp / "output"),
        "AUTOTHROTTLE_ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }
    if limit:
        settings["TMAPI_MAX_CONCURRENCY"] = str(limit)
    args = [sys.executable, "-m", "scrapy", "crawl", "image_search", "-o", str(tmp / "out" / f"{name}.jsonl")]
    for key, value in settings.items():
        args += ["-s", f"{key}={value}"]
    log = open(tmp / f"{name}.log", "w", encoding="utf-8")
    return subprocess.Popen(args, cwd=REPO, env=scrapy_env(base_url), text=True, stdout=log, stderr=subprocess.STDOUT)


def run(workers: int, limit: int, images: int, timeout: float) -> Result:
    config = SandboxConfig(latency=LATENCY, max_concurrency=limit, seed=5)
    with RedisServer() as server, SandboxThread(config) as sandbox, tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        client = server.client()
        job = Job(client, JobKeys.for_job("scale"))
        urls = [f"https://cbu01.alicdn.com/img/scale/{i}/total-{20 * PAGES_PER_IMAGE}.jpg" for i in range(images)]
        push_json(job, (seed_json(url, SearchQuery(), 0) for url in urls))
        total = images * PAGES_PER_IMAGE
        procs = [start_worker(tmp, server.url, sandbox.base_url, f"w{i:02d}", limit) for i in range(workers)]
        samples: list[tuple[float, int, dict[str, int], float]] = []
        late: subprocess.Popen[str] | None = None
        late_started = joined = first_lease = float("nan")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pages = int(client.hget(job.keys.stats, "pages") or 0)
            calls, cpu = redis_counters(client)
            now = time.monotonic()
            samples.append((now, pages, calls, cpu))
            if late is None and pages >= LATE_AT * total:
                late_started = time.monotonic()
                late = start_worker(tmp, server.url, sandbox.base_url, "late", limit)
            if late is not None and joined != joined:  # NaN: not yet
                if client.zscore(job.keys.workers, "late") is not None:
                    joined = time.monotonic() - late_started
            if late is not None and first_lease != first_lease:
                if any('"w":"late"' in lease for lease in client.hvals(job.keys.leases)):
                    first_lease = time.monotonic() - late_started
            if all(p.poll() is not None for p in procs) and (late is None or late.poll() is not None):
                break
            time.sleep(0.05 if late is not None and first_lease != first_lease else 0.5)
        for proc in [*procs, *([late] if late else [])]:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        codes = [p.returncode for p in procs] + ([late.returncode] if late else [])
        per_worker, late_pages = [], 0
        for log in sorted(tmp.glob("*.log")):
            found = re.findall(r"'tmapi/pages': (\d+)", log.read_text(encoding="utf-8"))
            if log.stem == "late":
                late_pages = int(found[-1]) if found else 0
            else:
                per_worker.append(int(found[-1]) if found else 0)
    lo = next(s for s in samples if s[1] >= 0.2 * total)
    hi = next((s for s in samples if s[1] >= 0.8 * total), samples[-1])
    pages = max(1, hi[1] - lo[1])
    commands = {name: hi[2].get(name, 0) - lo[2].get(name, 0) for name in hi[2]}
    top = sorted(((n, c / pages) for n, c in commands.items() if c), key=lambda x: -x[1])[:6]
    possible = (limit if limit else workers * CONCURRENT_REQUESTS) / LATENCY
    return Result(
        workers=workers,
        plan_limit=limit,
        pages=int(samples[-1][1]),
        rate=pages / max(1e-9, hi[0] - lo[0]),
        possible=possible,
        commands_per_page=sum(commands.values()) / pages,
        evalsha_per_page=commands.get("evalsha", 0) / pages,
        cpu_ms_per_page=1000 * (hi[3] - lo[3]) / pages,
        spread=(min(per_worker), int(statistics.median(per_worker)), max(per_worker)),
        joined_after=joined,
        first_lease_after=first_lease,
        late_pages=late_pages,
        codes=codes,
        top=top,
    )


def seconds(value: float) -> str:
    """A duration for the table; "–" when it never happened (the job drained first)."""
    return "–" if value != value else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=600, help="images of 5 pages each")
    parser.add_argument("--scenarios", default="20:0,20:8,5:0", help="workers:plan limit, comma-separated")
    parser.add_argument("--timeout", type=float, default=400)
    opts = parser.parse_args()
    results = []
    for scenario in opts.scenarios.split(","):
        workers, limit = (int(x) for x in scenario.split(":"))
        print(f"running {workers} workers, plan limit {limit or 'none'} ...", file=sys.stderr, flush=True)
        results.append(run(workers, limit, opts.images, opts.timeout))
    print(f"{opts.images} images x {PAGES_PER_IMAGE} pages, sandbox latency {LATENCY} s, {os.cpu_count()} cores\n")
    print(
        "| workers | API limit | pages | pages/s | possible | Redis commands / page | EVALSHA / page"
        " | Redis CPU / page | pages per worker min / median / max"
        " | new worker: live / first lease / pages | exit codes |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |")
    for r in results:
        codes = ",".join(sorted({str(c) for c in r.codes}))
        print(
            f"| {r.workers} (+1 late) | {r.plan_limit or 'none'} | {r.pages:,} | {r.rate:.1f} | {r.possible:.0f}"
            f" | {r.commands_per_page:.1f} | {r.evalsha_per_page:.1f} | {r.cpu_ms_per_page:.2f} ms"
            f" | {r.spread[0]} / {r.spread[1]} / {r.spread[2]}"
            f" | {seconds(r.joined_after)} / {seconds(r.first_lease_after)} / {r.late_pages}"
            f" | {codes} |"
        )
    print("\nRedis commands per page, the most frequent (inside scripts included):")
    for r in results:
        shown = ", ".join(f"{name} {per:.2f}" for name, per in r.top)
        print(f"- {r.workers} workers, limit {r.plan_limit or 'none'}: {shown}")


if __name__ == "__main__":
    main()

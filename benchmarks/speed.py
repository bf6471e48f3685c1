"""Issue 17's table: honest speed, every row a ratio or rate measured side by side in one run.

    .venv/bin/python benchmarks/speed.py            # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/speed.py --quick    # about 3.5 minutes: one CPU round, shorter runs
    .venv/bin/python benchmarks/speed.py --only redis,qps
    git archive 473ff35 | tar -x -C /tmp/old   # the code before issue 13's architecture work
    .venv/bin/python benchmarks/speed.py --only cpu --against /tmp/old

Rows (each a real `scrapy crawl image_search` subprocess; the sandbox runs as its own
process, Redis is a private redis-server):

- cpu: CPU per page at zero latency against benchmarks/floor_client.py (aiohttp, orjson both
  ways, gzip answers: what the crawl does, with nothing else). Rounds alternate floor and
  crawl, one page and many, so the machine's load weighs on both sides; the median round.
- against (--against DIR): the crawl of another checkout of the project (its own scrapy.cfg,
  settings and tmapi_spiders, this venv) in the same rounds, same sandbox and pages: CPU per
  page of this crawl over that one's (issue 13: no more than 1.10).
- latency: CPU a second while every call waits on the API (one call that takes 6 s, timed
  inside the crawl by tests/probes.py's WaitCpuProbe: process CPU over wall time), and CPU
  per page of a latency-bound crawl (0.5 s a call, 16 at once) against the zero-latency one,
  in the same rounds as the cpu row.
- redis: Redis commands per page (INFO commandstats, every command a script runs included)
  with TMAPI_MAX_CONCURRENCY=8 against a plan of 8, for 1, 3 and 20 workers, and 3 workers
  without the limiter; counted over the middle of the run (start-up and drain left out).
- qps: TMAPI_MAX_QPS=10 against a sandbox that answers 503 to the 11th call in any second:
  the steady rate as a share of 10, and the share of 503s.
- startup: seconds from starting `scrapy crawl` on one image to the sandbox's record of the
  first call (the median of the rounds).

The table is printed and written to benchmarks/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import (
    PY,
    REPO,
    Sandbox,
    crawl_args,
    crawl_env,
    floor,
    images,
    page_list,
    run,
    seed_job,
    steady_rate,
    write_seeds,
)

from tests.probes import with_probe
from tests.redis_server import RedisServer
from tmapi_spiders import contract

RESULTS = REPO / "benchmarks" / "results" / "speed.json"
SCENARIOS = ("cpu", "redis", "qps", "startup")
# The answer store (TMAPI_CACHE=auto: on in one process) would answer every round after the
# first from disk: the next round's calls never reach the sandbox (crawl_idle then has no
# wait to measure, startup no first call), and its CPU is not the crawl's over HTTP.
NO_THROTTLE = {"AUTOTHROTTLE_ENABLED": False, "TMAPI_CACHE": False}
# Redis commands each of the limiter's script calls runs, EVALSHA included (limits.py): a slot
# taken (TIME, HMGET, ZCOUNT, ZADD), refused (TIME, HMGET, ZCOUNT, then the BLPOP it waits in),
# given back (ZREM, RPUSH, EXPIRE or LTRIM at times). A hand-over inside a worker runs none.
LIMITER_COMMANDS = {"acquired": 5, "refused": 5, "released": 4}


def cpu_and_latency(tmp: Path, rounds: int, images_count: int, quick: bool, against: Path | None) -> dict[str, Any]:
    """Floor and crawl at zero latency, a latency-bound crawl, a crawl that only waits: in rounds;
    with `against`, that checkout's crawl at zero latency too (one page and many)."""
    total = 400  # 20 pages of 20 items an image
    many = images("cpu", images_count, total)
    n = len(many) * 20
    one = images("cpu-one", 1, 20)
    lat_images = images("lat", 8 if quick else 16, total)
    lat_n = len(lat_images) * 20
    out: list[dict[str, float]] = []
    old_settings = decoding_before_the_envelope(against) if against is not None else {}
    with Sandbox() as fast, Sandbox("--latency", "0.5") as slow, Sandbox("--latency", "6") as idle:
        for name, urls, t in (("one", one, 20), ("many", many, total)):
            (tmp / f"{name}.json").write_text(json.dumps(page_list(urls, t)), encoding="utf-8")
            write_seeds(tmp, f"cpu-{name}", urls)
            run(floor(fast.url, tmp / f"{name}.json", tmp / "warm.jsonl"), crawl_env(fast.url))  # warm the sandbox
        write_seeds(tmp, "lat", lat_images)
        for r in range(rounds):
            got: dict[str, Any] = {}
            order = ["floor_one", "floor_many", "crawl_one", "crawl_many", "crawl_latency", "crawl_idle"]
            if against is not None:
                order[2:2] = ["old_one", "old_many"]
            if r % 2:
                order.reverse()
            for what in order:
                if what.startswith("floor"):
                    size = what.split("_")[1]
                    got[what] = run(floor(fast.url, tmp / f"{size}.json", tmp / f"{what}.jsonl"), crawl_env(fast.url))
                    continue
                if what.startswith("old"):
                    assert against is not None
                    fast.reset()
                    seeds_file = tmp / f"cpu-{what.split('_')[1]}.txt"
                    args = crawl_args(seeds_file, tmp / f"{what}.jsonl", {**NO_THROTTLE, **old_settings})
                    got[what] = run(args, crawl_env(fast.url), tmp / f"{what}.log", cwd=against)
                    if got[what].returncode:
                        raise RuntimeError(f"{what} ({against}) failed: {got[what].output[-1500:]}")
                    continue
                sandbox, seeds = {
                    "crawl_one": (fast, "cpu-one"),
                    "crawl_many": (fast, "cpu-many"),
                    "crawl_latency": (slow, "lat"),
                    "crawl_idle": (idle, "cpu-one"),
                }[what]
                sandbox.reset()
                settings = NO_THROTTLE
                if what == "crawl_idle":  # CPU spent inside the crawl while its one call is out
                    settings = {**NO_THROTTLE, "EXTENSIONS": with_probe("tests.probes.WaitCpuProbe")}
                args = crawl_args(tmp / f"{seeds}.txt", tmp / f"{what}.jsonl", settings)
                got[what] = run(args, crawl_env(sandbox.url), tmp / f"{what}.log")
                if got[what].returncode:
                    raise RuntimeError(f"{what} failed: {got[what].output[-1500:]}")
            crawl_page = (got["crawl_many"].cpu - got["crawl_one"].cpu) / (n - 1)
            floor_page = (got["floor_many"].cpu - got["floor_one"].cpu) / (n - 1)
            latency_page = (got["crawl_latency"].cpu - got["crawl_one"].cpu) / (lat_n - 1)
            wait_cpu = re.search(r"'probe/wait_cpu_us': (\d+)", got["crawl_idle"].output)
            wait_wall = re.search(r"'probe/wait_us': (\d+)", got["crawl_idle"].output)
            if not (wait_cpu and wait_wall):
                raise RuntimeError("crawl_idle: no probe/wait_* stats in its log")
            idle_per_s = int(wait_cpu.group(1)) / int(wait_wall.group(1))
            vs_old: dict[str, float] = {}
            if against is not None:
                written = {w: len((tmp / f"{w}.jsonl").read_bytes().splitlines()) for w in ("old_many", "crawl_many")}
                if written["old_many"] != written["crawl_many"]:
                    raise RuntimeError(f"the two crawls wrote different numbers of records: {written}")
                old_page = (got["old_many"].cpu - got["old_one"].cpu) / (n - 1)
                vs_old = {"old_ms_per_page": old_page * 1000, "vs_old": crawl_page / old_page}
            out.append(
                {
                    "crawl_ms_per_page": crawl_page * 1000,
                    "floor_ms_per_page": floor_page * 1000,
                    "ratio": crawl_page / floor_page,
                    "latency_ms_per_page": latency_page * 1000,
                    "latency_ratio": latency_page / crawl_page,
                    "idle_ms_per_s": idle_per_s * 1000,
                    "startup_cpu_s": got["crawl_one"].cpu,
                    **vs_old,
                }
            )
            print(f"  cpu round {r + 1}: {json.dumps({k: round(v, 3) for k, v in out[-1].items()})}", file=sys.stderr)
    med = {k: statistics.median(r[k] for r in out) for k in out[0]}
    return {
        "pages": n,
        "latency_pages": lat_n,
        "median": {k: round(v, 3) for k, v in med.items()},
        "rounds": [{k: round(v, 3) for k, v in r.items()} for r in out],
    }


def decoding_before_the_envelope(checkout: Path) -> dict[str, Any]:
    """Settings that let an older checkout read the sandbox's gzip answers.

    The code before issue 13 (473ff35) left Scrapy's HttpCompressionMiddleware at its default
    590, so its envelope middleware (910) read the gzip bytes and called every answer
    malformed; the sandbox learnt gzip later. Scrapy's own middleware at 915 (decoding before
    the envelope reads, as this project's does now) lets it read the same answers as the
    crawl and the floor, at the cost the decoding has (its only change). A checkout that
    places the middleware itself keeps its settings."""
    code = "import json, tmapi_spiders.settings as s; print(json.dumps(s.DOWNLOADER_MIDDLEWARES))"
    found = subprocess.run([PY, "-c", code], cwd=checkout, capture_output=True, text=True, check=True)
    middlewares = json.loads(found.stdout)
    stock = "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"
    if any("HttpCompression" in name for name in middlewares):
        return {}
    return {"DOWNLOADER_MIDDLEWARES": json.dumps({**middlewares, stock: 915})}


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
    common = {
        "REDIS_URL": redis_url,
        "TMAPI_JOB": job,
        "MAX_IDLE_TIME_BEFORE_CLOSE": 1,
        "TMAPI_REDIS_POLL_INTERVAL": 0.2,
        "CLOSESPIDER_TIMEOUT": seconds,
        **settings,
    }
    (tmp / job).mkdir(exist_ok=True)
    logs = [open(tmp / job / f"w{i}.log", "w", encoding="utf-8") for i in range(workers)]
    procs = [
        subprocess.Popen(
            crawl_args(None, tmp / job / f"products-w{i}.jsonl", {**common, "TMAPI_WORKER_ID": f"w{i}"}),
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
    # The limiter's own share, from its counters (exact script calls) and what each script runs.
    counts: dict[str, int] = {}
    for i in range(workers):
        log = (tmp / job / f"w{i}.log").read_text(encoding="utf-8", errors="replace")
        for name, value in re.findall(r"'tmapi/limit/redis/(\w+)': (\d+)", log):
            counts[name] = counts.get(name, 0) + int(value)
    limiter = sum(counts.get(k, 0) * n for k, n in LIMITER_COMMANDS.items()) / ok
    return {
        "workers": workers,
        "limiter_commands_per_page": round(limiter, 1),
        "limiter_counts": counts,
        "pages_in_window": pages,
        "commands_per_page": round(sum(per.values()), 1),
        "top": {k: round(v, 1) for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:6]},
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


STOCK_SPIDER = """
import scrapy


class Stock(scrapy.Spider):
    # A stock Scrapy spider doing the same first call: Scrapy's defaults, no project.
    name = "stock"

    async def start(self):
        yield scrapy.Request({url!r}, headers={{"apikey": {token!r}}})

    def parse(self, response):
        yield from response.json()["data"]["items"]
"""


def startup_row(tmp: Path, rounds: int) -> dict[str, Any]:
    """Ours and a stock Scrapy spider in alternate rounds: seconds from the start of the
    process to the sandbox's record of its first call."""
    from urllib.parse import urlencode

    from tmapi_spiders.sandbox.spec import SEARCH_PATH

    url = images("start", 1, 20)[0]
    seeds = write_seeds(tmp, "start", [url])
    stock_dir = tmp / "stock"  # outside the project: no scrapy.cfg, Scrapy's own settings
    stock_dir.mkdir(exist_ok=True)
    times: dict[str, list[float]] = {"ours": [], "stock": []}
    with Sandbox() as sandbox:
        env = crawl_env(sandbox.url)
        query = urlencode(dict(contract.SearchQuery().params(url, 1)))
        spider = STOCK_SPIDER.format(url=f"{sandbox.url}{SEARCH_PATH}?{query}", token=env["TMAPI_API_TOKEN"])
        (stock_dir / "stock.py").write_text(spider, encoding="utf-8")
        stock = [PY, "-m", "scrapy", "runspider", "stock.py", "-O", "out.jsonl", "-s", "LOG_LEVEL=INFO"]
        for r in range(rounds):
            for who in ("ours", "stock") if r % 2 == 0 else ("stock", "ours"):
                sandbox.reset()
                began = time.time()
                if who == "ours":
                    run(crawl_args(seeds, tmp / "start.jsonl", NO_THROTTLE), env)
                else:
                    subprocess.run(stock, cwd=stock_dir, env=env, capture_output=True, check=True)
                calls = sandbox.calls()
                times[who].append(min(c["time"] for c in calls) - began)
    ours, theirs = statistics.median(times["ours"]), statistics.median(times["stock"])
    return {
        "seconds": round(ours, 3),
        "stock_seconds": round(theirs, 3),
        "ratio": round(ours / theirs, 2),
        "rounds": [round(t, 3) for t in times["ours"]],
        "stock_rounds": [round(t, 3) for t in times["stock"]],
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| figure | measured | goal | note |", "| --- | --- | --- | --- |"]
    c = result.get("cpu")
    if c:
        m, rs = c["median"], c["rounds"]
        lines.append(
            f"| CPU per page, zero latency, vs the orjson floor | {m['ratio']:.2f}x ({m['crawl_ms_per_page']:.2f} ms"
            f" vs {m['floor_ms_per_page']:.2f} ms) | <= 3x | median of {len(rs)} rounds,"
            f" range {min(r['ratio'] for r in rs):.2f}-{max(r['ratio'] for r in rs):.2f}x; {c['pages']} pages |"
        )
        if "vs_old" in m:
            lines.append(
                f"| CPU per page, zero latency, vs {c['against']} | {m['vs_old']:.2f}x ({m['crawl_ms_per_page']:.2f} ms"
                f" vs {m['old_ms_per_page']:.2f} ms) | <= 1.10x (issue 13) | this crawl over that one's, median of"
                f" {len(rs)} rounds, range {min(r['vs_old'] for r in rs):.2f}-{max(r['vs_old'] for r in rs):.2f}x;"
                " the same rounds as the floor |"
            )
        lines.append(
            f"| CPU while every call waits on the API | {m['idle_ms_per_s']:.1f} ms a second | <= 2 ms a second"
            f" | CPU of the crawl process while its one call (6 s) is out, per second |"
        )
        lines.append(
            f"| latency-bound CPU per page vs zero latency | {m['latency_ratio']:.2f}x"
            f" ({m['latency_ms_per_page']:.2f} ms vs {m['crawl_ms_per_page']:.2f} ms) | <= 1.5x"
            f" | 0.5 s a call, 16 at once, {c['latency_pages']} pages |"
        )
    for row in result.get("redis", []):
        what = "plan limit 8" if row["limiter"] else "no limiter"
        goal = "<= 20, flat from 1 to 20 workers" if row["limiter"] else "(reference)"
        mine = f" (the limiter's own: {row['limiter_commands_per_page']:.1f})" if row["limiter"] else ""
        lines.append(
            f"| Redis commands per page, {what}, {row['workers']} worker(s) | {row['commands_per_page']:.1f}{mine}"
            f" | {goal} | {row['pages_per_s']:.1f} pages/s, 503s {row['share_503']:.2%},"
            f" worker CPU {row['worker_cpu_ms_per_page']:.1f} ms/page; most: "
            + ", ".join(f"{k} {v}" for k, v in row["top"].items())
            + " |"
        )
    q = result.get("qps")
    if q:
        lines.append(
            f"| TMAPI_MAX_QPS=10 against a plan of 10 in any second | {q['share_of_plan']:.1%} of the rate,"
            f" {q['share_503']:.2%} 503s | >= 97 %, < 0.5 % 503s | {q['rate']:.2f} calls/s, {q['calls']} calls |"
        )
    s = result.get("startup")
    if s:
        lines.append(
            f"| time to the first call, one image | {s['seconds']:.2f} s | <= 0.8 s | stock Scrapy spider in the same"
            f" rounds: {s['stock_seconds']:.2f} s ({s['ratio']:.2f}x); medians of {len(s['rounds'])} alternate rounds |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="one CPU round, shorter runs (about 3.5 minutes)")
    parser.add_argument("--rounds", type=int, default=0, help="rounds of the CPU rows (default 3, quick 1)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout of the project (`git archive 473ff35 | tar -x -C DIR`): its crawl in the cpu rounds",
    )
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    if set(chosen) - set(SCENARIOS):
        parser.error(f"choose from {', '.join(SCENARIOS)}")
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.monotonic()
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": os.getloadavg()[0],
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="tmapi-speed-") as tmpdir, RedisServer() as redis_server:
        tmp = Path(tmpdir)
        if "startup" in chosen:
            result["startup"] = startup_row(tmp, 3 if args.quick else 5)
            print(f"  startup: {result['startup']}", file=sys.stderr, flush=True)
        if "cpu" in chosen:
            against = args.against.resolve() if args.against else None
            if against is not None and not (against / "scrapy.cfg").is_file():
                parser.error(f"--against {against}: no scrapy.cfg there (a checkout of the project?)")
            result["cpu"] = cpu_and_latency(tmp, rounds, 20 if args.quick else 40, args.quick, against)
            if against is not None:
                result["cpu"]["against"] = str(against)
        if "redis" in chosen:
            result["redis"] = redis_rows(tmp, redis_server.url, args.quick)
        if "qps" in chosen:
            result["qps"] = qps_row(tmp, args.quick)
            print(f"  qps: {result['qps']}", file=sys.stderr, flush=True)
    result["load_after"] = os.getloadavg()[0]
    result["seconds"] = round(time.monotonic() - started, 1)
    result["table"] = table(result)
    print(result["table"])
    print(f"\n{result['seconds']} s; load average {result['load_before']:.1f} -> {result['load_after']:.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput at the API's limit: one command, one table, every figure a ratio from this run.

    .venv/bin/python benchmarks/throughput.py            # about 3.5 minutes on 2 cores
    .venv/bin/python benchmarks/throughput.py --only cpu,memory

Scenarios (each a real `scrapy crawl image_search` subprocess against a sandbox that
runs as its own process, so it never shares the crawler's interpreter):

1. utilisation: sandbox with 0.5 s latency and a concurrency limit of 8 (so at most 16
   pages/s): pages/s reached as a share of 16, and the share of 503s. Stock settings
   (AutoThrottle, no limiter) beside TMAPI_MAX_CONCURRENCY=8 with 1 worker and with 3
   workers sharing the limit through a private redis-server.
2. cpu: process CPU time (user + system, from wait4: not wall time, which other work on
   the machine makes noisy) per page of the full stack, against a floor measured in the
   same run: benchmarks/floor_client.py (aiohttp + orjson, gzip answers) fetching the same pages and
   writing the same JSON Lines. Start-up is taken out by also timing a one-page run.
3. memory: peak RSS of a crawl of 50,000 items against one of 5,000.
4. scaling: 1, 2 and 3 workers through Redis on a latency-bound sandbox with no limit:
   pages/s per worker against the single worker's.

Rates are steady-state: from the sandbox's call records, the calls between the 10th and
the 90th percentile of the run, over the time they span (start-up and drain left out).
The table is printed and written to benchmarks/results/throughput.json (a run with
--only replaces those scenarios there and keeps the rest, each with its time and load).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.redis_server import RedisServer  # noqa: E402
from tmapi_spiders.api import contract  # noqa: E402

PY = sys.executable
TOKEN = "bench-token"
RESULTS = REPO / "benchmarks" / "results" / "throughput.json"
SCENARIOS = ("utilisation", "cpu", "memory", "scaling")


@dataclass
class Proc:
    returncode: int
    cpu: float  # user + system seconds of the process itself
    maxrss_mb: float
    seconds: float
    output: str


def run(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> Proc:
    """Run a child and read its own rusage (wait4), not that of every child so far."""
    started = time.monotonic()
    out = open(log, "w", encoding="utf-8") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log:
        out.close()  # type: ignore[union-attr]
    text = log.read_text(encoding="utf-8", errors="replace") if log else ""
    return Proc(
        proc.returncode,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        time.monotonic() - started,
        text,
    )


class Sandbox:
    """`python -m tmapi_spiders.sandbox` as its own process; first stdout line is its URL."""

    def __init__(self, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "tmapi_spiders.sandbox", "--port", "0", "--token", TOKEN, *flags],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError(f"sandbox did not start: {self.url!r}")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + "/_sandbox/reset", method="POST"), timeout=10).read()

    def calls(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        since = 0
        while True:
            batch = self.get(f"/_sandbox/calls?since={since}&limit=20000")["calls"]
            if not batch:
                return out
            out += batch
            since = batch[-1]["seq"]

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def steady_rate(calls: list[dict[str, Any]], status: int | None = 200) -> float:
    """Calls per second between the 10th and 90th percentile of the run (by count)."""
    times = sorted(c["time"] for c in calls if status is None or c["status"] == status)
    if len(times) < 20:
        return 0.0
    lo, hi = len(times) // 10, len(times) * 9 // 10
    return (hi - lo) / max(1e-9, times[hi] - times[lo])


def images(prefix: str, count: int, total: int) -> list[str]:
    return [f"https://cbu01.alicdn.com/img/bench/{prefix}/{i}/total-{total}.jpg" for i in range(count)]


def write_seeds(tmp: Path, name: str, urls: list[str]) -> Path:
    path = tmp / f"{name}.txt"
    path.write_text("\n".join(urls) + "\n", encoding="utf-8")
    return path


def crawl_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMAPI_", "REDIS_"))}
    env.update(TMAPI_API_TOKEN=TOKEN, TMAPI_BASE_URL=base_url)
    return env


def crawl_args(seeds: Path | None, out: Path, settings: dict[str, Any]) -> list[str]:
    args = [PY, "-m", "scrapy", "crawl", "image_search", "-O" if seeds else "-o", str(out)]
    if seeds:
        args += ["-a", f"urls_file={seeds}"]
    base = {"LOG_LEVEL": "INFO", "TMAPI_PROGRESS_INTERVAL": 0, "TMAPI_OUTPUT_DIR": str(out.parent / "output")}
    for key, value in {**base, **settings}.items():
        args += ["-s", f"{key}={value}"]
    return args


def seed_job(sandbox: Sandbox, redis_url: str, job: str, seeds: Path) -> dict[str, str]:
    """`scrapy seed` the list into the job, then reset the sandbox's counts; the crawl env."""
    env = crawl_env(sandbox.url)
    seeded = subprocess.run(
        [PY, "-m", "scrapy", "seed", str(seeds), "-s", f"REDIS_URL={redis_url}", "-s", f"TMAPI_JOB={job}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if seeded.returncode:
        raise RuntimeError(f"scrapy seed failed: {seeded.stderr.strip()[-500:]}")
    sandbox.reset()
    return env


def worker_settings(redis_url: str, job: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A benchmark worker's settings: the job, a quick close once it is drained, a short seed poll."""
    return {
        "REDIS_URL": redis_url,
        "TMAPI_JOB": job,
        "MAX_IDLE_TIME_BEFORE_CLOSE": 1,
        "TMAPI_REDIS_POLL_INTERVAL": 0.2,
        **settings,
    }


def run_job(
    tmp: Path, sandbox: Sandbox, redis_url: str, job: str, seeds: Path, workers: int, settings: dict[str, Any]
) -> list[Proc]:
    """Seed a job in Redis and run `workers` crawl processes on it."""
    env = seed_job(sandbox, redis_url, job, seeds)
    common = worker_settings(redis_url, job, settings)
    procs = []
    with tempfile.TemporaryDirectory(dir=tmp) as out:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(
                    run,
                    crawl_args(None, Path(out) / f"products-w{i}.jsonl", {**common, "TMAPI_WORKER_ID": f"w{i}"}),
                    env,
                    tmp / f"{job}-w{i}.log",
                )
                for i in range(workers)
            ]
            procs = [f.result() for f in futures]
    return procs


# --- scenarios -------------------------------------------------------------------------------------


def utilisation(tmp: Path, redis_url: str, seconds: float) -> list[dict[str, Any]]:
    rows = []
    limit, latency = 8, 0.5
    possible = limit / latency
    cases = [
        ("stock settings (AutoThrottle, no limiter), 1 worker", 1, {}),
        ("TMAPI_MAX_CONCURRENCY=8, 1 worker", 1, {"TMAPI_MAX_CONCURRENCY": limit}),
        ("TMAPI_MAX_CONCURRENCY=8, 3 workers (Redis)", 3, {"TMAPI_MAX_CONCURRENCY": limit}),
    ]
    pages = int(possible * seconds * 1.5)
    with Sandbox("--latency", str(latency), "--max-concurrency", str(limit)) as sandbox:
        for n, (name, workers, settings) in enumerate(cases):
            seeds = write_seeds(tmp, f"util{n}", images(f"util{n}", pages // 8 + 1, 160))
            settings = {**settings, "CLOSESPIDER_TIMEOUT": seconds}
            if workers == 1:
                sandbox.reset()
                procs = [run(crawl_args(seeds, tmp / f"util{n}.jsonl", settings), crawl_env(sandbox.url))]
            else:
                procs = run_job(tmp, sandbox, redis_url, f"util{n}", seeds, workers, settings)
            calls = sandbox.calls()
            rate = steady_rate(calls)
            refused = sum(1 for c in calls if c["status"] == contract.CONCURRENCY_LIMIT)
            rows.append(
                {
                    "case": name,
                    "pages_per_s": round(rate, 2),
                    "possible": possible,
                    "utilisation": round(rate / possible, 3),
                    "share_503": round(refused / max(1, len(calls)), 4),
                    "calls": len(calls),
                    "peak_concurrency": sandbox.get("/_sandbox/stats")["peak_concurrency"],
                    "exit_codes": [p.returncode for p in procs],
                }
            )
            print(f"  utilisation: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def page_list(urls: list[str], total: int) -> list[dict[str, str]]:
    query = contract.SearchQuery()
    return [
        dict(contract.search_params(query.to_dict(), url, page))
        for url in urls
        for page in range(1, math.ceil(total / query.page_size) + 1)
    ]  # fmt: skip


def floor(base_url: str, pages: Path, out: Path) -> list[str]:
    return [PY, "benchmarks/floor_client.py", base_url, TOKEN, str(pages), str(out)]


def cpu(tmp: Path, images_count: int, reps: int, extra: dict[str, str]) -> dict[str, Any]:
    """Per-page CPU of the crawl against the floor, `reps` times side by side.

    Each repetition times all four runs (floor and crawl, one page and 1,200 pages) back
    to back, so a slower stretch of the machine weighs on both sides of its ratio; the
    reported ratio is the median repetition's."""
    total = 400  # 20 pages of 20 items per image
    big = images("cpu", images_count, total)
    small = images("cpu-one", 1, 20)
    n = len(big) * total // 20
    settings = {"AUTOTHROTTLE_ENABLED": False, **extra}
    reps_out: list[dict[str, Any]] = []
    with Sandbox() as sandbox:
        env = crawl_env(sandbox.url)
        for name, urls, t in (("one", small, 20), ("many", big, total)):
            (tmp / f"{name}.json").write_text(json.dumps(page_list(urls, t)), encoding="utf-8")
            write_seeds(tmp, f"cpu-{name}", urls)
            # warm the sandbox: its items are built once, for both sides
            run(floor(sandbox.url, tmp / f"{name}.json", tmp / "w.jsonl"), env)
        for rep in range(reps):
            results: dict[str, Proc] = {}
            for name in ("one", "many"):
                floor_run = floor(sandbox.url, tmp / f"{name}.json", tmp / f"floor-{name}.jsonl")
                results[f"floor_{name}"] = run(floor_run, env)
                # an empty answer store each time: the default crawl pays (and stores) every page,
                # where a shared one would replay the earlier repetitions' answers
                store = {"TMAPI_CACHE_DIR": str(tmp / f"answers-{rep}-{name}")}
                crawl = crawl_args(tmp / f"cpu-{name}.txt", tmp / f"crawl-{name}.jsonl", {**store, **settings})
                results[f"crawl_{name}"] = run(crawl, env, tmp / f"crawl-{name}.log")
            items = sum(1 for _ in open(tmp / "crawl-many.jsonl", encoding="utf-8"))
            floor_items = sum(1 for _ in open(tmp / "floor-many.jsonl", encoding="utf-8"))
            if items != floor_items or items != n * 20:
                raise RuntimeError(f"cpu: crawl wrote {items} records, floor {floor_items}, expected {n * 20}")
            crawl_page = (results["crawl_many"].cpu - results["crawl_one"].cpu) / (n - 1)
            floor_page = (results["floor_many"].cpu - results["floor_one"].cpu) / (n - 1)
            reps_out.append(
                {
                    "crawl_cpu_s": round(results["crawl_many"].cpu, 2),
                    "floor_cpu_s": round(results["floor_many"].cpu, 2),
                    "crawl_startup_cpu_s": round(results["crawl_one"].cpu, 2),
                    "floor_startup_cpu_s": round(results["floor_one"].cpu, 2),
                    "crawl_ms_per_page": round(crawl_page * 1000, 3),
                    "floor_ms_per_page": round(floor_page * 1000, 3),
                    "ratio_per_page": round(crawl_page / floor_page, 2),
                    "ratio_whole_run": round(results["crawl_many"].cpu / results["floor_many"].cpu, 2),
                }
            )
    median = sorted(reps_out, key=lambda r: r["ratio_per_page"])[len(reps_out) // 2]
    return {
        "pages": n,
        "items": n * 20,
        **median,
        "ratios_per_page": [r["ratio_per_page"] for r in reps_out],
        "crawl_settings": extra,
    }


def memory(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Sandbox() as sandbox:
        env = crawl_env(sandbox.url)
        for name, count in (("5k", 13), ("50k", 125)):  # 400 items an image
            seeds = write_seeds(tmp, f"mem-{name}", images(f"mem-{name}", count, 400))
            proc = run(
                crawl_args(seeds, tmp / f"mem-{name}.jsonl", {"AUTOTHROTTLE_ENABLED": False}),
                env,
                tmp / f"mem-{name}.log",
            )
            items = sum(1 for _ in open(tmp / f"mem-{name}.jsonl", encoding="utf-8"))
            out[name] = {"items": items, "peak_rss_mb": round(proc.maxrss_mb, 1), "exit": proc.returncode}
    out["ratio"] = round(out["50k"]["peak_rss_mb"] / out["5k"]["peak_rss_mb"], 3)
    return out


def scaling(tmp: Path, redis_url: str, seconds: float) -> list[dict[str, Any]]:
    rows = []
    latency = 0.5
    with Sandbox("--latency", str(latency)) as sandbox:
        base = 0.0
        for workers in (1, 2, 3):
            seeds = write_seeds(tmp, f"scale{workers}", images(f"scale{workers}", 16 * workers * 8, 160))
            settings = {"CLOSESPIDER_TIMEOUT": seconds, "AUTOTHROTTLE_ENABLED": False, "CONCURRENT_REQUESTS": 16}
            procs = run_job(tmp, sandbox, redis_url, f"scale{workers}", seeds, workers, settings)
            rate = steady_rate(sandbox.calls())
            per_worker = rate / workers
            base = base or per_worker
            rows.append(
                {
                    "workers": workers,
                    "pages_per_s": round(rate, 1),
                    "per_worker": round(per_worker, 1),
                    "vs_one": round(per_worker / base, 3),
                    "exit_codes": [p.returncode for p in procs],
                }
            )
            print(f"  scaling: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


# --- the table -------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    lines = ["| measure | ours | target | note |", "| --- | --- | --- | --- |"]
    for row in result.get("utilisation", []):
        lines.append(
            f"| utilisation: {row['case']} | {row['utilisation']:.1%} of {row['possible']:.0f} pages/s"
            f" ({row['pages_per_s']:.1f}/s), 503s {row['share_503']:.2%} | >= 95 %, < 0.5 % 503s"
            f" | peak in flight {row['peak_concurrency']} |"
        )
    c = result.get("cpu")
    if c:
        lines.append(
            f"| CPU per page vs floor | {c['ratio_per_page']:.2f}x ({c['crawl_ms_per_page']:.2f} ms vs"
            f" {c['floor_ms_per_page']:.2f} ms) | <= 3x | median of {len(c.get('ratios_per_page', [1]))}"
            f" side-by-side runs {c.get('ratios_per_page')}; whole runs incl. start-up: {c['ratio_whole_run']:.2f}x"
            f" ({c['crawl_cpu_s']} s vs {c['floor_cpu_s']} s CPU, {c['pages']} pages) |"
        )
    m = result.get("memory")
    if m:
        lines.append(
            f"| peak RSS 50k items / 5k items | {m['ratio']:.3f}x ({m['50k']['peak_rss_mb']} MB vs"
            f" {m['5k']['peak_rss_mb']} MB) | <= 1.2x | {m['50k']['items']} and {m['5k']['items']} items |"
        )
    for row in result.get("scaling", []):
        lines.append(
            f"| scaling: {row['workers']} worker(s) via Redis | {row['vs_one']:.1%} of one worker's pages/s"
            f" per worker ({row['per_worker']:.1f}/s each) | >= 90 % | {row['pages_per_s']:.1f} pages/s in all |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=25, help="length of each utilisation run")
    parser.add_argument("--cpu-images", type=int, default=60, help="images of 20 pages for the CPU run")
    parser.add_argument("--cpu-reps", type=int, default=5, help="side-by-side repetitions of the CPU run (median)")
    parser.add_argument(
        "--cpu-set", action="append", default=[], metavar="NAME=VALUE", help="a crawl setting for the CPU run"
    )
    parser.add_argument("--out", default=str(RESULTS), help="where the JSON goes")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {sorted(unknown)[0]!r}; choose from {', '.join(SCENARIOS)}")
    started = time.monotonic()
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="tmapi-bench-") as tmpdir, RedisServer() as redis_server:
        tmp = Path(tmpdir)
        if "utilisation" in chosen:
            result["utilisation"] = utilisation(tmp, redis_server.url, args.seconds)
        if "cpu" in chosen:
            extra = dict(item.split("=", 1) for item in args.cpu_set)
            result["cpu"] = cpu(tmp, args.cpu_images, max(1, args.cpu_reps), extra)
            print(f"  cpu: {result['cpu']}", file=sys.stderr, flush=True)
        if "memory" in chosen:
            result["memory"] = memory(tmp)
            print(f"  memory: {result['memory']}", file=sys.stderr, flush=True)
        if "scaling" in chosen:
            result["scaling"] = scaling(tmp, redis_server.url, min(args.seconds, 15))
    result["load_after"] = os.getloadavg()[0]
    result["seconds"] = round(time.monotonic() - started, 1)
    print(table(result))
    print(
        f"\n{result['seconds']} s; load average {result['load_before']:.1f} -> {result['load_after']:.1f};"
        f" written to {args.out}"
    )
    # A partial run (--only) replaces its own scenarios in the file and keeps the others,
    # each with the time and load it was measured at.
    run_info = {k: result[k] for k in ("when", "machine", "load_before", "load_after", "seconds")}
    previous: dict[str, Any] = {}
    if Path(args.out).exists():
        try:
            previous = json.loads(Path(args.out).read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
    runs = previous.get("runs") or {s: {k: previous.get(k) for k in run_info} for s in SCENARIOS if s in previous}
    merged = {s: previous[s] for s in SCENARIOS if s in previous and s not in chosen}
    merged.update({s: result[s] for s in chosen})
    runs.update({s: run_info for s in chosen})
    result = {**run_info, **merged, "runs": {s: runs[s] for s in SCENARIOS if s in merged}}
    result["table"] = table(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

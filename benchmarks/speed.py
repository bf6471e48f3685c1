"""The speed table: honest speed, every row a ratio or rate measured side by side in one run.

    .venv/bin/python benchmarks/speed.py            # about 6 minutes on 2 cores
    .venv/bin/python benchmarks/speed.py --quick    # about 4 minutes: one CPU round, shorter runs
    .venv/bin/python benchmarks/speed.py --only redis,qps
    mkdir -p /tmp/old && git archive 473ff35 | tar -x -C /tmp/old   # the code before the answer-reading rework
    .venv/bin/python benchmarks/speed.py --only cpu --against /tmp/old

Rows (each a real `scrapy crawl image_search` subprocess; the sandbox runs as its own
process, Redis is a private redis-server):

- cpu: CPU per page at zero latency against benchmarks/floor_client.py (aiohttp, orjson both
  ways, gzip answers: what the crawl does, with nothing else). Rounds alternate floor and
  crawl, one page and many, so the machine's load weighs on both sides; the median round.
  Beside them, in the same rounds, benchmarks/scrapy_peer.py --lean: the same job done by
  Scrapy with nothing but gzip decoding, the feed and core stats (the least a Scrapy crawl
  of these pages costs).
- against (--against DIR): the crawl of another checkout of the project (its own scrapy.cfg,
  settings and tmapi_spiders, this venv) in the same rounds, same sandbox and pages: CPU per
  page of this crawl over that one's (no more than 1.10).
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speed_cpu import NO_THROTTLE, cpu_and_latency
from speed_limits import qps_row, redis_rows
from throughput import PY, REPO, Sandbox, crawl_args, crawl_env, images, run, write_seeds

from tests.redis_server import RedisServer
from tmapi_spiders.api import contract

RESULTS = REPO / "benchmarks" / "results" / "speed.json"
SCENARIOS = ("cpu", "redis", "qps", "startup")


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
        query = urlencode(dict(contract.search_params(contract.SearchQuery().to_dict(), url, 1)))
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
        lines.append(
            f"| CPU per page, zero latency, vs the lean Scrapy peer | {m['vs_peer']:.2f}x"
            f" ({m['crawl_ms_per_page']:.2f} ms vs {m['peer_ms_per_page']:.2f} ms) | (reference: the floor"
            f" of any Scrapy crawl) | benchmarks/scrapy_peer.py --lean, {m['peer_ratio']:.2f}x the orjson floor;"
            f" range {min(r['vs_peer'] for r in rs):.2f}-{max(r['vs_peer'] for r in rs):.2f}x; the same rounds |"
        )
        if "vs_old" in m:
            lines.append(
                f"| CPU per page, zero latency, vs {c['against']} | {m['vs_old']:.2f}x ({m['crawl_ms_per_page']:.2f} ms"
                f" vs {m['old_ms_per_page']:.2f} ms) | <= 1.10x | this crawl over that one's, median of"
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
            f"| time to the first call, one image | {s['seconds']:.2f} s, {s['ratio']:.2f}x the stock spider"
            f" | <= 0.8 s where stock took 0.69 s: <= 1.16x stock | stock Scrapy spider in the same rounds:"
            f" {s['stock_seconds']:.2f} s; medians of {len(s['rounds'])} alternate rounds (seconds move with the"
            " machine's state, the ratio far less) |"
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

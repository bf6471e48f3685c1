"""TMAPI_MAX_QPS against a gateway that refuses the 11th call in any sliding second: the
share of calls refused (503) and the share of the plan's rate used, measured two ways:

- `bench`: benchmarks/speed_limits.py's row (Alibaba images only, 20 pages each, sandbox
  latency 0.05 s, AutoThrottle and the cache off, 20 s);
- `harness`: as a user runs it (default settings but TMAPI_MAX_QPS=10, sandbox defaults but
  --max-qps 10, a list where two images in three are converted first, 60 s);
- `jitter`: the harness over a network that delays each call 0-30 ms on its way to the
  gateway (the sandbox's --network-jitter): what a busy machine or a real network does to
  calls the limiter sends evenly.

`--against CHECKOUT` runs the crawls of another checkout (its limiter) against this sandbox.

    .venv/bin/python benchmarks/qps_refusals.py              # both, 60 s for the harness
    .venv/bin/python benchmarks/qps_refusals.py --only jitter --seconds 120 --against /tmp/main
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from speed_cpu import NO_THROTTLE, in_checkout
from throughput import Sandbox, crawl_args, crawl_env, images, run, steady_rate, write_seeds

from tmapi_spiders.api import contract

PLAN = 10


def converted_list(count: int) -> list[str]:
    """Two images in three on other hosts (a conversion call first), 3 pages each."""
    return [
        f"https://cbu01.alicdn.com/img/qps/{i}/total-60.jpg"
        if i % 3 == 0
        else f"https://shop{i % 7}.example.com/p/{i}.jpg?total=60"
        for i in range(count)
    ]


def busiest_second(times: list[float]) -> int:
    """Most calls that reached the gateway in any sliding second."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


def tenth_gaps(times: list[float]) -> dict[str, float]:
    """How far apart call n and call n+PLAN reached the gateway (under 1 s: the later one is
    refused): the smallest gap and low percentiles, in ms. The limiter aims at 1025 ms."""
    times = sorted(times)
    gaps = sorted(b - a for a, b in zip(times, times[PLAN:], strict=False))
    if not gaps:
        return {}
    pick = {"min": 0.0, "p0.5": 0.005, "p1": 0.01, "p5": 0.05, "p50": 0.5}
    return {name: round(1000 * gaps[int(q * (len(gaps) - 1))], 1) for name, q in pick.items()}


def measure(
    tmp: Path, name: str, urls: list[str], sandbox_flags: list[str], settings: dict[str, Any], against: Path | None
) -> dict[str, Any]:
    seeds = write_seeds(tmp, name, urls)
    with Sandbox("--max-qps", str(PLAN), *sandbox_flags) as sandbox:
        sandbox.reset()
        args = crawl_args(seeds, tmp / f"{name}.jsonl", settings)
        proc = run(in_checkout(against, args) if against else args, crawl_env(sandbox.url), tmp / f"{name}.log")
        calls = sandbox.calls()
    refused = sum(1 for c in calls if c["status"] == contract.CONCURRENCY_LIMIT)
    rate = steady_rate(calls, None)
    return {
        "case": name,
        "rate": round(rate, 2),
        "share_of_plan": round(rate / PLAN, 4),
        "share_503": round(refused / max(1, len(calls)), 4),
        "refused": refused,
        "calls": len(calls),
        "busiest_second": busiest_second([c["time"] for c in calls]),
        "tenth_gap_ms": tenth_gaps([c["time"] for c in calls]),
        "exit": proc.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("bench", "harness", "jitter"))
    parser.add_argument("--against", type=Path, help="run this checkout's crawl instead")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tmapi-qps-") as folder:
        tmp = Path(folder)
        if args.only in (None, "bench"):
            settings = {**NO_THROTTLE, "TMAPI_MAX_QPS": PLAN, "CLOSESPIDER_TIMEOUT": 20}
            rows.append(measure(tmp, "bench", images("qps", 40, 400), ["--latency", "0.05"], settings, args.against))
            print(rows[-1], file=sys.stderr, flush=True)
        if args.only in (None, "harness"):
            settings = {"TMAPI_MAX_QPS": PLAN, "CLOSESPIDER_TIMEOUT": args.seconds}
            urls = converted_list(int(args.seconds * PLAN))
            rows.append(measure(tmp, "harness", urls, [], settings, args.against))
            print(rows[-1], file=sys.stderr, flush=True)
        if args.only in (None, "jitter"):
            settings = {"TMAPI_MAX_QPS": PLAN, "CLOSESPIDER_TIMEOUT": args.seconds}
            urls = converted_list(int(args.seconds * PLAN))
            rows.append(measure(tmp, "jitter", urls, ["--network-jitter", "0.03"], settings, args.against))
            print(rows[-1], file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

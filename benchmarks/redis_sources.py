"""Where a job's Redis commands come from: each command counted by the script or call that sent it.

    .venv/bin/python benchmarks/redis_sources.py --workers 20 --limit 8

The same run as one row of `speed.py --only redis` (400 images of 8 pages, sandbox latency
0.5 s and a plan of 8, TMAPI_REDIS_POLL_INTERVAL 0.2), with Redis's MONITOR read in a
thread: a command a Lua script runs is counted under that script (by its SHA), any other
under its own name. Counted over the middle of the run like speed.py (30 % to 90 % of the
stretch in which pages were made), per page and per second. MONITOR slows Redis a little:
the totals are for attribution, speed.py's are the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import speed_limits
from throughput import Sandbox

from tests.redis_server import RedisServer
from tmapi_spiders.distributed import backends as job_backends
from tmapi_spiders.distributed import scripts as job_scripts
from tmapi_spiders.distributed.keys import JobKeys
from tmapi_spiders.limits import shared


def script_names() -> dict[str, str]:
    """SHA1 of every Lua script the project registers -> a readable name."""
    names = {}
    for prefix, module in (("job", job_scripts), ("limit", shared), ("summary", job_backends)):
        for name in dir(module):
            value = getattr(module, name)
            if name.isupper() and isinstance(value, str) and "redis.call" in value:
                # Job.register_script puts the prelude before each of the job's scripts.
                text = job_scripts.PRELUDE + value if module is job_scripts else value
                names[hashlib.sha1(text.encode()).hexdigest()] = f"{prefix}.{name}"
    return names


class Monitor(threading.Thread):
    """Reads MONITOR until stopped: (unix time, source, command) for every command."""

    def __init__(self, client: Any) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.names = script_names()
        self.events: list[tuple[float, str, str]] = []
        self.stopped = False

    def run(self) -> None:
        try:
            self._listen()
        except redis.ConnectionError:
            if not self.stopped:  # the private server going away at the end is the normal way out
                raise

    def _listen(self) -> None:
        current = "?"
        with self.client.monitor() as monitor:
            for event in monitor.listen():
                if self.stopped:
                    return
                parts = event["command"].split(" ")
                command = parts[0].strip('"').lower()
                if event.get("client_type") == "lua":
                    self.events.append((event["time"], current, command))
                    continue
                if command in ("evalsha", "eval") and len(parts) > 1:
                    sha = parts[1].strip('"')
                    current = self.names.get(sha, f"script {sha[:8]}")
                    self.events.append((event["time"], current, command))
                else:
                    self.events.append((event["time"], command, command))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--limit", type=int, default=8, help="TMAPI_MAX_CONCURRENCY (0: no limiter)")
    parser.add_argument("--seconds", type=float, default=30)
    opts = parser.parse_args()
    settings: dict[str, Any] = dict(speed_limits.NO_THROTTLE)
    if opts.limit:
        settings["TMAPI_MAX_CONCURRENCY"] = opts.limit
    else:
        settings["CONCURRENT_REQUESTS"] = 2
    pages: list[tuple[float, int]] = []
    leased: list[int] = []  # the job's leases (requests taken by workers, not acknowledged), sampled
    with (
        tempfile.TemporaryDirectory() as folder,
        RedisServer() as server,
        Sandbox("--latency", "0.5", "--max-concurrency", "8") as sandbox,
    ):
        monitor = Monitor(redis.Redis.from_url(server.url, decode_responses=True))
        monitor.start()
        done = threading.Event()

        def sample() -> None:
            keys = JobKeys.for_job("src")
            client = redis.Redis.from_url(server.url, decode_responses=True)
            while not done.is_set():
                pages.append((time.time(), sandbox.get("/_sandbox/stats")["statuses"].get("200", 0)))
                leased.append(int(client.zcard(keys.inflight)))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        row = speed_limits.redis_run(Path(folder), sandbox, server.url, "src", opts.workers, settings, opts.seconds)
        done.set()
        monitor.stopped = True
        sampler.join()
    making = [p for p in pages if 0 < p[1] < pages[-1][1]]
    t0, t1 = making[0][0], making[-1][0]
    lo, hi = t0 + 0.3 * (t1 - t0), t0 + 0.9 * (t1 - t0)
    inside = [p for p in making if lo <= p[0] <= hi]
    n = max(1, inside[-1][1] - inside[0][1])
    span = inside[-1][0] - inside[0][0]
    by_source: Counter[str] = Counter()
    by_command: Counter[tuple[str, str]] = Counter()
    for when, source, command in monitor.events:
        if inside[0][0] <= when <= inside[-1][0]:
            by_source[source] += 1
            by_command[(source, command)] += 1
    total = sum(by_source.values())
    print(f"{opts.workers} workers, limit {opts.limit or 'none'}: {n} pages in {span:.1f} s ({n / span:.1f}/s)")
    print(f"speed.py's own figures for this run: {row}")
    middle = sorted(leased)[len(leased) // 4 : 3 * len(leased) // 4] or [0]
    print(f"leases held job-wide (middle half of the samples): {min(middle)}-{max(middle)}")
    print(f"commands per page {total / n:.1f} ({total / span:.0f}/s), by source:")
    for source, count in by_source.most_common():
        inner = ", ".join(
            f"{cmd} {c / n:.2f}" for (s, cmd), c in sorted(by_command.items(), key=lambda kv: -kv[1]) if s == source
        )
        print(f"  {source:24} {count / n:6.2f}/page {count / span:7.1f}/s   ({inner})")


if __name__ == "__main__":
    main()

"""How fast is the sandbox? Distinct search pages per second on one core, and concurrency in latency mode.

Starts `python -m tmapi_spiders.sandbox --port 0` as a subprocess pinned to one core,
drives it from this process (pinned to another core when there is one) with an aiohttp
client over many connections, prints a table and writes JSON. Bounded to well under a
minute. Usage:

    .venv/bin/python benchmarks/sandbox_throughput.py [--seconds 6] [--json benchmarks/sandbox_throughput.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tmapi_spiders.api import contract

TOKEN = "bench"


def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return []


def start_server(*extra: str, core: int | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "tmapi_spiders.sandbox", "--port", "0", "--token", TOKEN, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if core is not None:
        os.sched_setaffinity(proc.pid, {core})
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        raise SystemExit(f"sandbox did not start: {base_url!r}")
    return proc, base_url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (Linux), to tell server from client limits."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run: Any) -> dict[str, Any]:
    """Run a client coroutine and add the server's CPU share and pages per server-CPU-second."""
    before = cpu_seconds(pid)
    row = asyncio.run(run)
    cpu = cpu_seconds(pid) - before
    row["server_cpu_share"] = round(cpu / row["seconds"], 2)
    row["pages_per_server_cpu_s"] = round(row["requests"] / cpu, 1) if cpu > 0 else None
    return row


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def search_target(img: str, page: int, **extra: str) -> str:
    params = {contract.TOKEN_QUERY_PARAM: TOKEN, "img_url": img, "page": page, "page_size": 20, **extra}
    return f"{contract.SEARCH_PATH}?{urlencode(params)}"


async def drive(base_url: str, targets: list[str], connections: int, seconds: float) -> dict[str, Any]:
    """GET `targets` (path + query) over `connections` keep-alive connections until done or `seconds` pass.

    A minimal HTTP/1.1 client on asyncio streams: the aiohttp client needs about as much CPU
    per call as the server, so on a two-core machine it, not the server, would set the pace.
    """
    host, port = base_url.rsplit("//", 1)[1].rsplit(":", 1)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    received = 0
    queue = iter(targets)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal received
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for target in queue:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                writer.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target.encode(), host.encode()))
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
                received += len(body)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "pages_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
        "mean_kb": round(received / len(latencies) / 1024, 1),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


async def burst(base_url: str, calls: int) -> dict[str, Any]:
    """Fire `calls` concurrent searches at once; report wall time and the server's peak concurrency."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> float:
            t0 = time.perf_counter()
            async with session.get(base_url + search_target(f"https://cbu01.alicdn.com/img/burst/{i}.jpg", 1)) as r:
                await r.read()
                assert r.status == 200, r.status
            return time.perf_counter() - t0

        started = time.perf_counter()
        latencies = sorted(await asyncio.gather(*(one(i) for i in range(calls))))
        elapsed = time.perf_counter() - started
        async with session.get(base_url + "/_sandbox/stats") as r:
            stats = await r.json()
    return {
        "requests": calls,
        "seconds": round(elapsed, 3),
        "pages_per_s": round(calls / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[int(calls * 0.99)], 2),
        "peak_concurrency": stats["peak_concurrency"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each throughput run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=4000, help="distinct pages served first, on a fresh server")
    parser.add_argument("--burst", type=int, default=500, help="concurrent calls in the latency-mode run")
    parser.add_argument("--latency", type=float, default=0.5, help="injected latency in the latency-mode run")
    parser.add_argument("--json", type=Path, default=Path(__file__).with_suffix(".json"))
    args = parser.parse_args()

    cores = _cores()
    server_core = cores[0] if cores else None
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[1]})

    # Distinct (image, page) pairs, walked as a crawler does: every page of an image in turn.
    def pages(prefix: str, count: int, last_page: int, **extra: str) -> list[str]:
        images = [f"https://cbu01.alicdn.com/img/ibank/{prefix}-{i}_total-400.jpg" for i in range(count)]
        return [search_target(img, page, **extra) for img in images for page in range(1, last_page + 1)]

    default = pages("bench", 3000, 20)
    mixed = pages("mixed", 3000, 7, sort="price_up", is_factory="true")
    rows: dict[str, dict[str, Any]] = {}
    proc, base_url = start_server(core=server_core)
    try:
        # A fresh server renders its shared pools (products, sales levels, suppliers) as items
        # first need them: the first few thousand new pages cost more. Reported, then the
        # steady state is measured on other images.
        rows[f"first {args.warmup} distinct pages, fresh server"] = measured(
            proc.pid, drive(base_url, pages("warmup", args.warmup // 20, 20), args.connections, args.seconds)
        )
        rows["distinct pages, sort=default"] = measured(
            proc.pid, drive(base_url, default, args.connections, args.seconds)
        )
        served = rows["distinct pages, sort=default"]["requests"]
        rows["the same pages again"] = measured(
            proc.pid, drive(base_url, default[:served], args.connections, args.seconds)
        )
        rows["distinct pages, sort=price_up&is_factory"] = measured(
            proc.pid, drive(base_url, mixed, args.connections, args.seconds)
        )
    finally:
        stop_server(proc)

    proc, base_url = start_server("--latency", str(args.latency), core=server_core)
    try:
        rows[f"{args.burst} concurrent calls, latency {args.latency}s"] = measured(
            proc.pid, burst(base_url, args.burst)
        )
    finally:
        stop_server(proc)

    pinned = f"server pinned to core {server_core}" if server_core is not None else "server not pinned"
    print(f"sandbox throughput ({pinned}, {args.connections} client connections, orjson={_has_orjson()})")
    print(
        f"{'run':44} {'requests':>9} {'pages/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'srv cpu':>8} "
        f"{'pages/cpu-s':>12} {'peak conc':>10}"
    )
    for name, row in rows.items():
        print(
            f"{name:44} {row['requests']:>9} {row['pages_per_s']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8} "
            f"{row['server_cpu_share']:>8} {row['pages_per_server_cpu_s']!s:>12} {row.get('peak_concurrency', ''):>10}"
        )
    args.json.write_text(json.dumps({"server_core": server_core, "runs": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


def _has_orjson() -> bool:
    try:
        import orjson  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()

"""speed.py's cpu and latency rows: CPU per page at zero latency against the orjson floor and the
lean Scrapy peer (and, with --against, against another checkout's crawl), a latency-bound crawl,
a crawl that waits.

Rounds alternate floor and crawl, one page and many, so the machine's load weighs on both
sides; the median round is reported (benchmarks/speed.py says what each row means).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from throughput import PY, TOKEN, Sandbox, crawl_args, crawl_env, floor, images, page_list, run, write_seeds

from tests.probes import with_probe

# The answer store (TMAPI_CACHE=auto: on in one process) would answer every round after the
# first from disk: the next round's calls never reach the sandbox (crawl_idle then has no
# wait to measure, startup no first call), and its CPU is not the crawl's over HTTP.
NO_THROTTLE = {"AUTOTHROTTLE_ENABLED": False, "TMAPI_CACHE": False}


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
            order = ["floor_one", "floor_many", "peer_one", "peer_many", "crawl_one", "crawl_many"]
            order += ["crawl_latency", "crawl_idle"]
            if against is not None:
                order[2:2] = ["old_one", "old_many"]
            if r % 2:
                order.reverse()
            for what in order:
                if what.startswith("floor"):
                    size = what.split("_")[1]
                    got[what] = run(floor(fast.url, tmp / f"{size}.json", tmp / f"{what}.jsonl"), crawl_env(fast.url))
                    continue
                if what.startswith("peer"):  # the lean Scrapy peer (benchmarks/scrapy_peer.py)
                    size = what.split("_")[1]
                    peer = [PY, "benchmarks/scrapy_peer.py", fast.url, TOKEN, str(tmp / f"{size}.json")]
                    got[what] = run([*peer, str(tmp / f"{what}.jsonl"), "--lean"], crawl_env(fast.url))
                    if got[what].returncode:
                        raise RuntimeError(f"{what} failed: {got[what].output[-1500:]}")
                    continue
                if what.startswith("old"):
                    assert against is not None
                    fast.reset()
                    seeds_file = tmp / f"cpu-{what.split('_')[1]}.txt"
                    args = crawl_args(seeds_file, tmp / f"{what}.jsonl", {**NO_THROTTLE, **old_settings})
                    got[what] = run(in_checkout(against, args), crawl_env(fast.url), tmp / f"{what}.log")
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
                    probe = with_probe("tests.probes.WaitCpuProbe")
                    settings = {**NO_THROTTLE, "EXTENSIONS": probe, "TMAPI_STATS_FILE": str(tmp / "idle.stats.json")}
                args = crawl_args(tmp / f"{seeds}.txt", tmp / f"{what}.jsonl", settings)
                got[what] = run(args, crawl_env(sandbox.url), tmp / f"{what}.log")
                if got[what].returncode:
                    raise RuntimeError(f"{what} failed: {got[what].output[-1500:]}")
            crawl_page = (got["crawl_many"].cpu - got["crawl_one"].cpu) / (n - 1)
            floor_page = (got["floor_many"].cpu - got["floor_one"].cpu) / (n - 1)
            peer_page = (got["peer_many"].cpu - got["peer_one"].cpu) / (n - 1)
            latency_page = (got["crawl_latency"].cpu - got["crawl_one"].cpu) / (lat_n - 1)
            # The final stats from TMAPI_STATS_FILE (the log shows Scrapy's stats dump at DEBUG only).
            idle_stats = json.loads((tmp / "idle.stats.json").read_text(encoding="utf-8"))
            wait_cpu, wait_wall = idle_stats.get("probe/wait_cpu_us"), idle_stats.get("probe/wait_us")
            if not (wait_cpu and wait_wall):
                raise RuntimeError("crawl_idle: no probe/wait_* stats in its stats file")
            idle_per_s = int(wait_cpu) / int(wait_wall)
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
                    "peer_ms_per_page": peer_page * 1000,
                    "peer_ratio": peer_page / floor_page,
                    "vs_peer": crawl_page / peer_page,
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


def in_checkout(checkout: Path, args: list[str]) -> list[str]:
    """`args` run from `checkout`: its scrapy.cfg, and its tmapi_spiders before the installed
    one (`python -m` puts the working directory first on sys.path). The shell execs the crawl
    in its own process, so wait4 still reads the crawl's CPU."""
    return ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(checkout), *args]


def decoding_before_the_envelope(checkout: Path) -> dict[str, Any]:
    """Settings that let an older checkout read the sandbox's gzip answers.

    The code before the answer-reading rework (473ff35) left Scrapy's HttpCompressionMiddleware at its default
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

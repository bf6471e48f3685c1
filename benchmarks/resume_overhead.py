"""What the answer store (on by default) costs: CPU per page and disk per 1,000 pages.

    .venv/bin/python benchmarks/resume_overhead.py            # about 1 minute on 2 cores
    .venv/bin/python benchmarks/resume_overhead.py --images 60 --reps 5

Each repetition runs, side by side and in a rotating order, real `scrapy crawl image_search`
subprocesses against a sandbox that runs as its own process:

- off:    `-s TMAPI_CACHE=false` (what a run cost before the store was the default);
- store:  the default, into an empty store (every answer fetched, then written);
- replay: the same command again (every answer read from the store, no call made);

each once with the whole list and once with one page, so that start-up is taken out:
CPU per page = (CPU of the big run - CPU of the one-page run) / (pages - 1), process CPU
(user + system, from wait4). The ratio against `off` is per repetition; the table shows
the median repetition and every repetition's ratio (this shared 2-core machine swings by
10-15 % from run to run, benchmarks/RESULTS.md). Disk: the store's files after the big
run, as bytes written (file sizes) and as space taken (allocated blocks, directories
included), per 1,000 pages. The table is printed and written to
benchmarks/results/resume_overhead.json; benchmarks/RESULTS.md "Resume store" quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.throughput import PY, Proc, Sandbox, crawl_env, images, run, write_seeds  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "resume_overhead.json"
SCENARIOS = ("off", "store", "replay")
TOTAL = 400  # 20 pages of 20 items per image


def crawl(seeds: Path, out: Path, store: Path, scenario: str) -> list[str]:
    settings: dict[str, Any] = {
        "LOG_LEVEL": "INFO",
        "TMAPI_PROGRESS_INTERVAL": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "TMAPI_OUTPUT_DIR": str(out.parent / "output"),
        "TMAPI_CACHE_DIR": str(store),
    }
    if scenario == "off":
        settings["TMAPI_CACHE"] = "false"
    args = [PY, "-m", "scrapy", "crawl", "image_search", "-a", f"urls_file={seeds}", "-O", str(out)]
    return args + [arg for key, value in settings.items() for arg in ("-s", f"{key}={value}")]


def disk(store: Path) -> tuple[int, int, int]:
    """(files, bytes in them, bytes allocated for them and their directories)."""
    files = written = allocated = 0
    for root, _dirs, names in os.walk(store):
        allocated += os.stat(root).st_blocks * 512
        for name in names:
            st = os.stat(os.path.join(root, name))
            files += 1
            written += st.st_size
            allocated += st.st_blocks * 512
    return files, written, allocated


def repetition(tmp: Path, sandbox: Sandbox, rep: int, order: list[str], pages: int) -> dict[str, Any]:
    env = crawl_env(sandbox.url)
    cpu: dict[str, dict[str, float]] = {}
    sizes: dict[str, Any] = {}
    stores = {size: tmp / f"store-{rep}-{size}" for size in ("one", "many")}  # store and replay share these
    for scenario in order:
        cpu[scenario] = {}
        for size in ("one", "many"):
            store = stores[size] if scenario != "off" else tmp / f"off-{rep}-{size}"
            out = tmp / f"{scenario}-{size}.jsonl"
            proc: Proc = run(crawl(tmp / f"seeds-{size}.txt", out, store, scenario), env, tmp / f"{scenario}.log")
            if proc.returncode != 0:
                raise RuntimeError(f"{scenario}/{size}: exit {proc.returncode}\n{proc.output[-3000:]}")
            items = sum(1 for _ in open(out, encoding="utf-8"))
            expected = pages * 20 if size == "many" else 20
            if items != expected:
                raise RuntimeError(f"{scenario}/{size}: {items} records, expected {expected}")
            cpu[scenario][size] = proc.cpu
        if scenario == "store":
            sizes = dict(zip(("files", "bytes", "allocated"), disk(stores["many"]), strict=True))
    per_page = {s: (cpu[s]["many"] - cpu[s]["one"]) / (pages - 1) for s in cpu}
    return {"order": order, "cpu_s": cpu, "ms_per_page": {s: v * 1000 for s, v in per_page.items()}, "disk": sizes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60, help="images of 20 pages each (default 60: 1,200 pages)")
    parser.add_argument("--reps", type=int, default=3, help="side-by-side repetitions (default 3)")
    args = parser.parse_args(argv)
    pages = args.images * TOTAL // 20
    started, load = time.time(), os.getloadavg()[0]
    reps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="resume-bench-") as name, Sandbox() as sandbox:
        tmp = Path(name)
        write_seeds(tmp, "seeds-many", images("resume", args.images, TOTAL))
        write_seeds(tmp, "seeds-one", images("resume-one", 1, 20))
        # warm the sandbox: its pages are built once, for every scenario alike
        run(crawl(tmp / "seeds-many.txt", tmp / "warm.jsonl", tmp / "warm", "off"), crawl_env(sandbox.url))
        for rep in range(args.reps):
            # rotate off and store; replay must follow store (it reads what store wrote)
            order = ["off", "store", "replay"] if rep % 2 == 0 else ["store", "replay", "off"]
            reps.append(repetition(tmp, sandbox, rep, order, pages))
    ratios = {s: [round(r["ms_per_page"][s] / r["ms_per_page"]["off"], 3) for r in reps] for s in ("store", "replay")}
    median_rep = sorted(reps, key=lambda r: r["ms_per_page"]["store"] / r["ms_per_page"]["off"])[len(reps) // 2]
    disk_figures = median_rep["disk"]
    result = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
        "seconds": round(time.time() - started),
        "pages": pages,
        "median": {s: round(median_rep["ms_per_page"][s], 3) for s in SCENARIOS},
        "ratios": ratios,
        "ratio_median": {s: statistics.median(v) for s, v in ratios.items()},
        "disk_per_1000_pages": {
            "files": round(disk_figures["files"] * 1000 / pages),
            "bytes_written": round(disk_figures["bytes"] * 1000 / pages),
            "bytes_allocated": round(disk_figures["allocated"] * 1000 / pages),
        },
        "reps": reps,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    return 0


def table(result: dict[str, Any]) -> str:
    m, r, d = result["median"], result["ratio_median"], result["disk_per_1000_pages"]
    rows = [
        ("measure", "store off", "store on (default)", "re-run from the store"),
        ("CPU per page", f"{m['off']:.3f} ms", f"{m['store']:.3f} ms", f"{m['replay']:.3f} ms"),
        (
            "CPU per page vs off (median of reps)",
            "1.00x",
            f"{r['store']:.2f}x {result['ratios']['store']}",
            f"{r['replay']:.2f}x {result['ratios']['replay']}",
        ),
        ("paid calls", "every page", "every page", "none"),
        (
            "disk per 1,000 pages",
            "0",
            f"{d['bytes_written'] / 1e6:.2f} MB written, {d['bytes_allocated'] / 1e6:.2f} MB allocated,"
            f" {d['files']} files",
            "(reads the same)",
        ),
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = ["| " + " | ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    head = (
        f"{result['pages']} pages; {result['machine']}; measured {result['measured_at']} UTC,"
        f" load {result['load_before_after'][0]} -> {result['load_before_after'][1]}, {result['seconds']} s in all"
    )
    return head + "\n\n" + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

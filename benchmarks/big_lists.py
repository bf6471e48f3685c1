"""Big seed lists: what a list of a million lines costs before and after the paid calls.

For each list (text, and the same list as a catalogue CSV), one `scrapy crawl`
process against the sandbox in its own process (no latency), with TMAPI_MAX_CALLS=30 so
the cap comes at once and the whole rest of the list is what the stop has to list:

- time to the first call: from starting the process to the sandbox's record of the call;
- peak RSS of the crawl process (wait4), the stop's pass over the rest of the list included;
- time from the cap to exit: from the sandbox's record of the last call to the process's end
  (the images not started are counted and written to `<feed>.not-started.txt` in that time);

then `scrapy seed` of the same list into a private redis-server: lines a second, start-up
included. The lists come from benchmarks/big_list_gen.py (30 % spelling variants, 1 %
hostile lines).

    .venv/bin/python benchmarks/big_lists.py                 # 1,000,000 lines, text and CSV
    .venv/bin/python benchmarks/big_lists.py --lines 200000 --formats text
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from big_list_gen import write_csv, write_text
from throughput import PY, REPO, RedisServer, Sandbox, crawl_env

CAP = 30
GOALS = {"first_call_s": 2.0, "peak_rss_mb": 250.0, "cap_to_exit_s": 10.0, "seed_lines_per_s": 50_000}


def crawl(seeds: Path, out: Path, sandbox: Sandbox) -> dict[str, Any]:
    args = [PY, "-m", "scrapy", "crawl", "image_search", "-O", str(out), "-a", f"urls_file={seeds}"]
    for key, value in {"TMAPI_MAX_CALLS": CAP, "TMAPI_CACHE": "false", "LOG_LEVEL": "INFO"}.items():
        args += ["-s", f"{key}={value}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log")
    sandbox.reset()
    with open(log, "w", encoding="utf-8") as f:
        began = time.time()
        proc = subprocess.Popen(args, cwd=REPO, env=crawl_env(sandbox.url), stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.time()
    calls = sandbox.calls()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 5) or not calls:
        raise RuntimeError(f"crawl exit {code}: {log.read_text(encoding='utf-8')[-2000:]}")
    summary = json.loads(out.with_name(out.stem + ".summary.json").read_text(encoding="utf-8"))
    return {
        "exit": code,
        "first_call_s": round(calls[0]["time"] - began, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cap_to_exit_s": round(ended - calls[-1]["time"], 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "calls": len(calls),
        "images": summary["totals"]["images"],
        "images_not_started": summary["totals"].get("images_not_started", 0),
    }


def seed(seeds: Path, lines: int, redis_url: str, job: str) -> dict[str, Any]:
    args = [PY, "-m", "scrapy", "seed", str(seeds), "-s", f"REDIS_URL={redis_url}", "-s", f"TMAPI_JOB={job}"]
    began = time.monotonic()
    done = subprocess.run(args, cwd=REPO, env=crawl_env("http://127.0.0.1:9"), capture_output=True, text=True)
    took = time.monotonic() - began
    if done.returncode:
        raise RuntimeError(f"scrapy seed exit {done.returncode}: {done.stderr[-1000:]}")
    return {"seconds": round(took, 2), "seed_lines_per_s": round(lines / took), "said": done.stdout.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--formats", default="text,csv", help="text, csv or both (comma-separated)")
    parser.add_argument("--dir", help="keep the lists and outputs here")
    args = parser.parse_args(argv)
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="big-lists-"))
    tmp.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    results: dict[str, Any] = {"lines": args.lines, "load_before": round(load, 2)}
    with Sandbox("--latency", "0") as sandbox, RedisServer() as redis:
        for fmt in args.formats.split(","):
            path = tmp / f"list-{args.lines}.{'txt' if fmt == 'text' else fmt}"
            if not path.exists():
                (write_text if fmt == "text" else write_csv)(path, args.lines)
            try:
                row = crawl(path, tmp / f"out-{fmt}" / "products.jsonl", sandbox)
                row.update(seed(path, args.lines, redis.url, f"big-{fmt}-{time.time_ns()}"))
            except RuntimeError as exc:
                row = {"error": str(exc).splitlines()[-1][:300]}
            results[fmt] = row
            print(f"{fmt}: {row}", file=sys.stderr, flush=True)
    results["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=1))
    for fmt in args.formats.split(","):
        row = results[fmt]
        if "error" in row:
            print(f"| {fmt} | {row['error']} |")
            continue
        cells = [
            f"{row['first_call_s']} s",
            f"{row['peak_rss_mb']} MB",
            f"{row['cap_to_exit_s']} s",
            f"{row['seed_lines_per_s']:,}/s",
        ]
        print(f"| {args.lines:,} lines, {fmt} | " + " | ".join(cells) + f" | cpu {row['cpu_s']} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU per page as instructions (valgrind callgrind): the crawl beside the floor, the Scrapy peers, variants.

    .venv/bin/python benchmarks/instructions.py                       # the crawl, the two Scrapy peers, the floor
    .venv/bin/python benchmarks/instructions.py --variant ci20=CONCURRENT_ITEMS=20 \\
        --variant uvloop=ASYNCIO_EVENT_LOOP=uvloop.Loop               # each variant beside the default

CPU time on a shared VM swings by 10-15 % from run to run, more than most single changes
to the hot path save. Instructions counted by callgrind repeat to ~0.05 %: the tool to
decide whether a change helps. They are not time (cache misses and system calls are not
in them: the garbage collector's cost shows far smaller than its CPU time, and uvloop saves
instructions but no measurable CPU time), so a change is kept when it saves both, and
benchmarks/throughput.py stays the measure of record.

Each row: a one-image run (20 pages) and an 11-image run (220 pages) under callgrind,
both at once; instructions per page = the difference / 200 (start-up taken out). The
floor is benchmarks/floor_client.py fetching the same pages; the Scrapy peer is
benchmarks/scrapy_peer.py (stock Scrapy, orjson both ways): what Scrapy alone costs for the
same job; `--lean` its best version, `--lean --checked` that doing the crawl's own checks.
The crawl runs with the answer store off, as speed.py's CPU rows do (add
`--variant store=TMAPI_CACHE=auto` for its cost). About 70 s per row on 2 cores.
Needs valgrind (`apt install valgrind`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.throughput import (  # noqa: E402
    PY,
    TOKEN,
    Sandbox,
    crawl_args,
    crawl_env,
    floor,
    images,
    page_list,
    write_seeds,
)

PAGES_ONE, PAGES_MANY = 20, 220
# As speed.py's CPU rows: no AutoThrottle delays, and the answer store off (its cost is a
# variant: with it on, a run writes every answer to disk, which neither peer does).
CRAWL = {"AUTOTHROTTLE_ENABLED": False, "TMAPI_CACHE": False}
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
# The Scrapy peers: stock, lean, and lean doing the crawl's own checks (benchmarks/scrapy_peer.py).
PEERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stock", ()),
    ("lean", ("--lean",)),
    ("checked", ("--lean", "--checked")),
)


def instructions(args: list[str], env: dict[str, str], out: Path) -> int:
    """Instructions the command ran, counted by callgrind."""
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.callgrind", *args]
    done = subprocess.run(command, cwd=REPO, env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    found = _REFS.search(done.stderr)
    if done.returncode or not found:
        raise RuntimeError(f"{args[2:5]} under callgrind failed ({done.returncode}): {done.stderr.strip()[-600:]}")
    return int(found.group(1).replace(",", ""))


def per_page(one: list[str], many: list[str], env: dict[str, str], tmp: Path, name: str) -> dict[str, float]:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(instructions, one, env, tmp / f"{name}-one")
        second = pool.submit(instructions, many, env, tmp / f"{name}-many")
        i_one, i_many = first.result(), second.result()
    return {"one": i_one, "many": i_many, "per_page": (i_many - i_one) / (PAGES_MANY - PAGES_ONE)}


def peer(base_url: str, pages: Path, out: Path, *flags: str) -> list[str]:
    return [PY, "benchmarks/scrapy_peer.py", base_url, TOKEN, str(pages), str(out), *flags]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variant", action="append", default=[], metavar="NAME=SETTING=VALUE[,SETTING=VALUE]", help="crawl settings"
    )
    args = parser.parse_args(argv)
    if not shutil.which("valgrind"):
        parser.error("valgrind is not installed (apt install valgrind)")
    variants: dict[str, dict[str, str]] = {"default": {}}
    for spec in args.variant:
        name, _, settings = spec.partition("=")
        if not name or "=" not in settings:
            parser.error(f"--variant {spec!r}: expected NAME=SETTING=VALUE")
        variants[name] = dict(pair.split("=", 1) for pair in settings.split(","))
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="tmapi-instr-") as tmpdir, Sandbox() as sandbox:
        tmp = Path(tmpdir)
        env = crawl_env(sandbox.url)
        seeds, pages = {}, {}
        for name, count in (("one", PAGES_ONE // 20), ("many", PAGES_MANY // 20)):
            urls = images(f"instr-{name}", count, 400)
            seeds[name] = write_seeds(tmp, f"instr-{name}", urls)
            pages[name] = tmp / f"pages-{name}.json"
            pages[name].write_text(json.dumps(page_list(urls, 400)), encoding="utf-8")
            warm = floor(sandbox.url, pages[name], tmp / "warm.jsonl")
            subprocess.run(warm, cwd=REPO, env=env, check=True, capture_output=True)  # the sandbox builds its items
        floor_runs = [floor(sandbox.url, pages[n], tmp / f"floor-{n}.jsonl") for n in ("one", "many")]
        floor_row = per_page(floor_runs[0], floor_runs[1], env, tmp, "floor")
        peers = {}
        for who, flags in PEERS:
            runs = [peer(sandbox.url, pages[n], tmp / f"{who}-{n}.jsonl", *flags) for n in ("one", "many")]
            peers[who] = per_page(runs[0], runs[1], env, tmp, who)
        for who in ("floor", *(who for who, _ in PEERS)):
            written = sum(1 for _ in open(tmp / f"{who}-many.jsonl", encoding="utf-8"))
            if written != PAGES_MANY * 20:
                raise RuntimeError(f"{who}: {written} records written, expected {PAGES_MANY * 20}")
        for name, settings in variants.items():
            runs = [crawl_args(seeds[n], tmp / f"{name}-{n}.jsonl", {**CRAWL, **settings}) for n in ("one", "many")]
            rows.append((name, per_page(runs[0], runs[1], env, tmp, name)))
            written = sum(1 for _ in open(tmp / f"{name}-many.jsonl", encoding="utf-8"))
            if written != PAGES_MANY * 20:
                raise RuntimeError(f"{name}: {written} records written, expected {PAGES_MANY * 20}")
            print(f"  {name}: {rows[-1][1]}", file=sys.stderr, flush=True)
    base = rows[0][1]["per_page"]
    print("| crawl | instructions per page | vs default | vs floor |")
    print("| --- | --- | --- | --- |")
    for name, row in rows:
        settings = ", ".join(f"{k}={v}" for k, v in variants[name].items()) or "project settings"
        print(
            f"| {name} ({settings}) | {row['per_page'] / 1e6:.2f} M | {row['per_page'] / base - 1:+.1%}"
            f" | {row['per_page'] / floor_row['per_page']:.2f}x |"
        )
    for who, flags in PEERS:
        page = peers[who]["per_page"]
        flag = "".join(f" {f}" for f in flags)
        print(
            f"| Scrapy peer, {who} (benchmarks/scrapy_peer.py{flag}) | {page / 1e6:.2f} M | {page / base - 1:+.1%}"
            f" | {page / floor_row['per_page']:.2f}x |"
        )
    print(f"| floor (benchmarks/floor_client.py) | {floor_row['per_page'] / 1e6:.2f} M | | 1.00x |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

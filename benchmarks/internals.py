"""Does a replacement of a Scrapy internal pay for itself? Each one on and off, side by side.

    .venv/bin/python benchmarks/internals.py --instructions      # callgrind rows (~70 s each on 2 cores)
    .venv/bin/python benchmarks/internals.py --cpu --reps 5      # CPU seconds per page, median of the reps
    .venv/bin/python benchmarks/internals.py --gc --variant no-gc   # CPU inside the garbage collector

Issue 13 kept a replacement of Scrapy's own machinery only if it saves at least 15 % of the
crawl's CPU per page: below that, a Scrapy upgrade that changes the internal it leans on
costs more than the CPU saved (the plan's limit, 16 pages/s, uses a few percent of a core).
The variants are settings only, so the same checkout measures every side:

- `itemproc` off: ITEM_PROCESSOR back to Scrapy's ItemPipelineManager (CoreStats and
  FeedExporter then stay on the item_scraped signal, as Scrapy's do);
- `stats` off: STATS_CLASS back to Scrapy's MemoryStatsCollector;
- `spidermw` off: Scrapy's StartSpiderMiddleware instead of StartRequestsMiddleware;
- `gc` off: TMAPI_GC_THRESHOLD=0, TMAPI_GC_FREEZE=False (Python's collector as it is).

Results and decisions: benchmarks/results/internals.md. Only ItemProcessor was kept; the
other three are gone from this checkout, so their variants now measure nothing (run the
script in an export of commit 76ebc23 to repeat them: `git archive 76ebc23 | tar -x -C DIR`,
then `cd DIR && <this venv>/bin/python benchmarks/internals.py ...`). Instructions
(callgrind) repeat to ~0.05 % but leave out the garbage collector's cache misses, so the
decision reads both, and `--gc` times the collector itself.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.instructions import per_page  # noqa: E402
from benchmarks.throughput import Sandbox, crawl_args, crawl_env, floor, images, page_list, run, write_seeds  # noqa: E402

STOCK_SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
OFF: dict[str, dict[str, Any]] = {
    "itemproc": {"ITEM_PROCESSOR": "scrapy.pipelines.ItemPipelineManager"},
    "stats": {"STATS_CLASS": "scrapy.statscollectors.MemoryStatsCollector"},
    "spidermw": {"SPIDER_MIDDLEWARES": json.dumps(STOCK_SPIDER_MIDDLEWARES)},
    "gc": {"TMAPI_GC_THRESHOLD": 0, "TMAPI_GC_FREEZE": False},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    **{f"no-{name}": settings for name, settings in OFF.items()},
    "stock": {k: v for settings in OFF.values() for k, v in settings.items()},
}
PAGES_ONE = 20


class GcTimer:
    """An extension (`--gc`): the process CPU time spent inside the garbage collector while
    the engine runs, from gc.callbacks, written to TMAPI_BENCH_GC_OUT when it stops. CPU
    time, not wall time: other work on the machine does not inflate it."""

    def __init__(self, out: str) -> None:
        self.out, self.spent, self.collections, self.started = out, 0.0, 0, 0.0

    @classmethod
    def from_crawler(cls, crawler: Any) -> GcTimer:
        from scrapy import signals

        timer = cls(crawler.settings["TMAPI_BENCH_GC_OUT"])
        crawler.signals.connect(timer.engine_started, signal=signals.engine_started)
        crawler.signals.connect(timer.engine_stopped, signal=signals.engine_stopped)
        return timer

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.process_time()
        else:
            self.spent += time.process_time() - self.started
            self.collections += 1

    def engine_started(self) -> None:
        gc.callbacks.append(self._callback)

    def engine_stopped(self) -> None:
        gc.callbacks.remove(self._callback)
        Path(self.out).write_text(json.dumps({"gc_cpu_s": self.spent, "collections": self.collections}))


def _settings(name: str) -> dict[str, Any]:
    return {"AUTOTHROTTLE_ENABLED": False, **VARIANTS[name]}


def instruction_rows(names: list[str], tmp: Path, sandbox: Sandbox, many_images: int) -> dict[str, float]:
    """Instructions per page of each variant (callgrind, one image and `many_images` images)."""
    env = crawl_env(sandbox.url)
    seeds = _seeds(tmp, sandbox, env, many_images)
    out: dict[str, float] = {}
    for name in names:
        runs = [crawl_args(seeds[n], tmp / f"{name}-{n}.jsonl", _settings(name)) for n in ("one", "many")]
        row = per_page(runs[0], runs[1], env, tmp, name)
        # per_page divides by 200 (its own 20/220 pages): rescale to this run's page count
        out[name] = row["per_page"] * 200 / (many_images * 20 - PAGES_ONE)
        _check(tmp / f"{name}-many.jsonl", many_images * 400)
        print(f"  {name}: {out[name] / 1e6:.2f} M instructions per page", file=sys.stderr, flush=True)
    return out


def cpu_rows(names: list[str], tmp: Path, sandbox: Sandbox, many_images: int, reps: int) -> dict[str, float]:
    """Median CPU seconds per page of each variant, the variants interleaved in every rep."""
    env = crawl_env(sandbox.url)
    seeds = _seeds(tmp, sandbox, env, many_images)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        for name in names:
            one = run(crawl_args(seeds["one"], tmp / f"{name}-one.jsonl", _settings(name)), env)
            many = run(crawl_args(seeds["many"], tmp / f"{name}-many.jsonl", _settings(name)), env)
            if one.returncode or many.returncode:
                raise RuntimeError(f"{name}: crawl failed ({one.returncode}, {many.returncode})")
            _check(tmp / f"{name}-many.jsonl", many_images * 400)
            samples[name].append((many.cpu - one.cpu) / (many_images * 20 - PAGES_ONE))
        shown = ", ".join(f"{n} {s[-1] * 1000:.2f} ms" for n, s in samples.items())
        print(f"  rep {rep + 1}: {shown}", file=sys.stderr, flush=True)
    return {name: statistics.median(values) for name, values in samples.items()}


def gc_rows(names: list[str], tmp: Path, sandbox: Sandbox, many_images: int, reps: int) -> dict[str, float]:
    """Median CPU seconds per page spent in the garbage collector (GcTimer), per variant."""
    from tmapi_spiders import settings as project

    env = crawl_env(sandbox.url)
    seeds = _seeds(tmp, sandbox, env, many_images)
    extensions = json.dumps({**project.EXTENSIONS, "benchmarks.internals.GcTimer": 1000})
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(reps):
        for name in names:
            spent = {}
            for n in ("one", "many"):
                out = tmp / f"gc-{name}-{n}.json"
                settings = {**_settings(name), "EXTENSIONS": extensions, "TMAPI_BENCH_GC_OUT": str(out)}
                done = run(crawl_args(seeds[n], tmp / f"{name}-{n}.jsonl", settings), env)
                if done.returncode:
                    raise RuntimeError(f"{name}: crawl failed ({done.returncode})")
                spent[n] = json.loads(out.read_text())["gc_cpu_s"]
            samples[name].append((spent["many"] - spent["one"]) / (many_images * 20 - PAGES_ONE))
        shown = ", ".join(f"{n} {s[-1] * 1000:.3f} ms" for n, s in samples.items())
        print(f"  gc: {shown}", file=sys.stderr, flush=True)
    return {name: statistics.median(values) for name, values in samples.items()}


def _seeds(tmp: Path, sandbox: Sandbox, env: dict[str, str], many_images: int) -> dict[str, Path]:
    seeds = {}
    for name, count in (("one", 1), ("many", many_images)):
        urls = images(f"internals-{name}", count, 400)
        seeds[name] = write_seeds(tmp, f"internals-{name}", urls)
        pages = tmp / f"pages-{name}.json"
        pages.write_text(json.dumps(page_list(urls, 400)), encoding="utf-8")
        run(floor(sandbox.url, pages, tmp / "warm.jsonl"), env)  # the sandbox builds its items once
    return seeds


def _check(feed: Path, expected: int) -> None:
    written = sum(1 for _ in open(feed, encoding="utf-8"))
    if written != expected:
        raise RuntimeError(f"{feed.name}: {written} records written, expected {expected}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instructions", action="store_true", help="callgrind instructions per page")
    parser.add_argument("--cpu", action="store_true", help="CPU seconds per page (wait4 rusage)")
    parser.add_argument("--gc", action="store_true", help="CPU seconds per page inside the garbage collector")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="default: all")
    parser.add_argument("--images", type=int, default=0, help="images of 20 pages (default 11 callgrind, 30 CPU)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    if not (args.instructions or args.cpu or args.gc):
        parser.error("say --instructions, --cpu, --gc or several")
    names = ["default", *[n for n in args.variant or VARIANTS if n != "default"]]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tmapi-internals-") as tmpdir, Sandbox() as sandbox:
        tmp = Path(tmpdir)
        if args.instructions:
            results["instructions"] = instruction_rows(names, tmp, sandbox, args.images or 11)
        if args.cpu:
            results["cpu"] = cpu_rows(names, tmp, sandbox, args.images or 30, max(1, args.reps))
        if args.gc:
            results["gc"] = gc_rows(names, tmp, sandbox, args.images or 30, max(1, args.reps))
    print("| crawl | " + " | ".join(f"{k} per page | vs default" for k in results) + " |")
    print("| --- |" + " --- | --- |" * len(results))
    for name in names:
        cells = []
        for kind, rows in results.items():
            value, base = rows[name], rows["default"]
            shown = f"{value / 1e6:.2f} M" if kind == "instructions" else f"{value * 1000:.3f} ms"
            cells.append(f"{shown} | {value / base - 1:+.1%}" if base else f"{shown} | ")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

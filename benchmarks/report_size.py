"""How big and how fast is the HTML report? File size, build time, and in headless Chromium:
first paint, first cards, a filter, and frame times while scrolling to the bottom.

Crawls the bundled sandbox once (examples/images.txt, the README's demo), builds its report,
then multiplies the demo's records into a synthetic feed of `--records` records (`--images`
query images, every record varied: id, title, price, sales, badges) and builds that one too.
Both reports are opened in headless Chromium (tests/browser.py), offline. Prints a Markdown
table (benchmarks/RESULTS.md, "HTML report"). Usage:

    .venv/bin/python benchmarks/report_size.py [--records 100000] [--images 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.browser import Browser, find_chromium, open_report  # noqa: E402
from tmapi_spiders import report  # noqa: E402
from tmapi_spiders.crawl.outputs import write_whole  # noqa: E402

SCROLL_STEPS = 150  # scroll steps of 700 px, one per frame


def demo_feed(out: Path) -> Path:
    """The README's demo: the sandbox crawled for examples/images.txt."""
    products = out / "products.jsonl"
    cmd = [sys.executable, "-m", "scrapy", "crawl", "image_search", "-a", "urls_file=examples/images.txt"]
    cmd += ["-s", "TMAPI_SANDBOX=true", "-s", "LOG_LEVEL=WARNING", "-O", str(products)]
    subprocess.run(cmd, cwd=REPO, check=True)
    return products


def synthetic_feed(demo: Path, out: Path, records: int, images: int) -> Path:
    """`records` records over `images` query images, each a demo record with its fields varied."""
    base = [orjson.loads(line) for line in demo.read_bytes().splitlines() if line.strip()]
    per_image = max(1, records // images)
    path = out / "synthetic.jsonl"
    with open(path, "wb") as f:
        for i in range(records):
            r = copy.deepcopy(base[i % len(base)])
            image, rank = divmod(i, per_image)
            item_id = 700_000_000_000 + i
            factor = 1 + (i % 17) / 10
            r.update(
                item_id=item_id,
                product_url=f"https://detail.1688.com/offer/{item_id}.html",
                title=f"{r['title']} v{i % 97}",
                price=f"{float(r['price']) * factor:.2f}",
                query_image_url=f"https://cbu01.alicdn.com/img/ibank/bench/{image}.jpg",
                search_image_url=f"https://cbu01.alicdn.com/img/ibank/bench/{image}.jpg",
                rank=rank + 1,
                page=rank // 20 + 1,
                super_new_product=i % 11 == 0,
            )
            for tier in r.get("quantity_prices") or ():
                tier["price"] = f"{float(tier['price']) * factor:.2f}"
            r["sale_info"]["sale_quantity"] = (i * 7919) % 50_000
            r["shop_info"]["is_factory"] = i % 3 == 0
            f.write(orjson.dumps(r) + b"\n")
    return path


def build(products: Path) -> tuple[Path, float, int]:
    """The report of a feed, timed: path, seconds, bytes."""
    started = time.perf_counter()
    page = report.build(products)
    out = report.beside(products, report.SUFFIX)
    write_whole(out, (page,))
    return out, time.perf_counter() - started, out.stat().st_size


SCROLL = f"""new Promise(resolve => {{
  const frames = []; let last = performance.now(), n = 0;
  function step(now) {{
    frames.push(now - last); last = now; window.scrollBy(0, 700);
    if (++n < {SCROLL_STEPS}) requestAnimationFrame(step); else resolve(frames);
  }}
  requestAnimationFrame(step);
}})"""

FILTER = """new Promise(resolve => {
  const t = performance.now(), box = document.getElementById('badge-factory');
  box.checked = true; box.dispatchEvent(new Event('change', {bubbles: true}));
  setTimeout(() => requestAnimationFrame(() => resolve(performance.now() - t)), 0);
})"""


async def measure(path: Path) -> dict[str, Any]:
    """Open the report cold (a new browser) and read the page's own timings."""
    async with Browser(width=1280, height=900) as browser:
        started = time.perf_counter()
        page = await open_report(browser, path)
        wall = time.perf_counter() - started
        await page.wait_for("performance.getEntriesByType('paint').some(p => p.name === 'first-contentful-paint')")
        paints = await page.js(
            "Object.fromEntries(performance.getEntriesByType('paint').map(p => [p.name, p.startTime]))"
        )
        ready = await page.js("window.reportReady")
        timing = await page.js("window.reportTiming")
        nodes = await page.js("document.getElementsByTagName('*').length")
        cards = await page.js("document.querySelectorAll('.card').length")
        frames = sorted(await page.js(SCROLL))
        sections = await page.js("document.querySelectorAll('section.image').length")
        await page.js("window.scrollTo(0, 0)")
        filtered = await page.js(FILTER)
        errors = list(page.errors)
        await page.close()
    return {
        "open_s": wall,
        "fcp_ms": paints.get("first-contentful-paint"),
        "ready_ms": ready,
        "timing": timing,
        "nodes": nodes,
        "cards": cards,
        "frame_p50": statistics.median(frames),
        "frame_p95": frames[int(len(frames) * 0.95) - 1],
        "frame_max": frames[-1],
        "sections_after_scroll": sections,
        "filter_ms": filtered,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--keep", type=Path, help="write the feeds and reports here (default: a temp dir, removed)")
    args = parser.parse_args()
    if find_chromium() is None:
        raise SystemExit("error: no chromium binary (Debian: apt-get install chromium)")
    out = args.keep or Path(tempfile.mkdtemp(prefix="report-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        demo = demo_feed(out)
        synthetic = synthetic_feed(demo, out, args.records, args.images)
        rows = []
        for name, feed in (("demo", demo), (f"{args.records:,} records / {args.images:,} images", synthetic)):
            path, seconds, size = build(feed)
            m = asyncio.run(measure(path))
            rows.append((name, feed.stat().st_size, size, seconds, m))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    print(
        "| feed | feed size | report size | build | first paint | first cards | all images loaded | DOM nodes | "
        "scroll frame p50 / p95 / max | filter | console errors |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, feed_size, size, seconds, m in rows:
        print(
            f"| {name} | {feed_size / 1e6:.1f} MB | {size / 1e6:.1f} MB | {seconds:.2f} s | {m['fcp_ms']:.0f} ms"
            f" | {m['ready_ms']:.0f} ms | {m['timing']['rest']:.0f} ms | {m['nodes']:,}"
            f" | {m['frame_p50']:.1f} / {m['frame_p95']:.1f} /"
            f" {m['frame_max']:.1f} ms | {m['filter_ms']:.0f} ms | {len(m['errors'])} |"
        )
    print(f"\nbuilder peak RSS (this process, both builds): {peak:.0f} MB")
    for name, _, _, _, m in rows:
        print(
            f"{name}: {m['cards']} cards at first, {m['sections_after_scroll']} image sections after "
            f"{SCROLL_STEPS} scroll steps of 700 px, page opened in {m['open_s']:.2f} s (browser start excluded);"
            f" script started {m['timing']['start']:.0f} ms, data parsed {m['timing']['parsed']:.0f} ms,"
            f" filtered {m['timing']['computed']:.0f} ms, cards in {m['timing']['ready']:.0f} ms,"
            f" every image's data in {m['timing']['rest']:.0f} ms"
        )


if __name__ == "__main__":
    main()

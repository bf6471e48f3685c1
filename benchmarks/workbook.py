"""How long does the sourcing workbook take to build, how big is it, how much memory does it need?

Feeds `--records` synthetic product records (shaped like the sandbox's: tests/report_data.py's
real sandbox record, varied per offer: id, title, price tiers, sales, badges, one of
`--suppliers` suppliers; a seed spreadsheet's `input` and a `converted` USD price on each) to
the `xlsx` feed exporter (tmapi_spiders/spreadsheets/exporter.py) and, as the peer, to the JSON Lines
exporter of the same records. Each runs in its own process, so each peak RSS is its own; a
third process only generates the records, and its time and RSS are the baseline taken off.
Prints a Markdown table (benchmarks/RESULTS.md, "Sourcing workbook"). Usage:

    .venv/bin/python benchmarks/workbook.py [--records 100000] [--images 1000] [--suppliers 3000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.report_data import record  # noqa: E402
from tests.unit.test_sourcing import converted  # noqa: E402

RATE = 0.1385


def records(n: int, images: int, suppliers: int) -> Iterator[dict[str, Any]]:
    """`n` records over `images` query images: one deep copy per image, then a shallow variant per offer."""
    per_image = max(1, n // images)
    made = 0
    for i in range(images):
        query = f"https://cbu01.alicdn.com/img/ibank/bench-{i}.jpg"
        base = record(query, rank=1)
        base["input"] = {"sku": f"SKU-{i:05d}", "name": f"Product {i}", "qty": 100 + i % 50, "note": None}
        base["input_row"] = i + 2
        shop = base["shop_info"]
        for rank in range(1, per_image + 1):
            if made == n:
                return
            k = i * per_image + rank
            price = f"{(k * 37) % 9000 / 100 + 1:.2f}"
            member = (k * 7919) % suppliers
            r = {
                **base,
                "item_id": 700_000_000_000 + k,
                "product_url": f"https://detail.1688.com/offer/{700_000_000_000 + k}.html",
                "title": f"Bench offer {k} of image {i}",
                "price": price,
                "quantity_begin": 1 + k % 10,
                "quantity_prices": [
                    {"begin_num": str(1 + k % 10), "end_num": "99", "price": price},
                    {"begin_num": "100", "end_num": "", "price": f"{float(price) * 0.9:.2f}"},
                ],
                "sale_info": {**base["sale_info"], "sale_quantity": (k * 131) % 20000},
                "shop_info": {
                    **shop,
                    "member_id": f"b2b-{member}",
                    "company_name": f"Supplier {member} Co.",
                    "is_factory": member % 3 == 0,
                    "tp_member": member % 2 == 0,
                    "tp_year": member % 12,
                },
                "rank": rank,
                "page": (rank - 1) // 20 + 1,
            }
            made += 1
            yield converted(r, RATE)


def one(kind: str, n: int, images: int, suppliers: int, out: Path) -> dict[str, Any]:
    """Run one kind in this process: generate only, or write the records with one exporter."""
    from tmapi_spiders.crawl.exporters import FastJsonLinesItemExporter
    from tmapi_spiders.items import ProductItem
    from tmapi_spiders.spreadsheets.exporter import XlsxItemExporter

    started, cpu = time.perf_counter(), time.process_time()
    if kind == "generate":
        for r in records(n, images, suppliers):
            ProductItem(r)
    else:
        with open(out, "wb") as f:
            exporter = XlsxItemExporter(f) if kind == "xlsx" else FastJsonLinesItemExporter(f, encoding="utf-8")
            exporter.start_exporting()
            for r in records(n, images, suppliers):
                exporter.export_item(ProductItem(r))
            exporter.finish_exporting()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    size = out.stat().st_size if kind != "generate" else 0
    return {
        "seconds": seconds,
        "cpu": cpu,
        "bytes": size,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--suppliers", type=int, default=3000)
    parser.add_argument("--one", choices=("generate", "jsonl", "xlsx"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.records, args.images, args.suppliers, Path(args.out or "/dev/null"))))
        return
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("generate", "jsonl", "xlsx"):
            cmd = [sys.executable, __file__, "--one", kind, "--out", str(Path(tmp) / f"feed.{kind}")]
            cmd += ["--records", str(args.records), "--images", str(args.images), "--suppliers", str(args.suppliers)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[kind] = json.loads(done.stdout)
    base = results["generate"]
    rows = {}
    for kind in ("jsonl", "xlsx"):
        r = results[kind]
        rows[kind] = (
            r["seconds"] - base["seconds"],
            r["cpu"] - base["cpu"],
            r["bytes"] / 1e6,
            r["peak_mb"] - base["peak_mb"],
            r["peak_mb"],
        )
    python = sys.version.split()[0]
    print(f"{args.records:,} offers, {args.images:,} images, {args.suppliers:,} suppliers (Python {python})")
    print(
        f"record generation alone (taken off): {base['seconds']:.2f} s ({base['cpu']:.2f} s CPU),"
        f" peak RSS {base['peak_mb']:.0f} MB\n"
    )
    print("| feed | build time (s) | CPU time (s) | file size (MB) | memory above generation (MB) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, label in (("jsonl", "JSON Lines (peer)"), ("xlsx", "sourcing workbook")):
        t, c, mb, extra, peak = rows[kind]
        print(f"| {label} | {t:.2f} | {c:.2f} | {mb:.1f} | {extra:.0f} | {peak:.0f} |")
    j, x = rows["jsonl"], rows["xlsx"]
    print(
        f"| ratio xlsx / jsonl | {x[0] / j[0]:.1f}x | {x[1] / j[1]:.1f}x | {x[2] / j[2]:.2f}x | | {x[4] / j[4]:.2f}x |"
    )


if __name__ == "__main__":
    main()

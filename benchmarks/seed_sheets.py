"""Seed start-up from a spreadsheet (CSV, XLSX) beside a text list of the same images.

    .venv/bin/python benchmarks/seed_sheets.py                       # 1,000,000 rows each
    .venv/bin/python benchmarks/seed_sheets.py --rows 100000 --xlsx-rows 50000

Writes, in a temporary directory, a text list of N image URLs, a CSV of the same N rows
(sku, name, my_price, image_url) and an XLSX of --xlsx-rows rows (openpyxl write_only),
then reads each with the crawl's own seed reader (`JobConfig.read_seeds`, what the
spider's start() and `scrapy seed` iterate), each in a fresh process:

- first seed: seconds from asking for the entries to the first Seed (what a crawl waits for
  once its list is checked);
- whole list: seconds to read every row, and rows per second (what the check before the
  worker pushing seeds reads, and what `scrapy seed` reads);
- peak memory (ru_maxrss) of the reading process: a streamed list stays flat.

The XLSX is read twice: as openpyxl's write_only mode writes it (no `<dimension>` element,
so openpyxl's read-only mode parses the whole sheet once to size it when the workbook is
opened: the first seed waits for that), and with the `<dimension ref="A1:D..."/>` that
Excel and LibreOffice write.

The table gives each figure and its ratio to the text list.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

URL = "https://cbu01.alicdn.com/img/ibank/O1CN01bench{:07d}_!!3367999730-0-cib.jpg"


def row(n: int) -> tuple[str, str, float, str]:
    return (f"S-{n:07d}", f"Product {n} 手机壳", round(1 + (n % 997) / 10, 2), URL.format(n))


def write_text(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(URL.format(n) + "\n" for n in range(rows))


def write_csv(path: Path, rows: int) -> None:
    import csv

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("sku", "name", "my_price", "image_url"))
        writer.writerows(row(n) for n in range(rows))


def write_xlsx(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Products")
    sheet.append(("sku", "name", "my_price", "image_url"))
    for n in range(rows):
        sheet.append(row(n))
    workbook.save(path)


def add_dimension(path: Path, rows: int) -> Path:
    """A copy of an openpyxl write_only workbook with the `<dimension ref=...>` element Excel and
    LibreOffice write before the rows: openpyxl's read-only mode takes a sheet's size from it,
    and without it parses the whole sheet once when the workbook is opened."""
    import shutil
    import zipfile

    target = path.with_name(path.stem + "-dimension.xlsx")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                copy.writestr(info, source.read(info))
                continue
            with source.open(info) as reader, copy.open(info.filename, "w", force_zip64=True) as writer:
                head = reader.read(4096)
                assert b"<sheetViews>" in head and b"<dimension" not in head
                dimension = f'<dimension ref="A1:D{rows + 1}"/>'.encode()
                writer.write(head.replace(b"<sheetViews>", dimension + b"<sheetViews>", 1))
                shutil.copyfileobj(reader, writer, 1 << 20)
    return target


def read_one(path: str) -> dict[str, Any]:
    """In a fresh process: the crawl's seed reader over `path`."""
    from tmapi_spiders.crawl.config import job_config
    from tmapi_spiders.crawl.seeds import Seed

    config = job_config({"urls_file": path})
    started = time.perf_counter()
    first = None
    seeds = bad = 0
    for entry in config.read_seeds().entries:
        if isinstance(entry, Seed):
            seeds += 1
            if first is None:
                first = time.perf_counter() - started
        else:
            bad += 1
    whole = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"first_seed_s": first, "whole_s": whole, "seeds": seeds, "bad": bad, "peak_mib": peak_kib / 1024}


def measure(path: Path) -> dict[str, Any]:
    code = f"import json, sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.seed_sheets import read_one; "
    code += f"print(json.dumps(read_one({str(path)!r})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    result["size_mib"] = path.stat().st_size / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the text list and the CSV")
    parser.add_argument("--xlsx-rows", type=int, default=1_000_000, help="rows of the XLSX")
    opts = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="seed-sheets-") as tmp:
        cases = [
            ("text list", Path(tmp, "images.txt"), write_text, opts.rows),
            ("CSV", Path(tmp, "products.csv"), write_csv, opts.rows),
            ("XLSX, no dimension (openpyxl write_only)", Path(tmp, "products.xlsx"), write_xlsx, opts.xlsx_rows),
        ]
        for name, path, writer, rows in cases:
            started = time.perf_counter()
            writer(path, rows)
            print(f"wrote {name}: {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            results[name] = {"rows": rows, **measure(path)}
            assert results[name]["seeds"] == rows, results[name]
            print(f"read {name}: {results[name]}", file=sys.stderr)
        dimensioned = add_dimension(Path(tmp, "products.xlsx"), opts.xlsx_rows)
        results["XLSX with dimension (as Excel writes)"] = {"rows": opts.xlsx_rows, **measure(dimensioned)}
    base = results["text list"]
    base_rate = base["rows"] / base["whole_s"]
    print(f"cpus: {os.cpu_count()}, load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| list | rows | file MiB | first seed | x text | whole list | rows/s | x text | peak MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        rate = r["rows"] / r["whole_s"]
        print(
            f"| {name} | {r['rows']:,} | {r['size_mib']:.0f} | {r['first_seed_s'] * 1000:.1f} ms"
            f" | {r['first_seed_s'] / base['first_seed_s']:.1f} | {r['whole_s']:.1f} s | {rate:,.0f}"
            f" | {rate / base_rate:.2f} | {r['peak_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()

"""How fast is `scrapy diff`, and how much memory does it take, for two runs of 100,000 offers?

Writes two synthetic feeds (`--offers` offers over `--images` query images, full records of
the sandbox's shape, about 1.7 KB a line) where the second moves a known share of offers
(about 10 % price changes, 2 % replaced, 2 % MOQ, 2 % badges), then times reading both,
diffing and writing the changes as JSON Lines, HTML and XLSX, in this process; peak memory
is the process's maximum resident set (ru_maxrss) above what it held before.

    .venv/bin/python benchmarks/diff.py --offers 100000
"""

from __future__ import annotations

import argparse
import copy
import resource
import tempfile
import time
from pathlib import Path

import orjson

from tmapi_spiders.watch import diff as d
from tmapi_spiders.watch import output

TEMPLATE = {
    "item_id": 0,
    "product_url": "",
    "title": "Portable Leather Toy Car Z796 wholesale 2026 new style",
    "title_origin": "便携皮革玩具车 Z796",
    "img": "https://cbu01.alicdn.com/img/ibank/O1CN01abcdefghijklmnopqrstuv_!!2200000000-0-cib.jpg",
    "category_path": ["玩具", "车模"],
    "price": "10.00",
    "price_info": {"drop_ship_price": "9.20", "wholesale_price": "10.00", "origin_price": "12.00"},
    "brand": "",
    "title_tags": ["新品", "热卖"],
    "quantity_begin": 2,
    "quantity_prices": [
        {"begin_num": "2", "end_num": "19", "price": "10.00"},
        {"begin_num": "20", "end_num": "199", "price": "9.50"},
        {"begin_num": "200", "end_num": "", "price": "9.00"},
    ],
    "sale_info": {"gmv_fuzzy": "10000+", "sale_quantity": 1200, "sale_quantity_month": 100,
                  "sale_quantity_90days": 300, "sale_quantity_360days": 1200, "orders_count": 400},
    "type": "normal",
    "delivery_info": {"area_from": ["浙江", "金华"], "weight": "0.35", "suttle_weight": "0.31", "free_postage": False},
    "item_repurchase_rate": "0.3",
    "goods_score": 4,
    "shop_info": {"login_id": None, "member_id": "b2b-2200000000", "company_name": "义乌鑫源工艺品有限公司",
                  "shop_url": "http://abcdef.1688.com", "biz_type": "生产加工", "is_factory": True,
                  "is_super_factory": False, "is_gold_supplier": True, "location": ["浙江", "金华"],
                  "service_tags": ["48小时发货"], "tp_member": True, "tp_year": 5, "factory_inspection": True,
                  "shop_repurchase_rate": "35.5%"},
    "query_image_url": "",
    "search_image_url": "",
    "page": 1,
    "rank": 1,
    "language": "en",
    "sort": "default",
    "filters": {},
    "crawled_at": "2026-12-07T00:00:00Z",
}  # fmt: skip


def feeds(directory: Path, offers: int, images: int) -> tuple[Path, Path]:
    old_path, new_path = directory / "old.jsonl", directory / "new.jsonl"
    per_image = offers // images
    with open(old_path, "wb") as old, open(new_path, "wb") as new:
        for n in range(offers):
            r = copy.deepcopy(TEMPLATE)
            image, rank = divmod(n, per_image)
            r["item_id"] = 500_000_000_000 + n
            r["product_url"] = f"https://detail.1688.com/offer/{r['item_id']}.html"
            r["query_image_url"] = r["search_image_url"] = f"https://cbu01.alicdn.com/img/ibank/q{image}.jpg"
            r["rank"], r["page"] = rank + 1, rank // 20 + 1
            cents = 150 + n * 7919 % 60000
            r["price"] = f"{cents // 100}.{cents % 100:02d}"
            old.write(orjson.dumps(r) + b"\n")
            k = n % 50
            if k < 5:  # 10 %: a price move, every tier with it
                factor = 88 if k < 3 else 108
                for t in r["quantity_prices"]:
                    t["price"] = f"{float(t['price']) * factor / 100:.2f}"
                c = cents * factor // 100
                r["price"] = f"{c // 100}.{c % 100:02d}"
            elif k == 5:  # 2 %: replaced by another offer
                r["item_id"] += 10_000_000
            elif k == 6:  # 2 %: MOQ
                r["quantity_begin"] += 1
            elif k == 7:  # 2 %: the verified badge lost
                r["shop_info"]["tp_member"] = False
            new.write(orjson.dumps(r) + b"\n")
    return old_path, new_path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--offers", type=int, default=100_000)
    p.add_argument("--images", type=int, default=1_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        old_path, new_path = feeds(directory, args.offers, args.images)
        size = old_path.stat().st_size + new_path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        old_run, new_run = output.read_run(old_path), output.read_run(new_path)
        read = time.perf_counter()
        summary, records = d.diff(old_run, new_run, d.parse_rules("price_drop>=5%,gone"))
        diffed = time.perf_counter()
        output.write(directory / "c.jsonl", summary, records)
        jsonl = time.perf_counter()
        output.write(directory / "c.html", summary, records)
        html = time.perf_counter()
        output.write(directory / "c.xlsx", summary, records)
        xlsx = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        print(f"offers per run: {args.offers:,} over {args.images:,} images; feeds {size / 1e6:.0f} MB together")
        print(d.summary_line(summary))
        print(f"read both: {read - started:.2f} s; diff: {diffed - read:.2f} s; write jsonl: {jsonl - diffed:.2f} s;"
              f" html: {html - jsonl:.2f} s; xlsx: {xlsx - html:.2f} s")  # fmt: skip
        print(f"total (read, diff, jsonl): {jsonl - started:.2f} s; peak memory added: {peak / 1024:.0f} MB")
        for name in ("c.jsonl", "c.html", "c.xlsx"):
            print(f"{name}: {(directory / name).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

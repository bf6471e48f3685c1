"""Product and failure records for the report's tests and benchmark, shaped like the crawl's.

`record()` is one real sandbox record (examples/images.txt, first page) with the fields a
test varies given as arguments, so a test says what it changes and nothing else.
"""

from __future__ import annotations

import copy
import zlib
from typing import Any

TEMPLATE: dict[str, Any] = {
    "item_id": 473576823458,
    "product_url": "https://detail.1688.com/offer/473576823458.html",
    "title": "Cute Stainless Steel Phone Case O563",
    "title_origin": "可爱不锈钢手机壳 O563",
    "img": "https://cbu01.alicdn.com/img/ibank/O1CN01Va6waEJC7Mugz38EbHaNAE_!!2065718471-0-cib.jpg",
    "category_path": ["1042207", "50911", "7"],
    "price": "13.40",
    "price_info": {"drop_ship_price": "", "wholesale_price": "13.40", "origin_price": "13.40"},
    "brand": "无",
    "title_tags": [],
    "quantity_begin": 2,
    "quantity_prices": [
        {"begin_num": "2", "end_num": "19", "price": "13.40"},
        {"begin_num": "20", "end_num": "", "price": "12.73"},
    ],
    "sale_info": {
        "gmv_fuzzy": "60000+",
        "gmv_30days": 0,
        "gmv_30days_cb": 0,
        "sale_quantity": 15496,
        "sale_quantity_month": 1239,
        "sale_quantity_90days": 5888,
        "sale_quantity_360days": 15496,
        "orders_count": 4028,
    },
    "type": "normal",
    "delivery_info": {
        "area_from": ["Fujian", "Jinjiang, Quanzhou"],
        "weight": 0,
        "suttle_weight": 0,
        "free_postage": False,
    },
    "item_repurchase_rate": "0.3",
    "goods_score": 5,
    "image_dsm_score": 0,
    "primary_rank_score": 0,
    "super_new_product": False,
    "shop_info": {
        "login_id": None,
        "member_id": "b2b-3874855324",
        "company_name": "晋江鑫源贸易有限公司",
        "shop_url": "http://8hj1tn.1688.com",
        "biz_type": "其他",
        "is_factory": False,
        "is_super_factory": False,
        "is_gold_supplier": True,
        "location": ["Fujian", "Jinjiang, Quanzhou"],
        "service_tags": [],
        "tp_member": False,
        "tp_year": 6,
        "factory_inspection": False,
        "shop_repurchase_rate": "31.6%",
    },
    "query_image_url": "https://cbu01.alicdn.com/img/ibank/query-1.jpg",
    "search_image_url": "https://cbu01.alicdn.com/img/ibank/query-1.jpg",
    "page": 1,
    "language": "en",
    "sort": "default",
    "filters": {},
    "crawled_at": "2026-12-03T06:17:03Z",
    "rank": 1,
}


def record(
    query: str = TEMPLATE["query_image_url"],
    rank: int = 1,
    price: str = "13.40",
    title: str | None = None,
    sold: int = 100,
    factory: bool = False,
    verified: bool = False,
    dropship: bool = False,
    free_shipping: bool = False,
    new: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """A product record for image `query` at `rank` (item id and page follow from the rank)."""
    r = copy.deepcopy(TEMPLATE)
    item_id = 600_000_000_000 + zlib.crc32(query.encode()) % 1_000_000 * 10_000 + rank
    r.update(
        item_id=item_id,
        product_url=f"https://detail.1688.com/offer/{item_id}.html",
        title=title if title is not None else f"Offer {rank} for {query.rsplit('/', 1)[-1]}",
        price=price,
        quantity_prices=[{"begin_num": "2", "end_num": "", "price": price}],
        query_image_url=query,
        search_image_url=query,
        page=(rank - 1) // 20 + 1,
        rank=rank,
        super_new_product=new,
    )
    r["sale_info"]["sale_quantity"] = sold
    r["shop_info"]["is_factory"] = factory
    r["shop_info"]["tp_member"] = verified
    r["price_info"]["drop_ship_price"] = price if dropship else ""
    r["delivery_info"]["free_postage"] = free_shipping
    r.update(fields)
    return r


def failure(query: str, stage: str = "convert", status: int = 403, message: str = "Access denied") -> dict[str, Any]:
    """A failure record as the crawl writes it to `<stem>.failures.jsonl`."""
    return {
        "query_image_url": query,
        "search_image_url": None,
        "stage": stage,
        "status": status,
        "message": message,
        "pages_ok": 0,
        "failed_page": None,
        "language": "en",
        "sort": "default",
        "filters": {},
        "crawled_at": "2026-12-03T06:17:03Z",
    }

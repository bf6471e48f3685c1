"""What moved between two runs of the same list: pure functions, no files.

Deterministic and side-effect free: the same two feeds always give the same changes, in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tmapi_spiders.watch.feed import BADGES, SALES, Offer, Run


class DiffError(Exception):
    """Bad input for a diff (an alert rule, a file that is not a products feed): one line."""


def move(old: float | None, new: float | None) -> dict[str, Any] | None:
    """{"old", "new", "delta", "pct"} when a number changed (pct None when old is 0 or missing)."""
    if old == new:
        return None
    result: dict[str, Any] = {"old": old, "new": new, "delta": None, "pct": None}
    if old is not None and new is not None:
        result["delta"] = round(new - old, 4)
        result["pct"] = round((new - old) / old * 100, 2) if old else None
    return result


def price_range(offer: Offer) -> tuple[float | None, float | None]:
    """(lowest, highest) of the tier prices, or the price alone when there are no tiers."""
    prices = [p for _, p in offer.tiers if p is not None] or ([offer.price] if offer.price is not None else [])
    return (min(prices), max(prices)) if prices else (None, None)


def compare(old: Offer, new: Offer) -> dict[str, Any]:
    """The fields of an offer that moved between two runs (empty: nothing moved)."""
    changes: dict[str, Any] = {}
    price = move(old.price, new.price)
    if price is not None:
        price["old_text"], price["new_text"] = old.price_text, new.price_text
        changes["price"] = price
    old_range, new_range = price_range(old), price_range(new)
    if old_range != new_range:
        changes["price_range"] = {"old": list(old_range), "new": list(new_range)}
    if old.tiers != new.tiers:
        old_tiers, new_tiers = dict(old.tiers), dict(new.tiers)
        tiers = []
        for begin in dict.fromkeys([*old_tiers, *new_tiers]):
            if begin not in new_tiers:
                tiers.append({"begin_num": begin, "old": old_tiers[begin], "new": None, "change": "gone"})
            elif begin not in old_tiers:
                tiers.append({"begin_num": begin, "old": None, "new": new_tiers[begin], "change": "new"})
            else:
                moved = move(old_tiers[begin], new_tiers[begin])
                if moved is not None:
                    tiers.append({"begin_num": begin, **moved, "change": "price"})
        if tiers:
            changes["tiers"] = tiers
    sales = {name: m for name, a, b in zip(SALES, old.sales, new.sales, strict=True) if (m := move(a, b))}
    badges = {name: {"old": a, "new": b} for name, a, b in zip(BADGES, old.badges, new.badges, strict=True) if a != b}
    for name, moved in (
        ("moq", move(old.moq, new.moq)),
        ("sales", sales),
        ("repurchase_rate", move(old.repurchase, new.repurchase)),
        ("rank", move(old.rank, new.rank)),
        ("badges", badges),
    ):
        if moved:
            changes[name] = moved
    if old.member_id != new.member_id or old.company != new.company:
        changes["supplier"] = {
            "old": {"member_id": old.member_id, "company_name": old.company},
            "new": {"member_id": new.member_id, "company_name": new.company},
        }
    return changes


_RULE = re.compile(r"^(price_drop|price_rise)\s*>=?\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)$|^(new_offer|gone)$")


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: `price_drop>=5%` (percent), `price_rise>=2` (CNY), `new_offer`, `gone`."""

    kind: str
    threshold: float = 0.0
    percent: bool = False
    text: str = ""

    def matches(self, change: Mapping[str, Any]) -> bool:
        if self.kind == "new_offer":
            return change["change"] == "new"
        if self.kind == "gone":
            return change["change"] == "gone"
        price = (change.get("changes") or {}).get("price")
        if not price or price["delta"] is None:
            return False
        size = price["pct"] if self.percent else price["delta"]
        if size is None:
            return False
        if self.kind == "price_drop":
            return size <= -self.threshold and price["delta"] < 0
        return size >= self.threshold and price["delta"] > 0


def parse_rules(text: str | None) -> list[Rule]:
    """Rules separated by commas or semicolons; DiffError names the first bad one."""
    rules = []
    for part in re.split(r"[,;]", text or ""):
        part = part.strip()
        if not part:
            continue
        m = _RULE.match(part.replace(" ", ""))
        if m is None:
            raise DiffError(
                f"alert {part!r}: not a rule (use price_drop>=5%, price_rise>=5%, price_drop>=2 for CNY,"
                " new_offer or gone, separated by commas)"
            )
        if m.group(4):
            rules.append(Rule(m.group(4), text=m.group(4)))
        else:
            threshold = float(m.group(2))
            rules.append(Rule(m.group(1), threshold, bool(m.group(3)), part.replace(" ", "")))
    return rules


def _offer_dict(o: Offer) -> dict[str, Any]:
    return {
        "title": o.title,
        "product_url": o.product_url,
        "price": o.price_text,
        "rank": o.rank,
        "company_name": o.company,
    }


def _order(change: Mapping[str, Any]) -> tuple[int, float, str, str]:
    """Biggest price drops first, then biggest rises, then other changes, new offers, gone ones."""
    price = (change.get("changes") or {}).get("price")
    pct = price.get("pct") if price else None
    if pct is not None and pct < 0:
        group, size = 0, pct
    elif pct is not None and pct > 0:
        group, size = 1, -pct
    else:
        group, size = {"changed": 2, "new": 3, "gone": 4}[change["change"]], 0.0
    return group, size, change["query_image_url"], change["item_id"]


def diff(old: Run, new: Run, rules: Iterable[Rule] = ()) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, records): per product a `product` record, per offer that is new, gone or
    changed an `offer` record, in _order (per product records first, by query image)."""
    rules = list(rules)
    products: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    counts = {"new": 0, "gone": 0, "changed": 0, "unchanged": 0}
    product_counts = {"new": 0, "gone": 0, "both": 0}
    drops = rises = 0
    for query in sorted(old.products.keys() | new.products.keys()):
        a, b = old.products.get(query), new.products.get(query)
        ref = b or a
        assert ref is not None
        status = "new" if a is None else "gone" if b is None else "both"
        product_counts[status] += 1
        old_offers = a.offers if a else {}
        new_offers = b.offers if b else {}
        row = {"new": 0, "gone": 0, "changed": 0, "unchanged": 0}
        for item_id in sorted(old_offers.keys() | new_offers.keys()):
            o, n = old_offers.get(item_id), new_offers.get(item_id)
            record: dict[str, Any] = {"type": "offer", "query_image_url": query}
            if ref.input is not None:
                record["input"], record["input_row"] = ref.input, ref.input_row
            record["item_id"] = item_id
            if o is None:
                assert n is not None
                record.update(change="new", **_offer_dict(n))
            elif n is None:
                record.update(change="gone", **_offer_dict(o))
            else:
                moved = compare(o, n)
                if not moved:
                    row["unchanged"] += 1
                    continue
                record.update(change="changed", **_offer_dict(n), changes=moved)
                pct = (moved.get("price") or {}).get("delta")
                drops += bool(pct is not None and pct < 0)
                rises += bool(pct is not None and pct > 0)
            row[record["change"]] += 1
            fired = [rule.text for rule in rules if rule.matches(record)]
            if fired:
                record["alerts"] = fired
            offers.append(record)
        for k, v in row.items():
            counts[k] += v
        product: dict[str, Any] = {"type": "product", "query_image_url": query}
        if ref.input is not None:
            product["input"], product["input_row"] = ref.input, ref.input_row
        product.update(status=status, offers_before=len(old_offers), offers_after=len(new_offers), **row)
        products.append(product)
    offers.sort(key=_order)
    matches = [
        {
            "rule": text,
            "query_image_url": r["query_image_url"],
            "item_id": r["item_id"],
            "change": r["change"],
            "price": (r.get("changes") or {}).get("price"),
        }
        for r in offers
        for text in r.get("alerts", ())
    ]
    summary = {
        "type": "summary",
        "products": len(products),
        "products_new": product_counts["new"],
        "products_gone": product_counts["gone"],
        "offers_before": old.offers,
        "offers_after": new.offers,
        "offers": counts,
        "price_drops": drops,
        "price_rises": rises,
        "skipped": {
            "old": {"torn": old.torn, "foreign": old.foreign},
            "new": {"torn": new.torn, "foreign": new.foreign},
        },
        "alerts": {"rules": [r.text for r in rules], "matches": matches},
    }
    return summary, [*products, *offers]


def summary_line(summary: Mapping[str, Any]) -> str:
    """One human line: what moved, and what was skipped."""
    o = summary["offers"]
    text = (
        f"{summary['products']} products; offers: {o['new']} new, {o['gone']} gone, {o['changed']} changed"
        f" ({summary['price_drops']} price drops, {summary['price_rises']} rises), {o['unchanged']} unchanged"
    )
    skipped = summary["skipped"]
    bad = [
        f"{side}: {n} {kind} line{'s' if n != 1 else ''}"
        for side in ("old", "new")
        for kind, n in skipped[side].items()
        if n
    ]
    if bad:
        text += "; skipped " + ", ".join(bad)
    if summary["alerts"]["rules"]:
        text += f"; alerts: {len(summary['alerts']['matches'])} match(es) of {', '.join(summary['alerts']['rules'])}"
    return text


def jsonl_lines(summary: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    yield orjson.dumps(summary) + b"\n"
    for record in records:
        yield orjson.dumps(record) + b"\n"

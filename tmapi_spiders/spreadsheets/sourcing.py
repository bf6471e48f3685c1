"""Choosing among the offers found: the best few per product and the suppliers of the most.

Pure functions from records to rows, shared by the sourcing workbook (workbook.py) and the
HTML report (report/), so both rank the same way. A product is one query image (with its
spreadsheet row's `input`, when the seed list was one). The choice (`-a best=3 ...`) only
decides which offers are the best: the feed and the *offers* sheet keep every offer.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tmapi_spiders.registry import ConfigError
from tmapi_spiders.report import offers as ro
from tmapi_spiders.report.offers import number, safe_url, text

CHOICE_ARGS = ("best", "best_by", "max_price", "max_moq", "badges")
BEST_BY = ("rank", "price", "sales")
# Badge names as `-a badges=` takes them, in the order the workbook and the report show them.
BADGES = {
    "factory": ro.FACTORY,
    "verified": ro.VERIFIED,
    "dropship": ro.DROPSHIP,
    "free_shipping": ro.FREE_SHIPPING,
    "new": ro.NEW_ARRIVAL,
}
DEFAULT_BEST = 3
MAX_BEST = 20  # a page of the API: more "best" offers than that is the offers sheet


class ChoiceError(ConfigError):
    """A bad choice argument: its text is the one-line cause (`bad argument best_by: ...`)."""


@dataclass(frozen=True)
class Choice:
    """Which offers count as the best of a product, and how many are shown."""

    best: int = DEFAULT_BEST
    best_by: str = "rank"
    max_price: float | None = None  # CNY, the feed's own currency
    max_moq: int | None = None
    badges: int = 0  # every one of these badge bits is required

    def allows(self, offer: Offer) -> bool:
        """Within the filters. An offer whose price or MOQ is unknown is not within a limit on it."""
        if self.max_price is not None and (offer.price is None or offer.price > self.max_price):
            return False
        if self.max_moq is not None and (offer.moq is None or offer.moq > self.max_moq):
            return False
        return offer.badges & self.badges == self.badges

    def key(self, offer: Offer) -> tuple[Any, ...]:
        """Best first: the API's rank, the lowest price or the most sold; unknowns last, then by rank."""
        rank = (offer.rank is None, offer.rank or 0)
        if self.best_by == "price":
            return (offer.price is None, offer.price or 0.0, *rank)
        if self.best_by == "sales":
            return (offer.sold is None, -(offer.sold or 0), *rank)
        return rank

    def describe(self) -> str:
        """The choice in words, for the workbook's about area."""
        return "; ".join([f"best {self.best} by {self.best_by}", *self.filter_words()])

    def filter_words(self) -> list[str]:
        """The filters in words (none: an empty list), for the workbook and the report."""
        parts: list[str] = []
        if self.max_price is not None:
            parts.append(f"price at most {self.max_price:g} CNY")
        if self.max_moq is not None:
            parts.append(f"MOQ at most {self.max_moq}")
        if self.badges:
            parts.append("badges: " + ", ".join(badge_names(self.badges)))
        return parts


def badge_names(bits: int) -> list[str]:
    return [name for name, bit in BADGES.items() if bits & bit]


def _positive_int(name: str, value: Any, high: int | None = None) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ChoiceError(f"bad argument {name}: {value!r} is not a whole number") from None
    if n < 1 or (high is not None and n > high):
        bound = f"between 1 and {high}" if high is not None else "at least 1"
        raise ChoiceError(f"bad argument {name}: {n} must be {bound}")
    return n


def choice_from(args: Mapping[str, Any]) -> Choice:
    """The choice from spider arguments or command options (strings; absent or empty: the
    default). Raises ChoiceError naming the argument."""
    given = {n: str(args[n]).strip() for n in CHOICE_ARGS if args.get(n) is not None and str(args[n]).strip()}
    best = _positive_int("best", given["best"], MAX_BEST) if "best" in given else DEFAULT_BEST
    best_by = given.get("best_by", "rank").lower()
    if best_by not in BEST_BY:
        raise ChoiceError(f"bad argument best_by: {args.get('best_by')!r} is not one of {', '.join(BEST_BY)}")
    max_price = number(given["max_price"]) if "max_price" in given else None
    if "max_price" in given and (max_price is None or max_price <= 0):
        raise ChoiceError(f"bad argument max_price: {args.get('max_price')!r} is not a price above 0 (CNY)")
    max_moq = _positive_int("max_moq", given["max_moq"]) if "max_moq" in given else None
    bits = 0
    for name in given.get("badges", "").split(","):
        name = name.strip().lower().replace("-", "_")
        if not name:
            continue
        if name not in BADGES:
            raise ChoiceError(f"bad argument badges: {name!r} is not one of {', '.join(BADGES)}")
        bits |= BADGES[name]
    return Choice(best, best_by, max_price, max_moq, bits)


@dataclass(slots=True)
class Offer:
    """The part of a product record the workbook and the rankings show: small, since a
    workbook is built from memory at the end."""

    image: str
    rank: int | None
    item_id: Any
    title: str
    price: float | None  # the offer's headline price (CNY), else its lowest
    pmin: float | None
    pmax: float | None
    tiers: str
    moq: int | None
    sold: int | None
    repurchase: str
    supplier: str
    member_id: str
    years: int | None
    location: str
    badges: int
    url: str | None
    # (currency, lowest, highest) from the record's `converted`, when it has one
    converted: tuple[str, float | None, float | None] | None = None


def _converted(record: Mapping[str, Any]) -> tuple[str, float | None, float | None, float | None] | None:
    """(currency, rate, lowest, highest) of a record's `converted` prices (CONTRACT.md), or None."""
    conv = record.get("converted")
    if not isinstance(conv, dict) or not isinstance(conv.get("currency"), str):
        return None
    prices = [number(conv.get("price"))]
    tiers = conv.get("quantity_prices")
    for tier in tiers if isinstance(tiers, list) else ():
        if isinstance(tier, dict):
            prices.append(number(tier.get("price")))
    known = [p for p in prices if p is not None]
    low, high = (min(known), max(known)) if known else (None, None)
    return text(conv["currency"], 10), number(conv.get("rate")), low, high


def offer_of(record: Mapping[str, Any], row: list[Any] | None = None) -> Offer:
    """A product record as an Offer, read as the report reads it (offers.offer_row, or the
    `row` already read): the workbook and the page show the same prices, badges and supplier."""
    if row is None:
        row = ro.offer_row(dict(record))
    url = row[ro.O_URL]
    if url == 0:
        url = ro.STANDARD_OFFER_URL.format(row[ro.O_ID])
    tiers = " | ".join(f"{b}{'-' + e if e else '+'}: {p}" for b, e, p in row[ro.O_TIERS])
    shop = record.get("shop_info") if isinstance(record.get("shop_info"), dict) else {}
    member = text(shop.get("member_id"), 80) or text(shop.get("login_id"), 80) or row[ro.O_SUPPLIER]
    headline = number(record.get("price"))
    conv = _converted(record)
    return Offer(
        image=text(record.get("query_image_url"), ro.MAX_URL_LENGTH),
        rank=row[ro.O_RANK],
        item_id=row[ro.O_ID],
        title=row[ro.O_TITLE],
        price=headline if headline is not None else row[ro.O_PMIN],
        pmin=row[ro.O_PMIN],
        pmax=row[ro.O_PMAX],
        tiers=tiers,
        moq=row[ro.O_MOQ],
        sold=row[ro.O_SOLD],
        repurchase=row[ro.O_REPURCHASE],
        supplier=row[ro.O_SUPPLIER],
        member_id=member,
        years=row[ro.O_YEARS],
        location=row[ro.O_LOCATION],
        badges=row[ro.O_BADGES],
        url=url,
        converted=(conv[0], conv[2], conv[3]) if conv else None,
    )


@dataclass
class Product:
    """One query image: its spreadsheet row (when the seed list was one) and what became of it."""

    image: str
    input: dict[str, Any] | None = None
    input_row: int | None = None
    offers: int = 0
    failures: list[str] = field(default_factory=list)
    done: bool = False  # the run finished its search (the run summary or the crawl said so)

    def label(self) -> str:
        """How a supplier's list names this product: its row and first filled-in column, else the image."""
        if self.input_row is not None:
            first = next((v for v in (self.input or {}).values() if v not in (None, "")), None)
            return f"row {self.input_row}" + (f" ({text(first, 60)})" if first is not None else "")
        return self.image.rsplit("/", 1)[-1][:80] or self.image[:80]


def failure_text(record: Mapping[str, Any]) -> str:
    """A failure record in one line: `search 500: the gateway answered ...`."""
    where = f"{text(record.get('stage'), 40)} {text(record.get('status'), 20)}".strip()
    message = text(record.get("message"), 300)
    return f"{where}: {message}" if where and message else where or message or "failed"


class Collection:
    """The offers of a feed and its products, in the order their images first appear; fed
    record by record, so nothing but the compact rows is kept."""

    def __init__(self) -> None:
        self.offers: list[Offer] = []
        self.products: dict[str, Product] = {}
        self.input_columns: dict[str, None] = {}  # every input column, in first-seen order
        self.rates: dict[tuple[str, float | None], int] = {}  # (currency, rate) -> offers converted with it

    def product(self, record: Mapping[str, Any]) -> Product:
        image = text(record.get("query_image_url"), ro.MAX_URL_LENGTH)
        found = self.products.get(image)
        if found is None:
            found = self.products[image] = Product(image)
        row = record.get("input_row")
        if found.input is None and isinstance(record.get("input"), dict):
            found.input = dict(record["input"])
            found.input_row = row if isinstance(row, int) and not isinstance(row, bool) else None
            self.input_columns.update(dict.fromkeys(str(k) for k in found.input))
        return found

    def add_product(self, record: Mapping[str, Any]) -> None:
        product = self.product(record)
        product.offers += 1
        product.done = True
        offer = offer_of(record)
        offer.image = product.image  # one string per image, however many offers
        # A supplier's name, id and place repeat across its offers: kept once.
        offer.supplier, offer.member_id = sys.intern(offer.supplier), sys.intern(offer.member_id)
        offer.location, offer.repurchase = sys.intern(offer.location), sys.intern(offer.repurchase)
        self.offers.append(offer)
        conv = _converted(record)
        if conv is not None:
            self.rates[(conv[0], conv[1])] = self.rates.get((conv[0], conv[1]), 0) + 1

    def add_failure(self, record: Mapping[str, Any]) -> None:
        self.product(record).failures.append(failure_text(record))

    def add_result(self, entry: Mapping[str, Any]) -> None:
        """A run summary's image entry: an image searched with no offer left no record at all."""
        if "query_image_url" not in entry:
            return
        product = self.product(entry)
        if entry.get("status") == "done":
            product.done = True

    def ordered_products(self) -> list[Product]:
        """Products in their spreadsheet's row order (rows first), then in the order found."""
        return sorted(self.products.values(), key=lambda p: (p.input_row is None, p.input_row or 0))


@dataclass
class Best:
    """A product's best offers under a choice, or why there are none."""

    product: Product
    offers: list[Offer]
    within: int  # offers within the filters
    status: str  # "ok", "partial", "failed", "no match", "none within the filters", "not searched"
    reason: str = ""


def best_offers(collection: Collection, choice: Choice) -> list[Best]:
    """Each product's best `choice.best` offers within the filters, in the products' order."""
    by_image: dict[str, list[Offer]] = {}
    for offer in collection.offers:
        by_image.setdefault(offer.image, []).append(offer)
    out: list[Best] = []
    for product in collection.ordered_products():
        found = by_image.get(product.image, [])
        within = sorted((o for o in found if choice.allows(o)), key=choice.key)
        failed = "; ".join(product.failures[:3])
        if within:
            status, reason = ("partial", f"some pages failed: {failed}") if failed else ("ok", "")
        elif failed:
            status, reason = "failed", failed
        elif found:
            status, reason = "none within the filters", f"{len(found)} offers, none with {choice.describe()}"
        elif product.done:
            status, reason = "no match", "the search found no offer"
        else:
            status, reason = "not searched", "the run ended before this image was searched"
        out.append(Best(product, within[: choice.best], len(within), status, reason))
    return out


@dataclass
class Supplier:
    """A supplier (shop_info.member_id) and the products it has an offer for, within the filters."""

    member_id: str
    name: str
    years: int | None
    location: str
    badges: int
    # image -> its lowest-priced offer from this supplier for that product
    products: dict[str, Offer] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """The sum of its lowest prices (CNY), unknown prices counted as 0."""
        return sum(o.price or 0.0 for o in self.products.values())


def rank_suppliers(offers: Iterable[Offer], choice: Choice | None = None) -> list[Supplier]:
    """Suppliers ranked by how many products they have an offer for (within the choice's
    filters); ties: the lower sum of their lowest prices, then the name."""
    choice = choice or Choice()
    suppliers: dict[str, Supplier] = {}
    for offer in offers:
        key = offer.member_id or offer.supplier
        if not key or not choice.allows(offer):
            continue
        supplier = suppliers.get(key)
        if supplier is None:
            supplier = suppliers[key] = Supplier(key, offer.supplier, offer.years, offer.location, offer.badges)
        supplier.badges |= offer.badges
        if supplier.years is None:
            supplier.years = offer.years
        current = supplier.products.get(offer.image)
        if current is None or (offer.price is not None and (current.price is None or offer.price < current.price)):
            supplier.products[offer.image] = offer
    return sorted(suppliers.values(), key=lambda s: (-len(s.products), s.total, s.name, s.member_id))


def link(offer: Offer) -> str | None:
    """The offer's page, when it is an http(s) URL."""
    return safe_url(offer.url)

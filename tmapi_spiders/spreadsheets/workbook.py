"""The sourcing workbook: a feed's offers as an XLSX file people shop from (docs/sourcing.md).

Sheets *offers* (every offer), *best* (each product's best offers under the choice, or why
none), *suppliers* (ranked by products matched) and *about*; written with openpyxl's
write-only mode from a sourcing.Collection. `exporter.XlsxItemExporter` is the `xlsx` feed format;
`scrapy sheet` builds the same workbook from a JSON Lines feed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from tmapi_spiders.api.redact import Redactor
from tmapi_spiders.spreadsheets.sourcing import Choice, Collection, badge_names, best_offers, link, rank_suppliers

logger = logging.getLogger(__name__)

OFFER_COLUMNS = (
    "query image",
    "rank",
    "title",
    "price from (CNY)",
    "price to (CNY)",
    "tiers (CNY)",
    "MOQ",
    "sold",
    "repurchase rate",
    "supplier",
    "supplier id",
    "years",
    "location",
    "badges",
    "link",
)
BEST_PER_OFFER = ("title", "price (CNY)", "MOQ", "supplier", "link")
SUPPLIER_COLUMNS = (
    "supplier",
    "supplier id",
    "products matched",
    "of products",
    "products (its lowest price, CNY)",
    "sum of lowest prices (CNY)",
    "badges",
    "years",
    "location",
)
# Excel's limit for a cell's text; a longer title or failure message is cut, not refused.
MAX_CELL = 32_767
_BOLD = Font(bold=True)
_LINK = Font(color="0563C1", underline="single")
_WIDTHS = {"query image": 30, "title": 40, "tiers (CNY)": 28, "supplier": 28, "location": 18, "link": 14}


def _cell(value: Any) -> Any:
    """A value openpyxl writes as a cell: numbers and text as they are, anything else as text."""
    if value is None or isinstance(value, (int, float, str)):
        return value[:MAX_CELL] if isinstance(value, str) else value
    return str(value)[:MAX_CELL]


class _Sheet:
    """A write-only sheet with a bold, frozen header and filters over its rows."""

    def __init__(self, book: Workbook, title: str, header: list[str], rows: int) -> None:
        self.ws = book.create_sheet(title)
        self.ws.freeze_panes = "A2"
        # Printed (or saved as PDF): landscape, every column on the page's width, the header on each page.
        self.ws.page_setup.orientation = "landscape"
        self.ws.sheet_properties.pageSetUpPr.fitToPage = True
        self.ws.page_setup.fitToWidth = 1
        self.ws.page_setup.fitToHeight = 0
        self.ws.print_title_rows = "1:1"
        if rows:
            self.ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{rows + 1}"
        for i, name in enumerate(header, 1):
            self.ws.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(name, max(10, min(len(name) + 2, 24)))
        self.ws.append([self.bold(name) for name in header])

    def bold(self, value: Any) -> Cell:
        cell = WriteOnlyCell(self.ws, _cell(value))
        cell.font = _BOLD
        return cell

    def link(self, url: str | None, label: str = "open") -> Any:
        if not url:
            return None
        cell = WriteOnlyCell(self.ws, label)
        cell.hyperlink = url
        cell.font = _LINK
        return cell

    def append(self, row: Iterable[Any]) -> None:
        self.ws.append([v if isinstance(v, Cell) else _cell(v) for v in row])


def write(
    collection: Collection,
    choice: Choice,
    file: IO[bytes] | str,
    source: str = "",
    secrets: Iterable[str | None] = (),
) -> None:
    """The workbook of a collection, saved to `file` (a path or a binary file)."""
    redact = Redactor(list(secrets)).text
    book = Workbook(write_only=True)
    inputs = list(collection.input_columns)
    lead = ["sheet row", *inputs] if inputs else []
    currencies = sorted({currency for currency, _rate in collection.rates})
    products = collection.products

    def lead_of(image: str) -> list[Any]:
        product = products.get(image)
        if not inputs or product is None:
            return [None] * len(lead)
        values = product.input or {}
        return [product.input_row, *(values.get(name) for name in inputs)]

    # offers
    header = [*lead, *OFFER_COLUMNS]
    for currency in currencies:
        at = header.index("tiers (CNY)")
        header[at:at] = [f"price from ({currency})", f"price to ({currency})"]
    sheet = _Sheet(book, "offers", header, len(collection.offers))
    for offer in collection.offers:
        conv: list[Any] = []
        for currency in currencies:
            same = offer.converted is not None and offer.converted[0] == currency
            conv += [offer.converted[1], offer.converted[2]] if same and offer.converted else [None, None]
        sheet.append(
            [
                *lead_of(offer.image),
                offer.image,
                offer.rank,
                offer.title,
                offer.pmin,
                offer.pmax,
                *conv,
                offer.tiers,
                offer.moq,
                offer.sold,
                offer.repurchase,
                offer.supplier,
                offer.member_id,
                offer.years,
                offer.location,
                ", ".join(badge_names(offer.badges)),
                sheet.link(link(offer)),
            ]
        )

    # best
    bests = best_offers(collection, choice)
    header = [*lead, "query image", "status", "reason", "offers found", "within the filters"]
    per_offer = list(BEST_PER_OFFER)
    for currency in currencies:
        per_offer.insert(2, f"price ({currency})")
    for n in range(1, choice.best + 1):
        header += [f"#{n} {name}" for name in per_offer]
    sheet = _Sheet(book, "best", header, len(bests))
    for best in bests:
        row: list[Any] = [
            *lead_of(best.product.image),
            best.product.image,
            best.status,
            redact(best.reason),
            best.product.offers,
            best.within,
        ]
        for offer in best.offers:
            conv = [
                offer.converted[1] if offer.converted and offer.converted[0] == currency else None
                for currency in currencies
            ]
            row += [offer.title, offer.price, *conv, offer.moq, offer.supplier, sheet.link(link(offer))]
        sheet.append(row)

    # suppliers
    suppliers = rank_suppliers(collection.offers, choice)
    sheet = _Sheet(book, "suppliers", list(SUPPLIER_COLUMNS), len(suppliers))
    for supplier in suppliers:
        listed = "; ".join(
            f"{products[image].label() if image in products else image}: "
            + (f"{offer.price:g}" if offer.price is not None else "?")
            for image, offer in supplier.products.items()
        )
        sheet.append(
            [
                supplier.name,
                supplier.member_id,
                len(supplier.products),
                len(products),
                listed,
                round(supplier.total, 4),
                ", ".join(badge_names(supplier.badges)),
                supplier.years,
                supplier.location,
            ]
        )

    # about
    about = book.create_sheet("about")
    about.column_dimensions["A"].width = 22
    about.column_dimensions["B"].width = 90
    rates = "; ".join(
        f"1 CNY = {rate:g} {currency} ({n} offers)" if rate is not None else f"{currency}: rate not given ({n} offers)"
        for (currency, rate), n in sorted(collection.rates.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    )
    for key, value in (
        ("source", source),
        ("offers", len(collection.offers)),
        ("products", len(products)),
        ("best offers", choice.describe()),
        ("prices", "CNY, as the API gives them" + (f"; converted: {rates}" if rates else "")),
        ("currency rate", rates or "none (no converted prices in these records)"),
    ):
        about.append([WriteOnlyCell(about, key), _cell(value)])
    book.save(file)

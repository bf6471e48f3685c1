"""What the sourcing workbook adds to the report: the suppliers view with the page's default filters,
and beside each image the spreadsheet row it came from (CONTRACT.md)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from tmapi_spiders.report.offers import text
from tmapi_spiders.spreadsheets import sourcing

# The suppliers view lists the top of the ranking: its long tail is the offers themselves.
SUPPLIERS_SHOWN = 100
INPUT_COLUMNS_SHOWN = 20


@dataclass(frozen=True)
class SheetRow:
    """The spreadsheet row an image came from: its number (when known) and its other columns."""

    number: int | None
    columns: dict[str, Any]


def sheet_row(record: dict[str, Any]) -> SheetRow | None:
    """The row a product or failure record carries, or None for a plain URL list's."""
    columns = record.get("input")
    if not isinstance(columns, dict):
        return None
    number = record.get("input_row")
    return SheetRow(number if isinstance(number, int) and not isinstance(number, bool) else None, columns)


def sheet_row_data(row: SheetRow | None) -> dict[str, Any]:
    """The row's number, and its columns as [name, shown value] pairs in the spreadsheet's order."""
    columns = list(row.columns.items())[:INPUT_COLUMNS_SHOWN] if row is not None else []
    return {"row": row.number if row is not None else None, "in": [[text(k, 80), text(v, 200)] for k, v in columns]}


def suppliers_data(ranked: list[sourcing.Offer], images: list[str], choice: sourcing.Choice) -> dict[str, Any]:
    """The workbook's supplier ranking, each product as [image number, lowest price, offer URL]."""
    number_of = {url: n for n, url in enumerate(images, 1)}
    suppliers = sourcing.rank_suppliers(ranked, choice)
    rows = [
        {
            "n": s.name,
            "id": s.member_id,
            "y": s.years,
            "loc": s.location,
            "b": s.badges,
            "p": [[number_of.get(image, 0), o.price, sourcing.link(o)] for image, o in s.products.items()],
        }
        for s in suppliers[:SUPPLIERS_SHOWN]
    ]
    return {"rows": rows, "all": len(suppliers), "products": len(images), "filters": "; ".join(choice.filter_words())}


def defaults_of(choice: sourcing.Choice | None) -> dict[str, Any]:
    """The page's default filters: the sourcing choice given (none: a bare page)."""
    if choice is None:
        return {}
    sort = {"rank": "rank", "price": "price_up", "sales": "sales"}[choice.best_by]
    return {"sort": sort, "badges": choice.badges, "max": choice.max_price, "moq": choice.max_moq}


def add_choice_options(parser: argparse.ArgumentParser) -> None:
    """`scrapy report`'s sourcing choice (as `scrapy sheet`'s): the page's default filters and the suppliers
    view's offers."""
    parser.add_argument("--best-by", "--best_by", dest="best_by", metavar="HOW", help="rank, price or sales")
    parser.add_argument("--max-price", "--max_price", dest="max_price", metavar="CNY", help="default price limit")
    parser.add_argument("--max-moq", "--max_moq", dest="max_moq", metavar="N", help="default MOQ limit")
    parser.add_argument("--badges", metavar="LIST", help=f"default badges ({', '.join(sourcing.BADGES)})")


def choice_of(opts: argparse.Namespace) -> sourcing.Choice | None:
    """The choice those options give (None: none given, a bare page); ChoiceError names a bad one."""
    given = {name: getattr(opts, name, None) for name in sourcing.CHOICE_ARGS if name != "best"}
    return sourcing.choice_from(given) if any(given.values()) else None

"""The two kinds of record: dicts subclassed only so feeds route them by class (`item_classes`); the API
may add fields, which a fixed `scrapy.Item` would refuse."""

from __future__ import annotations

# Fields every product record carries beside the API's own item fields.
CONTEXT_FIELDS = ("query_image_url", "search_image_url", "page", "rank", "language", "sort", "filters", "crawled_at")


class ProductItem(dict):
    """One search result: the API's item object under its own names, plus context."""


class FailureItem(dict):
    """An image that could not be searched to the end, and why."""

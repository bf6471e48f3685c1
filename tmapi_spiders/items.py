"""The two kinds of record a crawl writes: products and failures.

Both are plain dicts (subclassed only so feeds can route them by class with
`item_classes`): the API may add fields later, and a fixed `scrapy.Item` would
either crash on them or drop them silently.
"""

from __future__ import annotations

# Fields every product record carries beside the API's own item fields.
CONTEXT_FIELDS = (
    "query_image_url",
    "search_image_url",
    "page",
    "rank",
    "language",
    "sort",
    "filters",
    "crawled_at",
)

FAILURE_FIELDS = (
    "query_image_url",
    "search_image_url",
    "stage",
    "status",
    "message",
    "pages_ok",
    "failed_page",
    "language",
    "sort",
    "filters",
    "crawled_at",
)


class ProductItem(dict):
    """One search result: the API's item object under its own names, plus context."""


class CheckedProductItem(ProductItem):
    """A ProductItem whose whole page passed validation in the spider (schema.page_is_valid),
    normalised there (pipelines.normalise) and counted in `tmapi/items` with its page.

    The spider makes these only when nothing but NormalisationPipeline runs between it and
    ValidationPipeline (pipelines.checks_pages_in_spider); then both pipelines let them
    through untouched. A copy made with `ProductItem(record)` is normalised and checked
    again, as any other record."""


class FailureItem(dict):
    """An image that could not be searched to the end, and why."""

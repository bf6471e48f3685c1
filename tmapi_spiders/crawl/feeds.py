"""Completes FEEDS: products to the user's feeds (or a default one under TMAPI_OUTPUT_DIR), failures to
a feed beside the first."""

from __future__ import annotations

import os
from typing import Any

from scrapy.settings import BaseSettings

from tmapi_spiders import registry
from tmapi_spiders.clock import utc_now
from tmapi_spiders.settings_util import priority_above

PRODUCTS = "tmapi_spiders.items.ProductItem"
FAILURES = "tmapi_spiders.items.FailureItem"


def stamp_now() -> str:
    """The crawl's start in file names: the records' UTC form with `-` for `:`."""
    return utc_now().replace(":", "-")


def is_stdout(uri: str) -> bool:
    return uri == "-" or uri.startswith(("stdout:", "-:"))


def failures_uri(products_uri: str, output_dir: str, spider_name: str, stamp: str) -> str:
    """`x/products.jsonl` -> `x/products.failures.jsonl`; stdout falls back to the output directory."""
    if is_stdout(products_uri):
        return os.path.join(output_dir, f"{spider_name}-{stamp}.failures.jsonl")
    stem, dot, ext = products_uri.rpartition(".")
    if not dot or "/" in ext:
        return products_uri + ".failures.jsonl"
    return f"{stem}.failures.jsonl"


def failures_only(options: dict[str, Any] | None) -> bool:
    """A feed of failure records only: the failures feed (an xlsx workbook takes both kinds)."""
    classes = [str(c) for c in ((options or {}).get("item_classes") or ())]
    return FAILURES in classes and PRODUCTS not in classes


def configure(settings: BaseSettings, spider_name: str) -> None:
    feeds: dict[str, Any] = dict(settings.getdict("FEEDS"))
    output_dir = registry.read(settings, "TMAPI_OUTPUT_DIR") or "output"
    stamp = stamp_now()
    if not feeds:
        feeds = {os.path.join(output_dir, f"{spider_name}-{stamp}.jsonl"): {"format": "jsonlines"}}
    wanted: dict[str, Any] = {}
    for uri, options in feeds.items():
        options = dict(options or {})
        if options.get("format") == "xlsx":
            # The workbook's *best* sheet says why an image has no offer; a zip cannot be appended to.
            options.setdefault("item_classes", [PRODUCTS, FAILURES])
            options["overwrite"] = True
        else:
            options.setdefault("item_classes", [PRODUCTS])
        wanted[str(uri)] = options
    if not any(failures_only(o) for o in wanted.values()):
        first_uri, first = next(iter(wanted.items()))
        uri = registry.read(settings, "TMAPI_FAILURES_FEED") or failures_uri(first_uri, output_dir, spider_name, stamp)
        wanted[uri] = {"format": "jsonlines", "item_classes": [FAILURES], "overwrite": first.get("overwrite", False)}
    # One above what it completes, or the process's settings would be merged back over it.
    settings.set("FEEDS", wanted, priority=priority_above(settings, "FEEDS"))

"""`tmapi-spiders`: `scrapy` with this project's settings from any directory (a wheel has no scrapy.cfg)."""

from __future__ import annotations

import os

from scrapy.cmdline import execute


def main() -> None:
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "tmapi_spiders.settings")
    execute()

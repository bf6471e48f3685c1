"""`tmapi-spiders`: `scrapy` with this project's settings from any directory (a wheel has no scrapy.cfg)."""

from __future__ import annotations

import os

from scrapy.cmdline import execute

SETTINGS_MODULE = "tmapi_spiders.settings"


def main() -> None:
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", SETTINGS_MODULE)
    execute()

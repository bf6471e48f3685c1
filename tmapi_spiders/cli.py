"""`tmapi-spiders`: Scrapy's command line with this project's settings, from any directory.

Installed from a wheel (`pip install tmapi-spiders`), there is no `scrapy.cfg` to find, so
a bare `scrapy crawl image_search` says "no active project". This entry point sets
`SCRAPY_SETTINGS_MODULE=tmapi_spiders.settings` (unless it is set already) and runs
`scrapy` with the same arguments: `tmapi-spiders crawl image_search ...`,
`tmapi-spiders seed ...`, `tmapi-spiders job`, `tmapi-spiders report ...`.
"""

from __future__ import annotations

import os

from scrapy.cmdline import execute

SETTINGS_MODULE = "tmapi_spiders.settings"


def main() -> None:
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", SETTINGS_MODULE)
    execute()


if __name__ == "__main__":
    main()
